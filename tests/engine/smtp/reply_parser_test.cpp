// Tests of the SMTP reply parser: single and multi-line replies, enhanced status codes, bare LF,
// replies split at every byte boundary, and the protocol errors (garbage, over-long lines, too many
// lines, codes that differ between lines).
#include "engine/smtp/reply_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmail::smtp {
namespace {

struct Parsed {
  std::vector<Reply> replies;            // complete replies in order
  ReplyError error = ReplyError::kNone;  // first error, if any
};

bool operator==(const Reply& a, const Reply& b) {
  return a.code == b.code && a.enhanced == b.enhanced && a.text == b.text;
}

// Feeds `chunks` in order and collects every reply.
Parsed parse_chunks(const std::vector<std::string>& chunks) {
  ReplyParser p;
  Parsed r;
  for (const auto& c : chunks) {
    std::string_view in = c;
    while (!in.empty()) {
      auto s = p.parse(in);
      if (s == ReplyParser::Status::kReply) r.replies.push_back(p.reply());
      if (s == ReplyParser::Status::kError) {
        r.error = p.error();
        return r;
      }
      if (s == ReplyParser::Status::kNeedMore) {
        EXPECT_TRUE(in.empty());
      }
    }
  }
  return r;
}

Parsed parse_all(const std::string& s) { return parse_chunks({s}); }

TEST(ReplyParser, SingleLineWithEnhancedCode) {
  Parsed r = parse_all("250 2.1.0 Ok\r\n");
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0].code, 250);
  EXPECT_EQ(r.replies[0].enhanced, "2.1.0");
  EXPECT_EQ(r.replies[0].text, "Ok");
}

TEST(ReplyParser, MultiLineJoinsTextAndStripsEveryEnhancedCode) {
  Parsed r = parse_all("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                       "550-5.1.1 Please try\r\n"
                       "550 5.1.1 double-checking.\r\n");
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0].code, 550);
  EXPECT_EQ(r.replies[0].enhanced, "5.1.1");
  EXPECT_EQ(r.replies[0].text,
            "The email account that you tried to reach does not exist.\nPlease try\ndouble-checking.");
}

TEST(ReplyParser, CodeOnlyAndBareLfAndNoEnhanced) {
  Parsed r = parse_all("250\r\n421 mx.test closing\n220-a\n220 b\r\n");
  ASSERT_EQ(r.replies.size(), 3u);
  EXPECT_EQ(r.replies[0].code, 250);
  EXPECT_EQ(r.replies[0].text, "");
  EXPECT_EQ(r.replies[1].code, 421);
  EXPECT_EQ(r.replies[1].enhanced, "");
  EXPECT_EQ(r.replies[1].text, "mx.test closing");
  EXPECT_EQ(r.replies[2].text, "a\nb");
}

TEST(ReplyParser, EnhancedCodeOfAnotherClassIsText) {
  Parsed r = parse_all("550 4.1.1 odd\r\n");
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0].enhanced, "");
  EXPECT_EQ(r.replies[0].text, "4.1.1 odd");
}

TEST(ReplyParser, SplitAtEveryByteGivesTheSameReplies) {
  const std::string stream =
      "220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
      "250 2.1.0 Ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go ahead\r\n250 2.0.0 queued as X\r\n";
  Parsed whole = parse_all(stream);
  ASSERT_EQ(whole.replies.size(), 6u);
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  Parsed bytewise = parse_chunks(bytes);
  ASSERT_EQ(bytewise.replies.size(), whole.replies.size());
  for (size_t i = 0; i < whole.replies.size(); ++i) EXPECT_TRUE(bytewise.replies[i] == whole.replies[i]) << i;
  for (size_t k = 0; k <= stream.size(); ++k) {
    Parsed two = parse_chunks({stream.substr(0, k), stream.substr(k)});
    ASSERT_EQ(two.replies.size(), whole.replies.size()) << "split at " << k;
    for (size_t i = 0; i < whole.replies.size(); ++i) EXPECT_TRUE(two.replies[i] == whole.replies[i]) << k << ":" << i;
  }
}

TEST(ReplyParser, PartialTellsWhetherAReplyIsUnfinished) {
  ReplyParser p;
  EXPECT_FALSE(p.partial());
  std::string_view in = "250-mx";
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kNeedMore);
  EXPECT_TRUE(p.partial());
  in = ".test\r\n";
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kNeedMore);
  EXPECT_TRUE(p.partial());  // a continuation line was read, the last line is missing
  in = "250 SIZE\r\n";
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kReply);
  EXPECT_FALSE(p.partial());
}

struct BadCase {
  const char* input;
  ReplyError error;
};

TEST(ReplyParser, GarbageIsAProtocolError) {
  const BadCase cases[] = {
      {"hello\r\n", ReplyError::kBadLine},
      {"25\r\n", ReplyError::kBadLine},
      {"\r\n", ReplyError::kBadLine},
      {"2500 x\r\n", ReplyError::kBadLine},
      {"250x\r\n", ReplyError::kBadLine},
      {"150 one-x\r\n", ReplyError::kBadLine},
      {"650 x\r\n", ReplyError::kBadLine},
      {"HTTP/1.1 400 Bad Request\r\n", ReplyError::kBadLine},
      {"250-a\r\n251 b\r\n", ReplyError::kCodeMismatch},
      {"250-a\r\nxyz\r\n", ReplyError::kBadLine},
  };
  for (const auto& c : cases) {
    Parsed r = parse_all(c.input);
    EXPECT_TRUE(r.replies.empty()) << c.input;
    EXPECT_EQ(r.error, c.error) << c.input;
  }
}

TEST(ReplyParser, ErrorIsStickyUntilReset) {
  ReplyParser p;
  std::string_view in = "junk\r\n250 ok\r\n";
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kError);
  in = "250 ok\r\n";
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kError);
  p.reset();
  EXPECT_EQ(p.parse(in), ReplyParser::Status::kReply);
  EXPECT_EQ(p.reply().code, 250);
}

TEST(ReplyParser, LineLengthIsBounded) {
  std::string ok = "250 " + std::string(ReplyParser::kMaxLine - 6, 'x') + "\r\n";
  ASSERT_EQ(ok.size(), ReplyParser::kMaxLine);
  EXPECT_EQ(parse_all(ok).replies.size(), 1u);
  std::string too_long = "250 " + std::string(ReplyParser::kMaxLine - 5, 'x') + "\r\n";
  EXPECT_EQ(parse_all(too_long).error, ReplyError::kLineTooLong);
  // Without a line end at all, the error comes as soon as the bound is passed, in small pieces too.
  std::vector<std::string> pieces(ReplyParser::kMaxLine / 100 + 2, std::string(100, 'x'));
  pieces.front() = "250 " + pieces.front();
  EXPECT_EQ(parse_chunks(pieces).error, ReplyError::kLineTooLong);
}

TEST(ReplyParser, LineCountIsBounded) {
  std::string many;
  for (size_t i = 0; i < ReplyParser::kMaxLines - 1; ++i) many += "250-x\r\n";
  EXPECT_EQ(parse_all(many + "250 end\r\n").replies.size(), 1u);
  EXPECT_EQ(parse_all(many + "250-x\r\n250 end\r\n").error, ReplyError::kTooManyLines);
}

TEST(EnhancedCode, TakesOnlyWellFormedCodesOfTheReplyClass) {
  struct Case {
    const char* text;
    int klass;
    const char* code;  // expected, "" = none
    const char* rest;  // text left
  };
  const Case cases[] = {
      {"5.1.1 User unknown", 5, "5.1.1", "User unknown"},
      {"4.7.0", 4, "4.7.0", ""},
      {"2.0.0 Ok", 2, "2.0.0", "Ok"},
      {"5.123.456 x", 5, "5.123.456", "x"},
      {"5.1234.1 x", 5, "", "5.1234.1 x"},
      {"5.1.1x", 5, "", "5.1.1x"},
      {"5.1. x", 5, "", "5.1. x"},
      {"4.1.1 x", 5, "", "4.1.1 x"},
      {"3.0.0 x", 3, "", "3.0.0 x"},
      {"Ok", 2, "", "Ok"},
  };
  for (const auto& c : cases) {
    std::string_view text = c.text;
    EXPECT_EQ(take_enhanced_code(text, c.klass), c.code) << c.text;
    EXPECT_EQ(text, c.rest) << c.text;
  }
}

}  // namespace
}  // namespace ringmail::smtp
