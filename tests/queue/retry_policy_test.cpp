#include "queue/retry_policy.h"

#include <gtest/gtest.h>

namespace ringmail::queue {
namespace {

using namespace std::chrono;

TEST(RetryPolicy, DoublesFromMinimumUpToMaximum) {
  RetryPolicy p{seconds(300), seconds(4000)};
  // jitter 0.5 is the midpoint of ±10 %: exactly the nominal ladder.
  EXPECT_EQ(retry_delay(p, 1, 0.5), milliseconds(300'000));
  EXPECT_EQ(retry_delay(p, 2, 0.5), milliseconds(600'000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(1'200'000));
  EXPECT_EQ(retry_delay(p, 4, 0.5), milliseconds(2'400'000));
  EXPECT_EQ(retry_delay(p, 5, 0.5), milliseconds(4'000'000));   // capped
  EXPECT_EQ(retry_delay(p, 60, 0.5), milliseconds(4'000'000));  // no overflow for huge counts
}

TEST(RetryPolicy, JitterStaysWithinTenPercent) {
  RetryPolicy p{seconds(100), seconds(1000)};
  EXPECT_EQ(retry_delay(p, 1, 0.0), milliseconds(90'000));
  EXPECT_EQ(retry_delay(p, 1, 0.999999), milliseconds(109'999));
  EXPECT_EQ(retry_delay(p, 1, 5.0), milliseconds(110'000));  // out-of-range input is clamped
}

TEST(RetryPolicy, NeverZero) {
  RetryPolicy p{seconds(0), seconds(0)};
  EXPECT_GE(retry_delay(p, 1, 0.0), milliseconds(1));
}

}  // namespace
}  // namespace ringmail::queue
