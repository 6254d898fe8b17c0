// Unit tests of ExpiringCache and cache_lifetime with a ManualClock: TTL clamps, RFC 2308
// negative TTLs, server-failure back-off, LRU eviction, coalescing and waiter deadlines.
#include "routing/dns/expiring_cache.h"

#include <gtest/gtest.h>

namespace ringmail::routing::dns {
namespace {

using std::chrono::seconds;
using Cache = ExpiringCache<int>;

TEST(CacheLifetimeTest, PositiveTtlIsClamped) {
  CachePolicy p;
  p.min_ttl = seconds(30);
  p.max_ttl = seconds(3600);
  EXPECT_EQ(cache_lifetime(p, EntryKind::kPositive, 5, 0), seconds(30));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kPositive, 600, 0), seconds(600));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kPositive, 86400, 0), seconds(3600));
}

TEST(CacheLifetimeTest, NegativeTtlIsCappedAndZeroMeansNotStored) {
  CachePolicy p;
  p.max_negative_ttl = seconds(900);
  EXPECT_EQ(cache_lifetime(p, EntryKind::kNegative, 60, 0), seconds(60));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kNegative, 86400, 0), seconds(900));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kNegative, 0, 0), seconds(0));
}

TEST(CacheLifetimeTest, FailuresBackOffUpToTheCapAndNeverBeyondFiveMinutes) {
  CachePolicy p;
  p.failure_ttl = seconds(2);
  p.max_failure_ttl = seconds(20);
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 0), seconds(2));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 1), seconds(4));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 3), seconds(16));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 4), seconds(20));
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 60), seconds(20));
  p.max_failure_ttl = seconds(3600);
  EXPECT_EQ(cache_lifetime(p, EntryKind::kFailure, 0, 60), seconds(300));  // RFC 2308 §7.1
}

TEST(ExpiringCacheTest, EntryExpiresOnTheClock) {
  ManualClock clock;
  Cache c(clock, 10);
  c.complete("a", std::make_shared<const int>(1), seconds(5), EntryKind::kPositive);
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(**c.find("a"), 1);
  clock.advance(std::chrono::milliseconds(4999));
  EXPECT_NE(c.find("a"), nullptr);
  clock.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(c.find("a"), nullptr);
  EXPECT_EQ(c.stats().hits, 3u);
  EXPECT_EQ(c.stats().misses, 1u);
}

TEST(ExpiringCacheTest, FailureStreakGrowsAndResetsOnSuccess) {
  ManualClock clock;
  Cache c(clock, 10);
  c.complete("k", std::make_shared<const int>(0), seconds(2), EntryKind::kFailure);
  EXPECT_EQ(c.failure_streak("k"), 1u);
  clock.advance(seconds(3));  // expired, streak remembered
  c.complete("k", std::make_shared<const int>(0), seconds(4), EntryKind::kFailure);
  EXPECT_EQ(c.failure_streak("k"), 2u);
  c.complete("k", std::make_shared<const int>(1), seconds(60), EntryKind::kPositive);
  EXPECT_EQ(c.failure_streak("k"), 0u);
}

TEST(ExpiringCacheTest, LeastRecentlyUsedIsEvicted) {
  ManualClock clock;
  Cache c(clock, 2);
  c.complete("a", std::make_shared<const int>(1), seconds(60), EntryKind::kPositive);
  c.complete("b", std::make_shared<const int>(2), seconds(60), EntryKind::kPositive);
  ASSERT_NE(c.find("a"), nullptr);  // a is now the most recent
  c.complete("c", std::make_shared<const int>(3), seconds(60), EntryKind::kPositive);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_NE(c.find("a"), nullptr);
  EXPECT_EQ(c.find("b"), nullptr);
  EXPECT_NE(c.find("c"), nullptr);
  EXPECT_EQ(c.stats().evictions, 1u);
}

TEST(ExpiringCacheTest, WaitersCoalesceAndAllAreAnswered) {
  ManualClock clock;
  Cache c(clock, 10);
  std::vector<int> got;
  auto deadline = clock.now() + seconds(10);
  EXPECT_TRUE(c.wait("k", deadline, [&](const Cache::Value& v) { got.push_back(*v); }));
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(c.wait("k", deadline, [&](const Cache::Value& v) { got.push_back(*v + 100); }));
  EXPECT_EQ(c.in_flight(), 1u);
  c.complete("k", std::make_shared<const int>(7), seconds(60), EntryKind::kPositive);
  EXPECT_EQ(got, (std::vector<int>{7, 107, 107, 107, 107}));
  EXPECT_EQ(c.in_flight(), 0u);
  EXPECT_EQ(c.stats().coalesced, 4u);
  EXPECT_NE(c.find("k"), nullptr);
}

TEST(ExpiringCacheTest, EachWaiterHasItsOwnDeadline) {
  ManualClock clock;
  Cache c(clock, 10);
  std::vector<std::string> events;
  auto cb = [&](std::string name) {
    return [&, name](const Cache::Value& v) { events.push_back(name + (v ? "=value" : "=timeout")); };
  };
  EXPECT_TRUE(c.wait("k", clock.now() + seconds(1), cb("early")));
  EXPECT_FALSE(c.wait("k", clock.now() + seconds(5), cb("late")));
  EXPECT_EQ(*c.next_deadline(), clock.now() + seconds(1));
  clock.advance(seconds(2));
  EXPECT_EQ(c.expire_waiters(clock.now()), 1u);
  EXPECT_EQ(events, (std::vector<std::string>{"early=timeout"}));
  EXPECT_EQ(*c.next_deadline(), clock.now() + seconds(3));
  c.complete("k", std::make_shared<const int>(1), seconds(60), EntryKind::kPositive);
  EXPECT_EQ(events, (std::vector<std::string>{"early=timeout", "late=value"}));
  EXPECT_FALSE(c.next_deadline().has_value());
  EXPECT_EQ(c.stats().waiter_timeouts, 1u);
}

TEST(ExpiringCacheTest, ZeroLifetimeAnswersWaitersButStoresNothing) {
  ManualClock clock;
  Cache c(clock, 10);
  int calls = 0;
  EXPECT_TRUE(c.wait("k", MonoTime::max(), [&](const Cache::Value&) { ++calls; }));
  c.complete("k", std::make_shared<const int>(1), seconds(0), EntryKind::kNegative);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.find("k"), nullptr);
}

TEST(ExpiringCacheTest, WaiterMayWaitAgainFromItsCallback) {
  ManualClock clock;
  Cache c(clock, 10);
  bool second_started = false;
  EXPECT_TRUE(c.wait("k", MonoTime::max(), [&](const Cache::Value&) {
    second_started = c.wait("k", MonoTime::max(), [](const Cache::Value&) {});
  }));
  c.complete("k", std::make_shared<const int>(1), seconds(0), EntryKind::kPositive);
  EXPECT_TRUE(second_started);  // the first fetch was over: a new one starts
  EXPECT_EQ(c.in_flight(), 1u);
}

}  // namespace
}  // namespace ringmail::routing::dns
