// The retry ladder (glitch retries, doubling back-off, cap, jitter) and the expiry / delay-notice
// moments.
#include "queue/retry_policy.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringmail::queue {
namespace {

using namespace std::chrono;

RetryPolicy ladder(uint32_t glitches, seconds glitch, seconds min, seconds max) {
  RetryPolicy p;
  p.glitch_retries = glitches;
  p.glitch_interval = glitch;
  p.min_backoff = min;
  p.max_backoff = max;
  return p;
}

TEST(RetryPolicy, DoublesFromMinimumUpToMaximum) {
  RetryPolicy p = ladder(0, seconds(60), seconds(300), seconds(4000));
  // jitter 0.5 is the midpoint of ±10 %: exactly the nominal ladder.
  EXPECT_EQ(retry_delay(p, 1, 0.5), milliseconds(300'000));
  EXPECT_EQ(retry_delay(p, 2, 0.5), milliseconds(600'000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(1'200'000));
  EXPECT_EQ(retry_delay(p, 4, 0.5), milliseconds(2'400'000));
  EXPECT_EQ(retry_delay(p, 5, 0.5), milliseconds(4'000'000));   // capped
  EXPECT_EQ(retry_delay(p, 60, 0.5), milliseconds(4'000'000));  // no overflow for huge counts
}

TEST(RetryPolicy, GlitchRetriesComeFirstThenTheBackOffStartsAtTheMinimum) {
  RetryPolicy p = ladder(2, seconds(60), seconds(300), seconds(4000));
  EXPECT_EQ(retry_delay(p, 1, 0.5), milliseconds(60'000));
  EXPECT_EQ(retry_delay(p, 2, 0.5), milliseconds(60'000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(300'000));
  EXPECT_EQ(retry_delay(p, 4, 0.5), milliseconds(600'000));
}

TEST(RetryPolicy, AGlitchRetryIsNeverSlowerThanTheMinimumBackOff) {
  RetryPolicy p = ladder(2, seconds(60), seconds(1), seconds(10));
  EXPECT_EQ(retry_delay(p, 1, 0.5), milliseconds(1'000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(1'000));
  EXPECT_EQ(retry_delay(p, 4, 0.5), milliseconds(2'000));
}

TEST(RetryPolicy, DefaultsAreTwoGlitchesThenPostfixLadderTwoDayExpiryFourHourNotice) {
  RetryPolicy p;
  EXPECT_EQ(retry_delay(p, 1, 0.5), milliseconds(60'000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(300'000));
  EXPECT_EQ(retry_delay(p, 30, 0.5), milliseconds(4'000'000));
  EXPECT_EQ(p.message_expiration, hours(48));
  EXPECT_EQ(p.delay_notice, hours(4));
}

TEST(RetryPolicy, JitterStaysWithinTenPercent) {
  RetryPolicy p = ladder(0, seconds(1), seconds(100), seconds(1000));
  EXPECT_EQ(retry_delay(p, 1, 0.0), milliseconds(90'000));
  EXPECT_EQ(retry_delay(p, 1, 0.999999), milliseconds(109'999));
  EXPECT_EQ(retry_delay(p, 1, 5.0), milliseconds(110'000));  // out-of-range input is clamped
}

TEST(RetryPolicy, NeverZero) {
  RetryPolicy p = ladder(1, seconds(0), seconds(0), seconds(0));
  EXPECT_GE(retry_delay(p, 1, 0.0), milliseconds(1));
  EXPECT_GE(retry_delay(p, 2, 0.0), milliseconds(1));
}

TEST(RetryPolicy, ExpiryAndDelayNoticeMoments) {
  RetryPolicy p;
  WallTime arrival{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(expires_at(p, arrival), arrival + hours(48));
  EXPECT_FALSE(delay_notice_due(p, arrival, arrival + hours(3)));
  EXPECT_TRUE(delay_notice_due(p, arrival, arrival + hours(4)));
  EXPECT_FALSE(delay_notice_due(p, arrival, arrival + hours(48)));  // expired: a failure DSN instead
  p.delay_notice = seconds(0);
  EXPECT_FALSE(delay_notice_due(p, arrival, arrival + hours(5)));  // turned off
}

}  // namespace
}  // namespace ringmail::queue

namespace ringmail::queue {
namespace {

// Drives one recipient that always fails temporarily through its whole life with a manual clock:
// each attempt happens exactly at the scheduled time. The ladder, one delay notice and one expiry.
TEST(RetryDecision, ARecipientThatAlwaysFailsTemporarily) {
  RetryPolicy p;  // defaults: 2 × 60 s, then 300 s doubling to 4000 s, notice at 4 h, expiry at 48 h
  ManualClock clock;
  WallTime arrival = clock.wall();
  bool notified = false;
  int notices = 0, expiries = 0;
  std::vector<int64_t> delays_s;
  uint32_t attempts = 0;
  for (int i = 0; i < 1000 && expiries == 0; ++i) {
    ++attempts;
    RetryDecision d = decide_retry(p, arrival, attempts, notified, clock.wall(), 0.5);
    if (d.expired) {
      ++expiries;
      EXPECT_GE(clock.wall() - arrival, hours(48));
      break;
    }
    if (d.delay_notice) {
      ++notices;
      notified = true;
      EXPECT_GE(clock.wall() - arrival, hours(4));
      EXPECT_LT(clock.wall() - arrival, hours(4) + seconds(4000));  // at the first attempt after 4 h
    }
    EXPECT_LE(d.next_attempt, arrival + hours(48));
    delays_s.push_back(duration_cast<seconds>(d.delay).count());
    clock.set_wall(d.next_attempt);
  }
  EXPECT_EQ(expiries, 1);
  EXPECT_EQ(notices, 1);
  ASSERT_GE(delays_s.size(), 8u);
  EXPECT_EQ((std::vector<int64_t>(delays_s.begin(), delays_s.begin() + 8)),
            (std::vector<int64_t>{60, 60, 300, 600, 1200, 2400, 4000, 4000}));
  // 48 h of attempts: 2 glitches + 5 steps up to the cap, then 4000 s each, the last one cut to
  // land exactly on the expiry moment.
  EXPECT_EQ(clock.wall(), arrival + hours(48));
  EXPECT_EQ(attempts, delays_s.size() + 1);
}

TEST(RetryDecision, NoNoticeWhenTurnedOffAndNoneTwice) {
  RetryPolicy p;
  WallTime arrival{std::chrono::seconds(1'700'000'000)};
  EXPECT_TRUE(decide_retry(p, arrival, 9, false, arrival + hours(5), 0.5).delay_notice);
  EXPECT_FALSE(decide_retry(p, arrival, 9, true, arrival + hours(5), 0.5).delay_notice);
  p.delay_notice = seconds(0);
  EXPECT_FALSE(decide_retry(p, arrival, 9, false, arrival + hours(5), 0.5).delay_notice);
}

TEST(RetryDecision, ShortExpiryCutsTheLadder) {
  RetryPolicy p;
  p.message_expiration = seconds(90);
  WallTime arrival{std::chrono::seconds(1'700'000'000)};
  RetryDecision d1 = decide_retry(p, arrival, 1, false, arrival, 0.5);
  EXPECT_EQ(d1.delay, seconds(60));
  RetryDecision d2 = decide_retry(p, arrival, 2, false, d1.next_attempt, 0.5);
  EXPECT_EQ(d2.next_attempt, arrival + seconds(90));  // cut to the expiry moment
  EXPECT_TRUE(decide_retry(p, arrival, 3, false, d2.next_attempt, 0.5).expired);
}

}  // namespace
}  // namespace ringmail::queue
