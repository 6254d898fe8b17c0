// engine::Resolver (the io_uring DnsIoDriver: one-shot polls, timer wheel) against a real Knot
// server: MX answers, the truncated answer read over TCP through re-armed one-shot polls, 1,000
// coalesced lookups counted at the server, and the smart-host resolve() kept working.
#include "engine/net/resolver.h"

#include <gtest/gtest.h>

#include "tests/routing/dns/knot_server.h"

namespace ringmail::engine {
namespace {

using ringmail::testing::KnotServer;
namespace rd = ringmail::routing::dns;

// Stops the loop if a test hangs, so it fails instead of blocking CTest.
class Watchdog final : public Timer {
 public:
  explicit Watchdog(Loop& loop) : loop_(loop) { loop_.timers().arm(*this, loop_.now(), std::chrono::seconds(20)); }
  ~Watchdog() override { loop_.timers().cancel(*this); }
  bool fired = false;

 private:
  void fire() override {
    fired = true;
    loop_.stop();
  }
  Loop& loop_;
};

class EngineResolverKnotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto k = KnotServer::start({{"test", ringmail::testing::read_fixture("test.zone")}});
    ASSERT_TRUE(k.ok()) << k.error().message();
    knot_ = std::move(*k).release();
  }
  static void TearDownTestSuite() {
    delete knot_;
    knot_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(knot_, nullptr);
    if (!probe_io_uring().ok()) GTEST_SKIP() << "no io_uring here";
    auto l = Loop::create(LoopOptions{.sq_entries = 256, .cq_entries = 1024, .buffer_count = 8, .buffer_size = 1024});
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(*l);
  }
  std::unique_ptr<Resolver> make(bool edns = true) {
    rd::DnsSettings s;
    s.servers = {knot_->address()};
    s.use_edns = edns;
    auto r = Resolver::create(*loop_, s);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  Resolver::MxAnswerPtr resolve_mx(Resolver& r, std::string_view domain) {
    Resolver::MxAnswerPtr got = r.resolve_mx(domain, [&](Resolver::MxAnswerPtr a) {
      got = std::move(a);
      loop_->stop();
    });
    if (got) return got;
    Watchdog dog(*loop_);
    loop_->run();
    EXPECT_FALSE(dog.fired) << domain;
    return got;
  }

  static KnotServer* knot_;
  std::unique_ptr<Loop> loop_;
};
KnotServer* EngineResolverKnotTest::knot_ = nullptr;

TEST_F(EngineResolverKnotTest, MxAnswerOnTheRingAndThenFromTheCache) {
  auto r = make();
  auto a = resolve_mx(*r, "example.test");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->hosts.size(), 3u);
  EXPECT_NE(r->resolve_mx("example.test", [](Resolver::MxAnswerPtr) {}), nullptr);
  auto n = resolve_mx(*r, "nullmx.test");
  EXPECT_EQ(n->enhanced_status, "5.1.10");
}

TEST_F(EngineResolverKnotTest, TruncatedAnswerIsReadOverTcpWithOneShotPolls) {
  auto r = make(/*edns=*/false);
  uint64_t tcp_before = knot_->counter("request-protocol[tcp4]");
  auto a = resolve_mx(*r, "bigmx.test");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->ok()) << a->text;
  EXPECT_EQ(a->skipped.size(), 39u);
  EXPECT_GE(knot_->counter("request-protocol[tcp4]"), tcp_before + 1);
}

TEST_F(EngineResolverKnotTest, ThousandLookupsOfANewDomainAreOneQuery) {
  auto r = make();
  uint64_t before = knot_->counter("query-type[MX]");
  int answered = 0;
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(r->resolve_mx("coalesce2.test", [&](Resolver::MxAnswerPtr a) {
      answered += a->ok();
      if (answered == 1000) loop_->stop();
    }),
              nullptr);
  Watchdog dog(*loop_);
  loop_->run();
  EXPECT_EQ(answered, 1000);
  EXPECT_EQ(knot_->counter("query-type[MX]"), before + 1);
}

TEST_F(EngineResolverKnotTest, SmartHostResolveStillWorks) {
  auto r = make();
  Result<std::vector<SocketAddress>> got = make_error("not called");
  bool called = false;
  r->resolve("localhost", 2525, [&](Result<std::vector<SocketAddress>> res) {
    got = std::move(res);
    called = true;
    loop_->stop();
  });
  EXPECT_FALSE(called);
  Watchdog dog(*loop_);
  loop_->run();
  ASSERT_TRUE(called);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_FALSE(got->empty());
  EXPECT_EQ((*got)[0].port(), 2525);
}

}  // namespace
}  // namespace ringmail::engine
