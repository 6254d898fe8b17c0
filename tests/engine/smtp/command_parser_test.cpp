// Table-driven tests of the SMTP command parser: verbs, MAIL/RCPT paths, parameters, EHLO names, SIZE.
#include "engine/smtp/command_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ringmail::smtp {
namespace {

// A syntactically valid domain of exactly n octets (labels of up to 9 letters).
std::string domain_of(size_t n) {
  std::string d;
  while (d.size() < n) {
    if (!d.empty()) d += '.';
    d += std::string(std::min<size_t>(9, std::max<size_t>(1, n - d.size())), 'd');
  }
  return d;
}

TEST(SplitCommand, VerbsAreCaseInsensitiveAndArgumentsTrimmed) {
  struct Case {
    std::string line;
    Verb verb;
    std::string argument;
  };
  const std::vector<Case> cases = {
      {"EHLO client.example", Verb::kEhlo, "client.example"},
      {"ehlo   client.example  ", Verb::kEhlo, "client.example"},
      {"HeLo x", Verb::kHelo, "x"},
      {"MAIL FROM:<a@b> SIZE=10", Verb::kMail, "FROM:<a@b> SIZE=10"},
      {"rcpt TO:<a@b>", Verb::kRcpt, "TO:<a@b>"},
      {"DATA", Verb::kData, ""},
      {"rset", Verb::kRset, ""},
      {"NOOP hello", Verb::kNoop, "hello"},
      {"QUIT", Verb::kQuit, ""},
      {"VRFY bob", Verb::kVrfy, "bob"},
      {"EXPN list", Verb::kExpn, "list"},
      {"HELP", Verb::kHelp, ""},
      {"MAILX FROM:<a@b>", Verb::kUnknown, "FROM:<a@b>"},
      {"", Verb::kUnknown, ""},
      {"STARTTLS", Verb::kStarttls, ""},
      {"starttls now", Verb::kStarttls, "now"},
      {"AUTH PLAIN AGFiAGM=", Verb::kAuth, "PLAIN AGFiAGM="},
      {"auth login", Verb::kAuth, "login"},
      {"STARTTLSX", Verb::kUnknown, ""},
      {"DAT", Verb::kUnknown, ""},
  };
  for (const auto& c : cases) {
    CommandLine cmd = split_command(c.line);
    EXPECT_EQ(cmd.verb, c.verb) << c.line;
    EXPECT_EQ(cmd.argument, c.argument) << c.line;
  }
}

TEST(ParsePath, AddressesAndErrors) {
  struct Case {
    std::string argument;
    std::string keyword;
    PathError error;
    std::string address;     // when kNone
    std::string params;      // when kNone
    bool non_ascii = false;  // when kNone
    bool postmaster = false; // when kNone
  };
  const std::string local64(64, 'l'), local65(65, 'l');
  const std::vector<Case> cases = {
      {"FROM:<user@example.com>", "FROM:", PathError::kNone, "user@example.com", ""},
      {"from:<user@example.com>", "FROM:", PathError::kNone, "user@example.com", ""},
      {"FROM: <user@example.com>", "FROM:", PathError::kNone, "user@example.com", ""},
      {"FROM:<user@example.com> SIZE=100 BODY=8BITMIME", "FROM:", PathError::kNone, "user@example.com",
       "SIZE=100 BODY=8BITMIME"},
      {"FROM:<>", "FROM:", PathError::kNone, "", ""},
      {"FROM:<> SIZE=5", "FROM:", PathError::kNone, "", "SIZE=5"},
      {"TO:<postmaster>", "TO:", PathError::kNone, "postmaster", "", false, true},
      {"TO:<PostMaster>", "TO:", PathError::kNone, "PostMaster", "", false, true},
      {"TO:<first.last+tag@sub.example.org>", "TO:", PathError::kNone, "first.last+tag@sub.example.org", ""},
      {"TO:<\"john doe\"@example.com>", "TO:", PathError::kNone, "\"john doe\"@example.com", ""},
      {"TO:<\"a>b@c\"@example.com>", "TO:", PathError::kNone, "\"a>b@c\"@example.com", ""},
      {"TO:<\"esc\\\"aped\"@example.com>", "TO:", PathError::kNone, "\"esc\\\"aped\"@example.com", ""},
      {"TO:<user@[192.0.2.1]>", "TO:", PathError::kNone, "user@[192.0.2.1]", ""},
      {"TO:<user@[IPv6:2001:db8::1]>", "TO:", PathError::kNone, "user@[IPv6:2001:db8::1]", ""},
      {"TO:<user@[x-tag:stuff]>", "TO:", PathError::kNone, "user@[x-tag:stuff]", ""},
      {"TO:<@relay.example,@other.example:user@example.com>", "TO:", PathError::kNone, "user@example.com", ""},
      {"TO:<us\xc3\xa9r@example.com>", "TO:", PathError::kNone, "us\xc3\xa9r@example.com", "", true},
      {"TO:<user@\xc3\xa9xample.com>", "TO:", PathError::kNone, "user@\xc3\xa9xample.com", "", true},
      {"TO:<" + local64 + "@example.com>", "TO:", PathError::kNone, local64 + "@example.com", ""},
      // a@ + 250 + <> = 254 octets.
      {"TO:<a@" + domain_of(250) + ">", "TO:", PathError::kNone, "a@" + domain_of(250), ""},
      {"TO:<a@" + std::string(63, 'd') + ".test>", "TO:", PathError::kNone, "a@" + std::string(63, 'd') + ".test", ""},
      // Errors.
      {"<user@example.com>", "FROM:", PathError::kMissingKeyword},
      {"FROM <user@example.com>", "FROM:", PathError::kMissingKeyword},
      {"TO:<a@b>", "FROM:", PathError::kMissingKeyword},
      {"FROM:user@example.com", "FROM:", PathError::kMissingBrackets},
      {"FROM:<user@example.com", "FROM:", PathError::kMissingBrackets},
      {"FROM:", "FROM:", PathError::kMissingBrackets},
      {"FROM:<user@example.com>SIZE=1", "FROM:", PathError::kBadParameters},
      {"TO:<user>", "TO:", PathError::kBadAddress},
      {"TO:<@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<user@>", "TO:", PathError::kBadAddress},
      {"TO:<.user@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<us..er@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<user.@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<us er@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<us(er@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<user@exa mple.com>", "TO:", PathError::kBadAddress},
      {"TO:<user@example..com>", "TO:", PathError::kBadAddress},
      {"TO:<user@example.com.>", "TO:", PathError::kBadAddress},
      {"TO:<user@a@b.com>", "TO:", PathError::kBadAddress},
      {"TO:<user@[300.1.1.1]>", "TO:", PathError::kBadAddress},
      {"TO:<user@[IPv6:zz::1]>", "TO:", PathError::kBadAddress},
      {"TO:<user@[1.2.3]>", "TO:", PathError::kBadAddress},
      // inet_pton stopped at the NUL and accepted the rest (found by command_parser_fuzz).
      {std::string("TO:<user@[192.0.2.1\0x]>", 23), "TO:", PathError::kBadAddress},
      {std::string("TO:<user@[IPv6:::1\0]>", 21), "TO:", PathError::kBadAddress},
      {"TO:<\"unterminated@example.com>", "TO:", PathError::kMissingBrackets},
      {"TO:<@relay.example:>", "TO:", PathError::kBadAddress},
      {"TO:<@relay..example:user@example.com>", "TO:", PathError::kBadAddress},
      {"TO:<user@" + std::string(64, 'd') + ".com>", "TO:", PathError::kBadAddress},
      {"TO:<" + local65 + "@example.com>", "TO:", PathError::kLocalTooLong},
      {"TO:<a@" + domain_of(256) + ">", "TO:", PathError::kDomainTooLong},
      // local 64 + '@' + domain 190 + <> = 257 octets: each part is legal, the path is not.
      {"TO:<" + local64 + "@" + domain_of(190) + ">", "TO:", PathError::kPathTooLong},
  };
  for (const auto& c : cases) {
    ParsedPath path;
    PathError e = parse_path(c.argument, c.keyword, path);
    EXPECT_EQ(static_cast<int>(e), static_cast<int>(c.error)) << c.argument;
    if (e == PathError::kNone && c.error == PathError::kNone) {
      EXPECT_EQ(path.address, c.address) << c.argument;
      EXPECT_EQ(path.params, c.params) << c.argument;
      EXPECT_EQ(path.non_ascii, c.non_ascii) << c.argument;
      EXPECT_EQ(path.postmaster, c.postmaster) << c.argument;
    }
  }
}

TEST(ParamReader, KeywordsAndValues) {
  ParamReader r("SIZE=1000  BODY=8BITMIME SMTPUTF8");
  ParamReader::Param p;
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p.keyword, "SIZE");
  EXPECT_EQ(p.value, "1000");
  EXPECT_TRUE(p.has_value);
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p.keyword, "BODY");
  EXPECT_EQ(p.value, "8BITMIME");
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p.keyword, "SMTPUTF8");
  EXPECT_FALSE(p.has_value);
  EXPECT_FALSE(r.next(p));
  EXPECT_FALSE(r.failed());
}

TEST(ParamReader, MalformedParameters) {
  for (const char* text : {"=1", "SIZE=", "SI_ZE=1", "SIZE=1=2", "-X", "X=a\x7f"}) {
    ParamReader r(text);
    ParamReader::Param p;
    while (r.next(p)) {
    }
    EXPECT_TRUE(r.failed()) << text;
  }
  ParamReader empty("");
  ParamReader::Param p;
  EXPECT_FALSE(empty.next(p));
  EXPECT_FALSE(empty.failed());
}

TEST(HeloName, Validation) {
  EXPECT_TRUE(valid_helo_name("client.example"));
  EXPECT_TRUE(valid_helo_name("[192.0.2.1]"));
  EXPECT_TRUE(valid_helo_name(std::string(255, 'h')));
  EXPECT_FALSE(valid_helo_name(std::string(256, 'h')));
  EXPECT_FALSE(valid_helo_name(""));
  EXPECT_FALSE(valid_helo_name("two words"));
  EXPECT_FALSE(valid_helo_name("tab\there"));
  EXPECT_FALSE(valid_helo_name("del\x7f"));
}

TEST(SizeValue, DigitsOnlyAndClamped) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_size_value("0", v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_size_value("36700160", v));
  EXPECT_EQ(v, 36700160u);
  EXPECT_TRUE(parse_size_value("99999999999999999999999999", v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(parse_size_value("", v));
  EXPECT_FALSE(parse_size_value("12a", v));
  EXPECT_FALSE(parse_size_value("-1", v));
}

}  // namespace
}  // namespace ringmail::smtp
