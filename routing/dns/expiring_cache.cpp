// Cache lifetimes (see expiring_cache.h): RFC 2308 for negative answers, RFC 2308 §7.1 for
// server failures (never more than five minutes), clamps for positive TTLs.
#include "routing/dns/expiring_cache.h"

namespace ringmail::routing::dns {

std::chrono::seconds cache_lifetime(const CachePolicy& policy, EntryKind kind, uint32_t ttl,
                                    uint32_t failure_streak) {
  using std::chrono::seconds;
  switch (kind) {
    case EntryKind::kPositive:
      return std::clamp(seconds(ttl), policy.min_ttl, std::max(policy.min_ttl, policy.max_ttl));
    case EntryKind::kNegative:
      return std::min(seconds(ttl), policy.max_negative_ttl);
    case EntryKind::kFailure: {
      seconds cap = std::min(policy.max_failure_ttl, seconds(300));
      seconds t = policy.failure_ttl;
      for (uint32_t i = 0; i < failure_streak && t < cap; ++i) t *= 2;
      return std::min(t, cap);
    }
  }
  return seconds(0);
}

}  // namespace ringmail::routing::dns
