// Back-off computation (see retry_policy.h).
#include "queue/retry_policy.h"

#include <algorithm>

namespace ringmail::queue {

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, uint32_t attempts, double jitter01) {
  using namespace std::chrono;
  double base = static_cast<double>(duration_cast<milliseconds>(policy.min_backoff).count());
  double cap = static_cast<double>(duration_cast<milliseconds>(policy.max_backoff).count());
  uint32_t doublings = attempts > 0 ? std::min<uint32_t>(attempts - 1, 30) : 0;
  double d = std::min(cap, base * static_cast<double>(1u << std::min<uint32_t>(doublings, 20)));
  d *= 0.9 + 0.2 * std::clamp(jitter01, 0.0, 1.0);  // ±10 %
  return milliseconds(static_cast<int64_t>(std::max(d, 1.0)));
}

}  // namespace ringmail::queue
