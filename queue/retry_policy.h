// When to try a deferred recipient again, when to give up, and when to warn the sender.
// The ladder: a few short "glitch" retries first (a blip in the network should not cost five
// minutes; Exchange's QueueGlitchRetry idea), then exponential back-off between a minimum and a
// maximum (Postfix's defaults, 300 s to 4000 s), each with ±10 % jitter so a crowd of deferred
// recipients does not return to a destination all at once. A message that is still not delivered
// after `message_expiration` (default 2 days, as Exchange) fails with a DSN; a delay notice goes out
// once after `delay_notice` (default 4 hours; 0 turns it off).
#pragma once

#include <chrono>
#include <cstdint>

#include "common/clock.h"

namespace ringmail::queue {

struct RetryPolicy {
  uint32_t glitch_retries = 2;                    // first failures retried after glitch_interval
  std::chrono::seconds glitch_interval{60};       // short retry for those (at most min_backoff)
  std::chrono::seconds min_backoff{300};          // first back-off after the glitch retries
  std::chrono::seconds max_backoff{4000};         // never longer than this
  std::chrono::seconds message_expiration{172800};  // give up (failure DSN) this long after arrival
  std::chrono::seconds delay_notice{14400};       // delay DSN this long after arrival; 0 = never
};

// Delay before attempt number `attempts + 1`, given `attempts` failed ones (>= 1). `jitter01` is a
// uniform random number in [0, 1) supplied by the caller (tests pass fixed values).
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, uint32_t attempts, double jitter01);

// The moment a message that arrived at `arrival` expires.
inline WallTime expires_at(const RetryPolicy& policy, WallTime arrival) {
  return arrival + policy.message_expiration;
}

// True when a deferred recipient of a message that arrived at `arrival` is owed a delay notice
// at `now` (the caller keeps track of whether it was already sent).
inline bool delay_notice_due(const RetryPolicy& policy, WallTime arrival, WallTime now) {
  return policy.delay_notice.count() > 0 && now >= arrival + policy.delay_notice &&
         now < expires_at(policy, arrival);
}

// What to do with a recipient whose attempt `attempts` (counting this one, >= 1) just failed
// temporarily at `now`: give up (expired), or retry at `next_attempt` (never later than the expiry
// moment, so the last attempt happens right at it), and whether the delay notice is owed now.
struct RetryDecision {
  bool expired = false;       // fail the recipient now, with a failure DSN
  bool delay_notice = false;  // send the delay DSN now (caller marks it sent)
  WallTime next_attempt{};    // when to try again (not expired)
  std::chrono::milliseconds delay{0};  // next_attempt - now
};
RetryDecision decide_retry(const RetryPolicy& policy, WallTime arrival, uint32_t attempts, bool delay_notified,
                           WallTime now, double jitter01);

}  // namespace ringmail::queue
