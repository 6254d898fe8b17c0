// When to try a deferred recipient again: exponential back-off between a minimum and a maximum
// (Postfix's defaults, 300 s to 4000 s) with ±10 % jitter so a crowd of deferred recipients does
// not return to a destination all at once. The glitch retry, expiry and delay notices of the queue
// issue will join this file.
#pragma once

#include <chrono>
#include <cstdint>

namespace ringmail::queue {

struct RetryPolicy {
  std::chrono::seconds min_backoff{300};   // after the first failure
  std::chrono::seconds max_backoff{4000};  // never longer than this
};

// Delay before attempt number `attempts + 1`, given `attempts` failed ones (>= 1). `jitter01` is a
// uniform random number in [0, 1) supplied by the caller (tests pass fixed values).
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, uint32_t attempts, double jitter01);

}  // namespace ringmail::queue
