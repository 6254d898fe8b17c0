// MxResolver against a real Knot server (tests/integration/dns/test.zone): every RFC 5321 §5.1
// case, CNAMEs, SERVFAIL from a zone that fails to load, TTL expiry seen at the server, TCP
// fallback, equal-preference shuffling, and coalescing counted by Knot's mod-stats.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/clock.h"
#include "routing/dns/ares_transport.h"
#include "routing/dns/mx_resolver.h"
#include "routing/dns/poll_dns_loop.h"
#include "tests/routing/dns/knot_server.h"

namespace ringmail::routing::dns {
namespace {

using testing::KnotServer;
using AnswerPtr = MxResolver::AnswerPtr;

class KnotResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto k = KnotServer::start({{"test", testing::read_fixture("test.zone")},
                                {"servfail", testing::read_fixture("broken.zone")}});
    ASSERT_TRUE(k.ok()) << k.error().message();
    knot_ = std::move(*k).release();
  }
  static void TearDownTestSuite() {
    delete knot_;
    knot_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(knot_, nullptr);
    settings_.servers = {knot_->address()};
    settings_.cache.min_ttl = std::chrono::seconds(0);
    settings_.query_timeout = std::chrono::milliseconds(1000);
    start();
  }
  void TearDown() override { stop(); }

  void start() {
    auto t = AresTransport::create(loop_, settings_);
    ASSERT_TRUE(t.ok()) << t.error().message();
    transport_ = std::move(*t);
    resolver_ = std::make_unique<MxResolver>(*transport_, loop_, clock_, settings_);
    loop_.attach(resolver_.get());
  }
  void stop() {
    resolver_.reset();
    transport_.reset();
  }

  AnswerPtr resolve(std::string_view domain) {
    AnswerPtr got;
    AnswerPtr hit = resolver_->resolve(domain, [&](AnswerPtr a) { got = std::move(a); });
    if (hit) return hit;
    EXPECT_TRUE(loop_.run_until([&] { return got != nullptr; }, std::chrono::seconds(20))) << domain;
    return got;
  }

  static std::vector<std::string> names(const MxAnswer& a) {
    std::vector<std::string> out;
    for (const MxHost& h : a.hosts) out.push_back(h.name);
    return out;
  }

  static KnotServer* knot_;
  ManualClock clock_;
  DnsSettings settings_;
  PollDnsLoop loop_;
  std::unique_ptr<AresTransport> transport_;
  std::unique_ptr<MxResolver> resolver_;
};
KnotServer* KnotResolverTest::knot_ = nullptr;

TEST_F(KnotResolverTest, SeveralMxSortedByPreferenceWithAddressesAndTtls) {
  AnswerPtr a = resolve("Example.TEST.");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->domain, "example.test");
  EXPECT_FALSE(a->implicit_mx);
  ASSERT_EQ(a->hosts.size(), 3u);
  EXPECT_EQ(a->hosts[0].preference, 10);
  EXPECT_EQ(a->hosts[1].preference, 10);
  EXPECT_EQ(a->hosts[2].name, "backup.example.test");
  EXPECT_EQ(a->hosts[2].preference, 20);
  EXPECT_EQ(a->hosts[0].ttl, 600u);
  const MxHost& mx1 = a->hosts[0].name == "mx1.example.test" ? a->hosts[0] : a->hosts[1];
  ASSERT_EQ(mx1.addresses.size(), 2u);
  EXPECT_EQ(mx1.addresses[0].address.host(), "127.0.0.11");  // ipv4 preferred, then IPv6
  EXPECT_EQ(mx1.addresses[1].address.host(), "::1");
  EXPECT_EQ(mx1.addresses[0].ttl, 120u);
  EXPECT_EQ(a->ttl, 30u);  // the shortest part: backup's A record
}

TEST_F(KnotResolverTest, Ipv6PreferencePutsAaaaFirst) {
  stop();
  settings_.ip_preference = IpPreference::kIpv6;
  start();
  AnswerPtr a = resolve("example.test");
  bool seen = false;
  for (const MxHost& h : a->hosts) {
    if (h.name != "mx1.example.test") continue;
    seen = true;
    EXPECT_EQ(h.addresses[0].address.host(), "::1");
  }
  EXPECT_TRUE(seen);
}

TEST_F(KnotResolverTest, NoMxMeansImplicitMx) {
  AnswerPtr a = resolve("implicit.test");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_TRUE(a->implicit_mx);
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].name, "implicit.test");
  EXPECT_EQ(a->hosts[0].preference, 0);
  EXPECT_EQ(a->hosts[0].addresses[0].address.host(), "127.0.0.21");
  EXPECT_EQ(a->hosts[0].ttl, 90u);
}

TEST_F(KnotResolverTest, NullMxIsPermanent556) {
  AnswerPtr a = resolve("nullmx.test");
  EXPECT_EQ(a->outcome, DnsOutcome::kPermanent);
  EXPECT_EQ(a->smtp_code, 556);
  EXPECT_EQ(a->enhanced_status, "5.1.10");
  EXPECT_TRUE(a->hosts.empty());
}

TEST_F(KnotResolverTest, NxDomainIsPermanentAndCachedForTheSoaTtl) {
  uint64_t before = knot_->counter("query-type[MX]");
  AnswerPtr a = resolve("nx.test");
  EXPECT_EQ(a->outcome, DnsOutcome::kPermanent);
  EXPECT_EQ(a->enhanced_status, "5.1.2");
  EXPECT_EQ(a->ttl, 60u);  // min(SOA TTL 3600, MINIMUM 60)
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 1);
  EXPECT_NE(resolver_->resolve("nx.test", [](AnswerPtr) { FAIL() << "should be a hit"; }), nullptr);
  clock_.advance(std::chrono::seconds(61));
  EXPECT_EQ(resolve("nx.test")->enhanced_status, "5.1.2");
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 2);
}

TEST_F(KnotResolverTest, NoDataAnywhereIsPermanentNoAddress) {
  AnswerPtr a = resolve("nodata.test");
  EXPECT_EQ(a->outcome, DnsOutcome::kPermanent);
  EXPECT_EQ(a->enhanced_status, "5.4.4");
  EXPECT_TRUE(a->implicit_mx);
  EXPECT_EQ(a->ttl, 60u);
}

TEST_F(KnotResolverTest, CnamesAreFollowed) {
  AnswerPtr a = resolve("alias.test");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->canonical_domain, "example.test");
  EXPECT_EQ(a->hosts.size(), 3u);

  AnswerPtr b = resolve("alias2.test");  // CNAME to a name without MX: implicit MX at the target
  ASSERT_TRUE(b->ok()) << b->text;
  EXPECT_TRUE(b->implicit_mx);
  EXPECT_EQ(b->hosts[0].name, "implicit.test");

  AnswerPtr c = resolve("mxcname.test");  // the exchange is a CNAME
  ASSERT_TRUE(c->ok()) << c->text;
  EXPECT_EQ(c->hosts[0].name, "cname-target.test");
  EXPECT_EQ(c->hosts[0].addresses[0].address.host(), "127.0.0.11");
}

TEST_F(KnotResolverTest, MxHostWithoutAddressIsSkipped) {
  AnswerPtr a = resolve("partial.test");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(names(*a), std::vector<std::string>{"mx2.example.test"});
  ASSERT_EQ(a->skipped.size(), 1u);
  EXPECT_NE(a->skipped[0].find("missing.test"), std::string::npos);

  AnswerPtr b = resolve("noaddr.test");  // every lookup a definite "does not exist"
  EXPECT_EQ(b->outcome, DnsOutcome::kPermanent);
  EXPECT_EQ(b->enhanced_status, "5.4.4");
}

TEST_F(KnotResolverTest, ServfailIsTemporary) {
  AnswerPtr a = resolve("x.servfail");
  EXPECT_EQ(a->outcome, DnsOutcome::kTemporary);
  EXPECT_EQ(a->enhanced_status, "4.4.3");
  EXPECT_NE(a->text.find("SERVFAIL"), std::string::npos) << a->text;
  EXPECT_EQ(a->ttl, 2u);  // first failure: remembered briefly

  AnswerPtr b = resolve("mxfail.test");  // the only MX host's lookup fails
  EXPECT_EQ(b->outcome, DnsOutcome::kTemporary);
  EXPECT_NE(b->text.find("mx.servfail"), std::string::npos) << b->text;
}

TEST_F(KnotResolverTest, ShortTtlExpiresAndTheNextLookupReachesKnot) {
  uint64_t before = knot_->counter("query-type[MX]");
  AnswerPtr a = resolve("short.test");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->ttl, 1u);
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 1);
  EXPECT_NE(resolver_->resolve("short.test", [](AnswerPtr) {}), nullptr);  // fresh: a hit
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 1);
  clock_.advance(std::chrono::milliseconds(1001));
  AnswerPtr again = resolve("short.test");
  EXPECT_TRUE(again->ok());
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 2);
}

TEST_F(KnotResolverTest, LargeAnswerFallsBackToTcp) {
  stop();
  settings_.use_edns = false;  // 512-byte UDP limit: 40 MX records set TC
  start();
  uint64_t tcp_before = knot_->counter("request-protocol[tcp4]");
  AnswerPtr a = resolve("bigmx.test");
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->skipped.size(), 39u);  // big-mx-host-number-NN do not exist
  EXPECT_EQ(names(*a), std::vector<std::string>{"mx1.example.test"});
  EXPECT_GE(transport_->stats().tcp_sockets, 1u);
  EXPECT_GE(knot_->counter("request-protocol[tcp4]"), tcp_before + 1);
}

TEST_F(KnotResolverTest, EqualPreferencesAreShuffledAtUseTime) {
  AnswerPtr a = resolve("spread.test");
  ASSERT_EQ(a->hosts.size(), 4u);
  std::mt19937_64 rng(12345);
  std::map<std::string, int> first;
  constexpr int kRuns = 4000;
  for (int i = 0; i < kRuns; ++i) ++first[attempt_order(*a, rng, 5, 25)[0].host->name];
  ASSERT_EQ(first.size(), 4u);
  for (auto& [name, n] : first) {  // expected 1000 each; 5 standard deviations is +-137
    EXPECT_GT(n, 850) << name;
    EXPECT_LT(n, 1150) << name;
  }
  AnswerPtr b = resolve("example.test");  // the backup (preference 20) is never first
  int mx1 = 0;
  for (int i = 0; i < 1000; ++i) {
    auto order = attempt_order(*b, rng, 5, 2525);
    EXPECT_NE(order[0].host->name, "backup.example.test");
    EXPECT_EQ(order.back().host->name, "backup.example.test");
    EXPECT_EQ(order[0].address.port(), 2525);
    mx1 += order[0].host->name == "mx1.example.test";
  }
  EXPECT_GT(mx1, 400);
  EXPECT_LT(mx1, 600);
}

TEST_F(KnotResolverTest, ThousandSimultaneousLookupsMakeOneQuery) {
  uint64_t mx_before = knot_->counter("query-type[MX]");
  uint64_t a_before = knot_->counter("query-type[A]");
  int answered = 0, ok = 0;
  for (int i = 0; i < 1000; ++i) {
    AnswerPtr hit = resolver_->resolve("coalesce.test", [&](AnswerPtr a) {
      ++answered;
      ok += a->ok();
    });
    ASSERT_EQ(hit, nullptr);
  }
  EXPECT_EQ(answered, 0);  // never inside resolve()
  ASSERT_TRUE(loop_.run_until([&] { return answered == 1000; }, std::chrono::seconds(20)));
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(knot_->counter("query-type[MX]"), mx_before + 1);
  EXPECT_EQ(knot_->counter("query-type[A]"), a_before + 1);
  EXPECT_EQ(resolver_->answer_stats().coalesced, 999u);
}

TEST_F(KnotResolverTest, QueriesBeyondTheInFlightCapWaitTheirTurn) {
  stop();
  settings_.max_queries_in_flight = 2;
  start();
  const char* domains[] = {"example.test", "implicit.test", "nullmx.test", "alias.test", "alias2.test",
                           "mxcname.test", "partial.test", "spread.test", "nx.test", "nodata.test"};
  int answered = 0;
  std::map<std::string, std::string> status;
  for (const char* d : domains)
    ASSERT_EQ(resolver_->resolve(d, [&, d](AnswerPtr a) {
      ++answered;
      status[d] = a->enhanced_status;
    }),
              nullptr);
  ASSERT_TRUE(loop_.run_until([&] { return answered == 10; }, std::chrono::seconds(20)));
  EXPECT_GT(transport_->stats().queued, 0u);
  EXPECT_EQ(status["example.test"], "2.0.0");
  EXPECT_EQ(status["nullmx.test"], "5.1.10");
  EXPECT_EQ(status["nx.test"], "5.1.2");
  EXPECT_EQ(status["spread.test"], "2.0.0");
}

}  // namespace
}  // namespace ringmail::routing::dns
