// Back-off computation (see retry_policy.h).
#include "queue/retry_policy.h"

#include <algorithm>

namespace ringmail::queue {

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, uint32_t attempts, double jitter01) {
  using namespace std::chrono;
  double d;
  if (attempts <= policy.glitch_retries) {
    // A glitch retry is never slower than the first back-off step.
    d = static_cast<double>(duration_cast<milliseconds>(std::min(policy.glitch_interval, policy.min_backoff)).count());
  } else {
    double base = static_cast<double>(duration_cast<milliseconds>(policy.min_backoff).count());
    double cap = static_cast<double>(duration_cast<milliseconds>(policy.max_backoff).count());
    uint32_t doublings = std::min<uint32_t>(attempts - policy.glitch_retries - 1, 20);
    d = std::min(cap, base * static_cast<double>(1u << doublings));
  }
  d *= 0.9 + 0.2 * std::clamp(jitter01, 0.0, 1.0);  // ±10 %
  return milliseconds(static_cast<int64_t>(std::max(d, 1.0)));
}

RetryDecision decide_retry(const RetryPolicy& policy, WallTime arrival, uint32_t attempts, bool delay_notified,
                           WallTime now, double jitter01) {
  using namespace std::chrono;
  RetryDecision d;
  WallTime expiry = expires_at(policy, arrival);
  if (now >= expiry) {
    d.expired = true;
    return d;
  }
  d.delay_notice = !delay_notified && delay_notice_due(policy, arrival, now);
  d.delay = retry_delay(policy, attempts, jitter01);
  d.next_attempt = now + d.delay;
  if (d.next_attempt > expiry) {
    d.next_attempt = expiry;
    d.delay = duration_cast<milliseconds>(expiry - now);
  }
  return d;
}

}  // namespace ringmail::queue
