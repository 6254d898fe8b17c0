// Tests of routing/domain.cpp: normalisation and Exchange-form address-space parsing.
#include "routing/domain.h"

#include <gtest/gtest.h>

namespace ringmail::routing {
namespace {

TEST(NormalizeDomain, LowerCasesAndDropsOneTrailingDot) {
  EXPECT_EQ(*normalize_domain("Marketing.Contoso.COM."), "marketing.contoso.com");
  EXPECT_FALSE(normalize_domain("example.com..").ok());
  EXPECT_FALSE(normalize_domain("").ok());
  EXPECT_FALSE(normalize_domain(".example.com").ok());
}

TEST(NormalizeDomain, ConvertsULabelsToALabels) {
  if (!idn_supported()) GTEST_SKIP() << "built without libidn2";
  EXPECT_EQ(*normalize_domain("bücher.example"), "xn--bcher-kva.example");
  EXPECT_EQ(*normalize_domain("xn--bcher-kva.example"), "xn--bcher-kva.example");
}

TEST(NormalizeDomain, EnforcesLengths) {
  std::string label63(63, 'a');
  EXPECT_TRUE(normalize_domain(label63 + ".com").ok());
  EXPECT_EQ(normalize_domain(label63 + "a.com").error().message(), "label longer than 63 characters");
  std::string long_name;
  while (long_name.size() < 260) long_name += "abcdefghi.";
  long_name += "com";
  EXPECT_EQ(normalize_domain(long_name).error().message(), "name longer than 253 characters");
}

struct SpaceCase {
  const char* text;         // Exchange-form entry
  PatternKind kind;         // expected shape
  const char* domain;       // expected normalised domain
  int cost;                 // expected cost
};

TEST(ParseAddressSpace, AcceptsExchangeForms) {
  const SpaceCase cases[] = {
      {"SMTP:*.example.com;5", PatternKind::kWildcard, "example.com", 5},
      {"smtp:*.Example.com;5", PatternKind::kWildcard, "example.com", 5},
      {"*.example.com;5", PatternKind::kWildcard, "example.com", 5},
      {"example.com", PatternKind::kExact, "example.com", 1},
      {"example.com.", PatternKind::kExact, "example.com", 1},
      {"*", PatternKind::kAll, "", 1},
      {"SMTP:*;100", PatternKind::kAll, "", 100},
      {" marketing.contoso.com ; 3 ", PatternKind::kExact, "marketing.contoso.com", 3},
  };
  for (const SpaceCase& c : cases) {
    SCOPED_TRACE(c.text);
    auto s = parse_address_space(c.text);
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(s->kind, c.kind);
    EXPECT_EQ(s->domain, c.domain);
    EXPECT_EQ(s->cost, c.cost);
  }
}

TEST(ParseAddressSpace, RejectsBadForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"*example.com", "bad pattern '*example.com': a wildcard must be a whole label, as in "
                       "'*.example.com'"},
      {"a.*.b", "bad pattern 'a.*.b': '*' is only allowed as the first label"},
      {"*.*.example.com", "bad pattern '*.*.example.com': '*' is only allowed as the first label"},
      {"a..b", "bad pattern 'a..b': empty label"},
      {"*.", "bad pattern '*.': empty name"},
      {"example.com;0", "cost 0 is out of range 1-100"},
      {"example.com;101", "cost 101 is out of range 1-100"},
      {"example.com;x", "bad cost 'x' in address space 'example.com;x'"},
      {"X400:c=US;a= ;p=Contoso;5", "address space type 'X400' is not supported (only SMTP)"},
      {"exa mple.com", "bad pattern 'exa mple.com': character not allowed in a domain name"},
      {"-bad.com", "bad pattern '-bad.com': label starts or ends with '-'"},
      {";5", "empty address space ';5'"},
  };
  for (auto [text, expected] : cases) {
    SCOPED_TRACE(text);
    auto s = parse_address_space(text);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message(), expected);
  }
}

}  // namespace
}  // namespace ringmail::routing
