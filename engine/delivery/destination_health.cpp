// DestinationHealth (see destination_health.h).
#include "engine/delivery/destination_health.h"

namespace ringmail::engine {

DestinationHealth::Failure DestinationHealth::host_failed(MonoTime now, size_t hosts, const queue::RetryPolicy& policy,
                                                          double jitter01) {
  if (in_retry(now)) return Failure::kAlreadyDown;
  ++in_walk_;
  if (in_walk_ < hosts) return Failure::kNextHost;
  in_walk_ = 0;
  ++rounds_;
  retry_at_ = now + queue::retry_delay(policy, rounds_, jitter01);
  probing_ = true;
  return Failure::kMarkedDown;
}

void DestinationHealth::lookup_failed(MonoTime now, const queue::RetryPolicy& policy, double jitter01) {
  ++rounds_;
  retry_at_ = now + queue::retry_delay(policy, rounds_, jitter01);
}

bool DestinationHealth::delivered() {
  bool was_down = probing_;
  in_walk_ = 0;
  rounds_ = 0;
  probing_ = false;
  return was_down;
}

}  // namespace ringmail::engine
