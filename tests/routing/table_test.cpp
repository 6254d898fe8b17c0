// Tests of routing/table.cpp: the selection rules, table-driven (domain, size, node) → connector,
// the explanation of losers, and that select() does not allocate.
#include "routing/table.h"

#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "routing/config_loader.h"
#include "routing/domain.h"
#include "tests/routing/alloc_counter.h"

namespace ringmail::routing {
namespace {

std::shared_ptr<const Table> build(std::string_view toml, NodeIdentity node = {"mx1", {}}) {
  ConfigLoad load = parse_connector_text(toml, "t.toml");
  EXPECT_TRUE(load.config) << (load.errors.empty() ? "" : load.errors[0]);
  if (!load.config) return nullptr;
  auto table = Table::build(load.config, std::move(node));
  EXPECT_TRUE(table.ok());
  return *table;
}

struct Case {
  const char* domain;      // recipient domain
  uint64_t size;           // message size in bytes
  const char* connector;   // expected winner, or nullptr
  const char* pattern;     // expected matched space, or the Unreachable reason's subject
  Unreachable unreachable; // expected reason when connector is nullptr
};

void check(const Table& table, const Case* begin, const Case* end) {
  for (const Case* c = begin; c != end; ++c) {
    SCOPED_TRACE(::testing::Message() << c->domain << " size " << c->size);
    Selection s;
    const Connector* got = table.select(c->domain, c->size, &s);
    if (c->connector == nullptr) {
      EXPECT_EQ(got, nullptr) << "chose " << got->name;
      EXPECT_EQ(s.unreachable, c->unreachable) << unreachable_reason(s.unreachable);
      continue;
    }
    ASSERT_NE(got, nullptr) << unreachable_reason(s.unreachable);
    EXPECT_EQ(got->name, c->connector);
    EXPECT_EQ(s.connector, got);
    EXPECT_EQ(s.space->pattern(), c->pattern);
    EXPECT_EQ(s.unreachable, Unreachable::kNone);
  }
}

constexpr Unreachable kOk = Unreachable::kNone;

// The Exchange documentation's example: julia@marketing.contoso.com with *, *.contoso.com and
// marketing.contoso.com, plus label boundaries and case/trailing-dot normalisation.
TEST(TableSelect, ExchangeExampleAndLabelBoundaries) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
[[connector]]
name = "Contoso"
address_spaces = ["*.contoso.com"]
[[connector]]
name = "Marketing"
address_spaces = ["marketing.contoso.com"]
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"marketing.contoso.com", 100, "Marketing", "marketing.contoso.com", kOk},
      {"MARKETING.Contoso.COM.", 100, "Marketing", "marketing.contoso.com", kOk},
      {"sales.contoso.com", 100, "Contoso", "*.contoso.com", kOk},
      {"contoso.com", 100, "Contoso", "*.contoso.com", kOk},
      {"eu.marketing.contoso.com", 100, "Contoso", "*.contoso.com", kOk},
      {"notcontoso.com", 100, "Internet", "*", kOk},
      {"contoso.com.evil.example", 100, "Internet", "*", kOk},
      {"com", 100, "Internet", "*", kOk},
      {"[192.0.2.1]", 100, "Internet", "*", kOk},
      {"a..contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
      {"", 100, nullptr, "", Unreachable::kInvalidDomain},
      {".contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
  };
  check(*table, std::begin(cases), std::end(cases));
}

// select() (delivery's fast path) and explain() (what ringmail-route shows) must give the same
// answer for every input, including address literals (only "*" matches) and names that are not
// domain names (found by tests/fuzz/connector_config_fuzz: select() used to route "'.contoso.com"
// through *.contoso.com while explain() called it invalid, and explain() refused literals).
TEST(TableSelect, SelectAndExplainAgreeOnLiteralsAndBadNames) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
[[connector]]
name = "Contoso"
address_spaces = ["*.contoso.com"]
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"[192.0.2.1]", 100, "Internet", "*", kOk},
      {"[IPv6:2001:DB8::1]", 100, "Internet", "*", kOk},
      {"'.contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
      {"a b.contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
      {"x*.contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
      {"-a.contoso.com", 100, nullptr, "", Unreachable::kInvalidDomain},
      {"contoso.com..", 100, nullptr, "", Unreachable::kInvalidDomain},  // one trailing dot only
      {"bücher.example..", 100, nullptr, "", Unreachable::kInvalidDomain},  // also on the IDN path
      {"Bücher.example.", 100, "Internet", "*", kOk},
  };
  check(*table, std::begin(cases), std::end(cases));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.domain);
    Explanation ex = table->explain(c.domain, c.size);
    Selection s;
    EXPECT_EQ(ex.selection.connector, table->select(c.domain, c.size, &s));
    EXPECT_EQ(ex.selection.unreachable, s.unreachable);
  }
  EXPECT_EQ(table->explain("[IPv6:2001:DB8::1]", 100).domain, "[ipv6:2001:db8::1]");
  // A NUL inside a non-ASCII name: libidn2 reads C strings and converted only "b".
  constexpr char kNul[] = "b\0bücher.example";
  const std::string_view nul(kNul, sizeof kNul - 1);
  Selection s;
  EXPECT_EQ(table->select(nul, 100, &s), nullptr);
  EXPECT_EQ(s.unreachable, Unreachable::kInvalidDomain);
  EXPECT_EQ(table->explain(nul, 100).selection.unreachable, Unreachable::kInvalidDomain);
  // Over 253 octets of UTF-8 that are a valid name in A-labels: both paths convert before judging.
  std::string long_idn;
  for (int i = 0; i < 9; ++i) long_idn += "üüüüüüüüüüüüüüü.";  // 9 labels of 30 octets
  long_idn += "contoso.com";
  ASSERT_GT(long_idn.size(), 253u);
  const Connector* c = table->select(long_idn, 100, &s);
  ASSERT_NE(c, nullptr) << unreachable_reason(s.unreachable);
  EXPECT_EQ(c->name, "Contoso");
  EXPECT_EQ(c, table->explain(long_idn, 100).selection.connector);
  EXPECT_EQ(s.unreachable, table->explain(long_idn, 100).selection.unreachable);
}

// select()'s syntax check (SSE2 masks for names up to 64 octets) gives normalize_domain()'s verdict
// for names built from the characters that matter, at every length around the 16-octet blocks and
// the 63/64-octet label limit.
TEST(TableSelect, FastSyntaxCheckAgreesWithNormalizeDomain) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
)");
  ASSERT_TRUE(table);
  const std::string alphabet = "ab-._.-Z9*.";
  std::mt19937 rng(20261128);
  size_t valid = 0, invalid = 0;
  for (int round = 0; round < 20000; ++round) {
    size_t n = 1 + rng() % 70;
    std::string name;
    for (size_t i = 0; i < n; ++i) name += rng() % 4 == 0 ? alphabet[rng() % alphabet.size()] : 'a' + rng() % 26;
    Selection s;
    const bool routed = table->select(name, 1, &s) != nullptr;
    const bool normal = normalize_domain(name).ok();
    ASSERT_EQ(routed, normal) << "'" << name << "' " << unreachable_reason(s.unreachable);
    (normal ? valid : invalid) += 1;
  }
  EXPECT_GT(valid, 2000u);  // both verdicts well represented
  EXPECT_GT(invalid, 2000u);
  // The label limit at the edge of the masked path (64 octets) and beyond it.
  for (const std::string& name : {std::string(63, 'a'), std::string(64, 'a'), std::string(65, 'a'),
                                  "b." + std::string(62, 'a'), "b." + std::string(63, 'a'), "b." + std::string(64, 'a'),
                                  std::string(16, 'a') + "-", "-" + std::string(47, 'a'), std::string(15, 'a') + ".-a"}) {
    Selection s;
    EXPECT_EQ(table->select(name, 1, &s) != nullptr, normalize_domain(name).ok()) << name;
  }
  Selection s;
  EXPECT_EQ(table->select(std::string(64, 'a'), 1, &s), nullptr);
  EXPECT_NE(table->select("b." + std::string(62, 'a'), 1, &s), nullptr);
}

TEST(TableSelect, MostLabelsWinsAndCostNeverCrossesSpecificity) {
  auto table = build(R"(
[[connector]]
name = "cheap-wide"
address_spaces = ["*.example.com;1", "*;1"]
[[connector]]
name = "dear-narrow"
address_spaces = ["*.eu.example.com;100"]
[[connector]]
name = "exact-dear"
address_spaces = ["shop.eu.example.com;100"]
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"a.b.eu.example.com", 1, "dear-narrow", "*.eu.example.com", kOk},
      {"eu.example.com", 1, "dear-narrow", "*.eu.example.com", kOk},
      {"shop.eu.example.com", 1, "exact-dear", "shop.eu.example.com", kOk},
      {"us.example.com", 1, "cheap-wide", "*.example.com", kOk},
      {"neu.example.com", 1, "cheap-wide", "*.example.com", kOk},
      {"example.org", 1, "cheap-wide", "*", kOk},
  };
  check(*table, std::begin(cases), std::end(cases));
}

TEST(TableSelect, TiesGoToCostThenLocalityThenName) {
  const char* config = R"(
[[connector]]
name = "beta"
address_spaces = ["*.cost.example;5", "*.name.example;2", "*.local.example;2"]
[[connector]]
name = "alpha"
address_spaces = ["*.cost.example;7", "*.name.example;2", "*.local.example;2"]
[[connector]]
name = "zeta"
address_spaces = ["*.local.example;2", "*.addr.example;4"]
nodes = ["mx1", "mx2"]
[[connector]]
name = "Zulu"
address_spaces = ["*.addr.example;4"]
[[connector]]
name = "yankee"
address_spaces = ["*.addr.example;4"]
source_addresses = ["192.0.2.9"]
)";
  auto on_mx1 = build(config, NodeIdentity{"mx1", {}});
  ASSERT_TRUE(on_mx1);
  const Case mx1_cases[] = {
      {"x.cost.example", 1, "beta", "*.cost.example", kOk},         // 5 < 7
      {"x.name.example", 1, "alpha", "*.name.example", kOk},        // byte order
      {"x.local.example", 1, "zeta", "*.local.example", kOk},       // nodes include mx1
      {"x.addr.example", 1, "zeta", "*.addr.example", kOk},         // locality beats "Zulu" < "yankee"
  };
  check(*on_mx1, std::begin(mx1_cases), std::end(mx1_cases));

  // On mx3, "zeta" may not be used at all; source address 192.0.2.9 makes "yankee" local.
  auto on_mx3 = build(config, NodeIdentity{"mx3", {"192.0.2.9"}});
  ASSERT_TRUE(on_mx3);
  const Case mx3_cases[] = {
      {"x.local.example", 1, "alpha", "*.local.example", kOk},
      {"x.addr.example", 1, "yankee", "*.addr.example", kOk},
  };
  check(*on_mx3, std::begin(mx3_cases), std::end(mx3_cases));

  // Without locality, byte order puts "Zulu" (Z = 0x5a) before "yankee" (y = 0x79).
  auto elsewhere = build(config, NodeIdentity{"mx9", {}});
  ASSERT_TRUE(elsewhere);
  const Case other_cases[] = {{"x.addr.example", 1, "Zulu", "*.addr.example", kOk}};
  check(*elsewhere, std::begin(other_cases), std::end(other_cases));
}

TEST(TableSelect, SizeFilterHandsLargeMailToALessSpecificConnector) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
max_message_size = "50MB"
[[connector]]
name = "Contoso"
address_spaces = ["*.contoso.com"]
max_message_size = "10MB"
[[connector]]
name = "Marketing"
address_spaces = ["marketing.contoso.com"]
max_message_size = "1MB"
)");
  ASSERT_TRUE(table);
  const uint64_t mb = 1 << 20;
  const Case cases[] = {
      {"marketing.contoso.com", mb, "Marketing", "marketing.contoso.com", kOk},  // limit inclusive
      {"marketing.contoso.com", mb + 1, "Contoso", "*.contoso.com", kOk},
      {"marketing.contoso.com", 20 * mb, "Internet", "*", kOk},
      {"marketing.contoso.com", 51 * mb, nullptr, "", Unreachable::kMessageTooLarge},
      {"contoso.com", 0, "Contoso", "*.contoso.com", kOk},
  };
  check(*table, std::begin(cases), std::end(cases));
}

TEST(TableSelect, DisabledAndForeignConnectorsAreSkipped) {
  auto table = build(R"(
[[connector]]
name = "Marketing"
enabled = false
address_spaces = ["marketing.contoso.com"]
[[connector]]
name = "Contoso"
address_spaces = ["*.contoso.com"]
[[connector]]
name = "Off"
enabled = false
address_spaces = ["*.off.example"]
[[connector]]
name = "Elsewhere"
address_spaces = ["*.far.example", "*.mixed.example"]
nodes = ["mx7"]
[[connector]]
name = "Small"
address_spaces = ["*.mixed.example"]
max_message_size = 1000
[[connector]]
name = "OffToo"
enabled = false
address_spaces = ["*.mixed.example"]
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"marketing.contoso.com", 1, "Contoso", "*.contoso.com", kOk},
      {"x.off.example", 1, nullptr, "", Unreachable::kAllDisabled},
      {"x.far.example", 1, nullptr, "", Unreachable::kNotForThisNode},
      {"x.mixed.example", 1, "Small", "*.mixed.example", kOk},
      {"x.mixed.example", 5000, nullptr, "", Unreachable::kMessageTooLarge},
      {"example.org", 1, nullptr, "", Unreachable::kNoMatch},
  };
  check(*table, std::begin(cases), std::end(cases));
}

TEST(TableSelect, InternationalisedNamesCompareAsALabels) {
  auto table = build(R"(
[[connector]]
name = "books"
address_spaces = ["*.bücher.example"]
[[connector]]
name = "shop"
address_spaces = ["xn--mnchen-3ya.example"]
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"shop.bücher.example", 1, "books", "*.xn--bcher-kva.example", kOk},
      {"shop.XN--BCHER-KVA.example", 1, "books", "*.xn--bcher-kva.example", kOk},
      {"münchen.example", 1, "shop", "xn--mnchen-3ya.example", kOk},
      {"muenchen.example", 1, nullptr, "", Unreachable::kNoMatch},
  };
  check(*table, std::begin(cases), std::end(cases));
}

TEST(TableSelect, DoesNotAllocateForAsciiDomains) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
[[connector]]
name = "Contoso"
address_spaces = ["*.contoso.com", "marketing.contoso.com"]
)");
  ASSERT_TRUE(table);
  Selection s;
  ringmail::testing::start_counting_allocations();
  const Connector* a = table->select("Eu.Marketing.Contoso.com", 10, &s);
  const Connector* b = table->select("nowhere.example.", 10, &s);
  const Connector* c = table->select("a..b", 10, &s);
  EXPECT_EQ(ringmail::testing::stop_counting_allocations(), 0);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->name, "Contoso");
  EXPECT_EQ(b->name, "Internet");
  EXPECT_EQ(c, nullptr);
}

// The compact table keeps limits below 4 GiB in the entry and reads larger ones from the
// connector; both must compare exactly (a limit equal to the size passes).
TEST(TableSelect, MessageSizeLimitsAboveFourGibibytesAreExact) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*;5"]
max_message_size = 4294967294
[[connector]]
name = "Huge"
address_spaces = ["*;1"]
max_message_size = 6442450944
)");
  ASSERT_TRUE(table);
  const Case cases[] = {
      {"example.com", 6442450944, "Huge", "*", kOk},
      {"example.com", 6442450945, nullptr, "", Unreachable::kMessageTooLarge},
      {"example.com", 4294967294, "Huge", "*", kOk},
  };
  check(*table, std::begin(cases), std::end(cases));
  auto small = build(R"(
[[connector]]
name = "Small"
address_spaces = ["*"]
max_message_size = 4294967294
)");
  ASSERT_TRUE(small);
  const Case small_cases[] = {
      {"example.com", 4294967294, "Small", "*", kOk},
      {"example.com", 4294967295, nullptr, "", Unreachable::kMessageTooLarge},
  };
  check(*small, std::begin(small_cases), std::end(small_cases));
}

// Long labels and names take the hash's multi-word path; keys of every length must still match
// only on label boundaries, and keys that differ only past the first words must not collide.
TEST(TableSelect, LongLabelsAndLongNames) {
  const std::string label63(63, 'a');
  const std::string label17 = "abcdefghijklmnopq";
  const std::string long_name = label63 + "." + label63 + "." + label63 + ".example.com";
  auto table = build(fmt::format(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
[[connector]]
name = "Long"
address_spaces = ["*.{}"]
[[connector]]
name = "Seventeen"
address_spaces = ["{}.example.com"]
[[connector]]
name = "Sixteen"
address_spaces = ["{}.example.com"]
)", long_name, label17, label17.substr(0, 16)));
  ASSERT_TRUE(table);
  const std::string sub = "x." + long_name;
  const std::string long_pattern = "*." + long_name;
  const std::string other = label63 + "." + label63 + "." + std::string(62, 'a') + "b.example.com";
  const std::string seventeen = label17 + ".example.com";
  const std::string sixteen = label17.substr(0, 16) + ".example.com";
  const std::string almost = label17.substr(0, 16) + "x.example.com";
  const Case cases[] = {
      {long_name.c_str(), 1, "Long", long_pattern.c_str(), kOk},
      {sub.c_str(), 1, "Long", long_pattern.c_str(), kOk},
      {other.c_str(), 1, "Internet", "*", kOk},
      {seventeen.c_str(), 1, "Seventeen", seventeen.c_str(), kOk},
      {sixteen.c_str(), 1, "Sixteen", sixteen.c_str(), kOk},
      {almost.c_str(), 1, "Internet", "*", kOk},
  };
  check(*table, std::begin(cases), std::end(cases));
}

TEST(TableExplain, NamesEveryLoserAndTheRuleThatBeatIt) {
  auto table = build(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
[[connector]]
name = "Contoso-B"
address_spaces = ["*.contoso.com;2"]
[[connector]]
name = "Contoso-A"
address_spaces = ["*.contoso.com;2"]
[[connector]]
name = "Contoso-Dear"
address_spaces = ["*.contoso.com;9"]
[[connector]]
name = "Contoso-Local"
address_spaces = ["*.contoso.com;2"]
nodes = ["mx1"]
[[connector]]
name = "Marketing-Small"
address_spaces = ["marketing.contoso.com"]
max_message_size = 100
[[connector]]
name = "Marketing-Off"
enabled = false
address_spaces = ["marketing.contoso.com"]
[[connector]]
name = "Marketing-Other-Node"
address_spaces = ["marketing.contoso.com"]
nodes = ["mx2"]
)");
  ASSERT_TRUE(table);
  Explanation ex = table->explain("Marketing.Contoso.com", 1000);
  EXPECT_EQ(ex.domain, "marketing.contoso.com");
  ASSERT_NE(ex.selection.connector, nullptr);
  EXPECT_EQ(ex.selection.connector->name, "Contoso-Local");
  EXPECT_EQ(ex.selection.space->pattern(), "*.contoso.com");
  EXPECT_EQ(ex.selection.level, MatchLevel::kWildcard);
  std::vector<std::pair<std::string, LossRule>> losers;
  for (const RunnerUp& r : ex.runners_up) losers.emplace_back(r.connector->name, r.rule);
  EXPECT_THAT(losers, ::testing::UnorderedElementsAre(
                          std::pair<std::string, LossRule>{"Marketing-Small", LossRule::kMessageTooLarge},
                          std::pair<std::string, LossRule>{"Marketing-Off", LossRule::kDisabled},
                          std::pair<std::string, LossRule>{"Marketing-Other-Node", LossRule::kNotForThisNode},
                          std::pair<std::string, LossRule>{"Contoso-A", LossRule::kNotLocal},
                          std::pair<std::string, LossRule>{"Contoso-B", LossRule::kNotLocal},
                          std::pair<std::string, LossRule>{"Contoso-Dear", LossRule::kHigherCost},
                          std::pair<std::string, LossRule>{"Internet", LossRule::kLessSpecific}));

  // On another node, Contoso-Local is out, and A beats B on name order.
  auto elsewhere = Table::build(std::make_shared<Config>(table->config()), NodeIdentity{"mx5", {}});
  ASSERT_TRUE(elsewhere.ok());
  Explanation ex2 = (*elsewhere)->explain("marketing.contoso.com", 50);
  ASSERT_NE(ex2.selection.connector, nullptr);
  EXPECT_EQ(ex2.selection.connector->name, "Marketing-Small");
  Explanation ex3 = (*elsewhere)->explain("sales.contoso.com", 50);
  ASSERT_NE(ex3.selection.connector, nullptr);
  EXPECT_EQ(ex3.selection.connector->name, "Contoso-A");
  bool saw_b = false;
  for (const RunnerUp& r : ex3.runners_up) {
    if (r.connector->name == "Contoso-B") {
      saw_b = true;
      EXPECT_EQ(r.rule, LossRule::kNameOrder);
    }
    if (r.connector->name == "Contoso-Local") {
      EXPECT_EQ(r.rule, LossRule::kNotForThisNode);
    }
  }
  EXPECT_TRUE(saw_b);
}

TEST(TableExplain, UnreachableCarriesTheReason) {
  auto table = build(R"(
[[connector]]
name = "Small"
address_spaces = ["*.example.com"]
max_message_size = 10
)");
  ASSERT_TRUE(table);
  Explanation ex = table->explain("a.example.com", 11);
  EXPECT_EQ(ex.selection.connector, nullptr);
  EXPECT_EQ(ex.selection.unreachable, Unreachable::kMessageTooLarge);
  ASSERT_EQ(ex.runners_up.size(), 1u);
  EXPECT_EQ(ex.runners_up[0].rule, LossRule::kMessageTooLarge);
  EXPECT_EQ(table->explain("example.org", 1).selection.unreachable, Unreachable::kNoMatch);
}

}  // namespace
}  // namespace ringmail::routing
