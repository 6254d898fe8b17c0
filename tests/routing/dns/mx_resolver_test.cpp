// Unit tests of MxResolver's rules and caching with a scripted transport (no network): answers
// never arrive inside resolve(), lookups coalesce at both levels, deadlines produce temporary
// answers, failures are cached with back-off, and the address order of an attempt.
#include "routing/dns/mx_resolver.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace ringmail::routing::dns {
namespace {

using std::chrono::seconds;

// Records questions; the test answers them by hand (or at once, when `auto_answer` is set).
class ScriptedTransport final : public DnsTransport {
 public:
  struct Question {
    std::string name;  // as asked
    uint16_t type;     // asked type
    Done done;         // the resolver's completion
  };
  void query(std::string_view name, uint16_t type, Done done) override {
    ++queries;
    if (auto_answer) {
      done(auto_answer(std::string(name), type));
      return;
    }
    pending.push_back({std::string(name), type, std::move(done)});
  }
  void process(int, bool, bool) override {}
  std::optional<std::chrono::nanoseconds> next_timeout() override { return std::nullopt; }
  void cancel_all() override { pending.clear(); }

  void answer(DnsRecords r) {
    Question q = std::move(pending.front());
    pending.pop_front();
    if (r.final_name.empty()) r.final_name = q.name;
    q.done(std::move(r));
  }

  std::deque<Question> pending;                                        // unanswered, oldest first
  std::function<DnsRecords(const std::string&, uint16_t)> auto_answer;  // set: answer inside query()
  int queries = 0;                                                     // questions asked so far
};

class NullIo final : public DnsIoDriver {
 public:
  void watch(int, bool, bool) override {}
  void unwatch(int) override {}
  void set_timer(std::chrono::nanoseconds after) override { timer = after; }
  void clear_timer() override { timer.reset(); }
  std::optional<std::chrono::nanoseconds> timer;  // what the resolver last asked for
};

DnsRecords mx_found(std::vector<MxRecord> mx, uint32_t ttl) {
  DnsRecords r;
  r.status = LookupStatus::kFound;
  r.mx = std::move(mx);
  r.ttl = ttl;
  return r;
}
DnsRecords a_found(const char* ip, uint32_t ttl) {
  DnsRecords r;
  r.status = LookupStatus::kFound;
  r.addresses.push_back(*SocketAddress::parse(ip, 0));
  r.ttl = ttl;
  return r;
}
DnsRecords negative(LookupStatus s, uint32_t ttl) {
  DnsRecords r;
  r.status = s;
  r.has_soa = true;
  r.ttl = ttl;
  return r;
}
DnsRecords failure(const char* why) {
  DnsRecords r;
  r.status = LookupStatus::kTemporary;
  r.error = why;
  return r;
}

class MxResolverTest : public ::testing::Test {
 protected:
  MxResolverTest() { settings_.cache.min_ttl = seconds(0); }
  MxResolver& resolver() {
    if (!resolver_) resolver_ = std::make_unique<MxResolver>(transport_, io_, clock_, settings_);
    return *resolver_;
  }
  ManualClock clock_;
  DnsSettings settings_;
  ScriptedTransport transport_;
  NullIo io_;
  std::unique_ptr<MxResolver> resolver_;
};

TEST_F(MxResolverTest, ConcurrentLookupsShareOneQueryPerStep) {
  std::vector<MxResolver::AnswerPtr> got;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(resolver().resolve("d.test", [&](MxResolver::AnswerPtr a) { got.push_back(a); }), nullptr);
  ASSERT_EQ(transport_.pending.size(), 1u);
  EXPECT_EQ(transport_.pending[0].type, kTypeMx);
  transport_.answer(mx_found({{10, "mx.test"}}, 300));
  ASSERT_EQ(transport_.pending.size(), 2u);  // A and AAAA of mx.test
  transport_.answer(a_found("192.0.2.1", 100));
  transport_.answer(negative(LookupStatus::kNoData, 60));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], got[2]);  // one shared answer
  EXPECT_TRUE(got[0]->ok());
  EXPECT_EQ(got[0]->ttl, 100u);
  EXPECT_EQ(transport_.queries, 3);
  EXPECT_NE(resolver().resolve("D.test.", [](MxResolver::AnswerPtr) {}), nullptr);  // now a hit
}

TEST_F(MxResolverTest, AnswersNeverArriveInsideResolve) {
  transport_.auto_answer = [](const std::string& name, uint16_t type) {
    return type == kTypeMx ? mx_found({{10, "mx." + name}}, 300) : a_found("192.0.2.9", 300);
  };
  int calls = 0;
  EXPECT_EQ(resolver().resolve("sync.test", [&](MxResolver::AnswerPtr a) { calls += a->ok(); }), nullptr);
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(io_.timer.has_value());
  EXPECT_EQ(*io_.timer, std::chrono::nanoseconds::zero());
  resolver().on_timer();
  EXPECT_EQ(calls, 1);
}

TEST_F(MxResolverTest, DeadlineGivesATemporaryAnswerAndTheQueryStillFillsTheCache) {
  MxResolver::AnswerPtr got;
  EXPECT_EQ(resolver().resolve("slow.test", clock_.now() + seconds(1), [&](MxResolver::AnswerPtr a) { got = a; }),
            nullptr);
  ASSERT_TRUE(io_.timer.has_value());
  EXPECT_EQ(*io_.timer, seconds(1));
  clock_.advance(seconds(1));
  resolver().on_timer();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->outcome, DnsOutcome::kTemporary);
  EXPECT_EQ(got->enhanced_status, "4.4.3");
  transport_.answer(mx_found({{10, "mx.test"}}, 300));
  transport_.answer(a_found("192.0.2.1", 300));
  transport_.answer(negative(LookupStatus::kNoData, 60));
  MxResolver::AnswerPtr hit = resolver().resolve("slow.test", [](MxResolver::AnswerPtr) {});
  ASSERT_NE(hit, nullptr);
  EXPECT_TRUE(hit->ok());
}

TEST_F(MxResolverTest, ServerFailureIsCachedBrieflyWithBackOff) {
  settings_.cache.failure_ttl = seconds(2);
  settings_.cache.max_failure_ttl = seconds(60);
  MxResolver::AnswerPtr got;
  auto keep = [&](MxResolver::AnswerPtr a) { got = a; };
  EXPECT_EQ(resolver().resolve("bad.test", keep), nullptr);
  transport_.answer(failure("SERVFAIL"));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->ttl, 2u);
  EXPECT_NE(resolver().resolve("bad.test", keep), nullptr);  // remembered: no new query
  clock_.advance(seconds(2));
  EXPECT_EQ(resolver().resolve("bad.test", keep), nullptr);
  transport_.answer(failure("SERVFAIL"));
  EXPECT_EQ(got->ttl, 4u);  // second failure in a row
  EXPECT_EQ(transport_.queries, 2);
}

TEST_F(MxResolverTest, NullMxAmongOtherRecordsIsIgnored) {
  MxResolver::AnswerPtr got;
  EXPECT_EQ(resolver().resolve("mixed.test", [&](MxResolver::AnswerPtr a) { got = a; }), nullptr);
  transport_.answer(mx_found({{0, ""}, {10, "mx.test"}}, 300));
  transport_.answer(a_found("192.0.2.1", 300));
  transport_.answer(negative(LookupStatus::kNoData, 60));
  ASSERT_TRUE(got->ok());
  ASSERT_EQ(got->hosts.size(), 1u);
  EXPECT_EQ(got->hosts[0].name, "mx.test");
}

TEST_F(MxResolverTest, NoAddressIsTemporaryWhenALookupFailed) {
  MxResolver::AnswerPtr got;
  EXPECT_EQ(resolver().resolve("half.test", [&](MxResolver::AnswerPtr a) { got = a; }), nullptr);
  transport_.answer(mx_found({{10, "mx.test"}}, 300));
  transport_.answer(negative(LookupStatus::kNxDomain, 60));
  transport_.answer(failure("timeout"));
  EXPECT_EQ(got->outcome, DnsOutcome::kTemporary);
  EXPECT_NE(got->text.find("timeout"), std::string::npos) << got->text;
}

TEST_F(MxResolverTest, LostHostLookupIsNotCachedButServfailIs) {
  std::vector<MxResolver::AnswerPtr> got;
  auto keep = [&](MxResolver::AnswerPtr a) { got.push_back(a); };
  auto resolve_with_host_failure = [&](const char* domain, DnsRecords a_failure) {
    EXPECT_EQ(resolver().resolve(domain, keep), nullptr);
    transport_.answer(mx_found({{10, "shared.test"}}, 300));
    while (!transport_.pending.empty()) {
      bool is_a = transport_.pending.front().type == kTypeA;
      transport_.answer(is_a ? a_failure : negative(LookupStatus::kNoData, 60));
    }
  };
  DnsRecords lost = failure("timeout");
  lost.from_server = false;
  resolve_with_host_failure("one.test", lost);
  EXPECT_EQ(got.back()->outcome, DnsOutcome::kTemporary);
  int before = transport_.queries;
  EXPECT_EQ(resolver().resolve("two.test", keep), nullptr);
  transport_.answer(mx_found({{10, "shared.test"}}, 300));
  ASSERT_EQ(transport_.pending.size(), 1u);  // the A query again (AAAA NODATA was cached)
  EXPECT_EQ(transport_.pending.front().type, kTypeA);
  transport_.answer(failure("SERVFAIL"));   // a server's statement: cached briefly
  EXPECT_EQ(transport_.queries, before + 2);
  EXPECT_EQ(resolver().resolve("three.test", keep), nullptr);
  transport_.answer(mx_found({{10, "shared.test"}}, 300));
  EXPECT_TRUE(transport_.pending.empty());  // host failure remembered: no new A query
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(got.back()->outcome, DnsOutcome::kTemporary);
}

TEST_F(MxResolverTest, DestroyingWithLookupsInFlightCallsNobody) {
  bool called = false;
  EXPECT_EQ(resolver().resolve("gone.test", [&](MxResolver::AnswerPtr) { called = true; }), nullptr);
  resolver_.reset();
  EXPECT_FALSE(called);
}

TEST(AttemptOrderTest, CapIsAtLeastTwoAndHostsKeepPreferenceOrder) {
  MxAnswer a;
  a.outcome = DnsOutcome::kOk;
  auto host = [](const char* name, uint16_t pref, std::vector<const char*> ips) {
    MxHost h{name, pref, 300, {}};
    for (const char* ip : ips) h.addresses.push_back({*SocketAddress::parse(ip, 0), 300});
    return h;
  };
  a.hosts = {host("a", 10, {"192.0.2.1", "192.0.2.2", "192.0.2.3"}), host("b", 20, {"192.0.2.4"})};
  std::mt19937_64 rng(1);
  EXPECT_EQ(attempt_order(a, rng, 5, 25).size(), 4u);
  auto two = attempt_order(a, rng, 0, 25);  // "at least two addresses"
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].address.to_string(), "192.0.2.1:25");
  EXPECT_EQ(two[1].address.to_string(), "192.0.2.2:25");
  auto three = attempt_order(a, rng, 3, 2525);
  EXPECT_EQ(three.back().host->name, "a");
}

}  // namespace
}  // namespace ringmail::routing::dns
