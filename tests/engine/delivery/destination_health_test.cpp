// Dead-destination detection driven forward in time by the test: marked down when the whole walk
// failed, one probe at the retry time, rounds backing off, the cohort's late failures not counted,
// recovery on the first delivery, and the operator's retry-now.
#include "engine/delivery/destination_health.h"

#include <gtest/gtest.h>

namespace ringmail::engine {
namespace {

using namespace std::chrono;
using F = DestinationHealth::Failure;

queue::RetryPolicy policy() {
  queue::RetryPolicy p;
  p.glitch_retries = 0;
  p.min_backoff = seconds(300);
  p.max_backoff = seconds(4000);
  return p;
}

TEST(DestinationHealth, DownAfterTheWholeWalkFailsThenProbedAndBackOffGrows) {
  DestinationHealth h;
  MonoTime t{seconds(1000)};
  auto p = policy();
  EXPECT_EQ(h.session_limit(20), 20u);
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kNextHost);
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kNextHost);
  EXPECT_FALSE(h.in_retry(t));
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kMarkedDown);  // third of three hosts
  EXPECT_TRUE(h.in_retry(t));
  EXPECT_EQ(h.retry_at(), t + seconds(300));
  EXPECT_EQ(h.session_limit(20), 1u) << "one probe session while down";
  // Sessions of the same cohort ending now change nothing.
  EXPECT_EQ(h.host_failed(t + seconds(1), 3, p, 0.5), F::kAlreadyDown);
  EXPECT_EQ(h.retry_at(), t + seconds(300));
  // Time moves on to the retry time: the probe walks the hosts again and fails: the next round is longer.
  t = h.retry_at();
  EXPECT_FALSE(h.in_retry(t));
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kNextHost);
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kNextHost);
  EXPECT_EQ(h.host_failed(t, 3, p, 0.5), F::kMarkedDown);
  EXPECT_EQ(h.retry_at(), t + seconds(600));
  t = h.retry_at();
  for (int i = 0; i < 3; ++i) h.host_failed(t, 3, p, 0.5);
  EXPECT_EQ(h.retry_at(), t + seconds(1200));
}

TEST(DestinationHealth, RecoversOnTheFirstDeliveryAndStartsTheLadderAgain) {
  DestinationHealth h;
  MonoTime t{seconds(1000)};
  auto p = policy();
  h.host_failed(t, 1, p, 0.5);
  t = h.retry_at();
  h.host_failed(t, 1, p, 0.5);
  EXPECT_EQ(h.retry_at(), t + seconds(600));
  t = h.retry_at();
  EXPECT_TRUE(h.probing());
  EXPECT_TRUE(h.delivered()) << "the probe worked: it was down";
  EXPECT_FALSE(h.probing());
  EXPECT_EQ(h.session_limit(20), 20u);
  EXPECT_FALSE(h.delivered()) << "already up";
  h.host_failed(t, 1, p, 0.5);
  EXPECT_EQ(h.retry_at(), t + seconds(300)) << "a new outage starts at the first step";
}

TEST(DestinationHealth, ADeliveryBetweenFailuresRestartsTheWalk) {
  DestinationHealth h;
  MonoTime t{seconds(10)};
  auto p = policy();
  h.host_failed(t, 2, p, 0.5);
  EXPECT_EQ(h.failures_in_walk(), 1u);
  h.delivered();
  EXPECT_EQ(h.failures_in_walk(), 0u);
  EXPECT_EQ(h.host_failed(t, 2, p, 0.5), F::kNextHost) << "one failure after a success is not a dead destination";
}

TEST(DestinationHealth, LookupFailuresBackOffAndRetryNowEndsTheWait) {
  DestinationHealth h;
  MonoTime t{seconds(10)};
  auto p = policy();
  h.lookup_failed(t, p, 0.5);
  EXPECT_EQ(h.retry_at(), t + seconds(300));
  h.lookup_failed(t, p, 0.5);
  EXPECT_EQ(h.retry_at(), t + seconds(600));
  EXPECT_TRUE(h.in_retry(t + seconds(599)));
  h.retry_now();
  EXPECT_FALSE(h.in_retry(t));
}

}  // namespace
}  // namespace ringmail::engine
