// Dead-destination detection for one next hop (Postfix's "failed cohort", Exchange's Retry
// state), as pure logic over the times it is given so tests can drive time forward: when every
// host of the walk failed at connection level in a row, the destination is down until a retry
// time that backs off with each round; then one probe session goes out, and only a delivery
// through it brings the destination back up. Failures of sessions of the same cohort that end
// after the destination was marked down do not count again.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/clock.h"
#include "queue/retry_policy.h"

namespace ringmail::engine {

class DestinationHealth {
 public:
  enum class Failure : uint8_t {
    kNextHost,    // walk on: another host may work
    kMarkedDown,  // this failure completed the walk: down until retry_at()
    kAlreadyDown, // a session of the cohort that was marked down: nothing new
  };

  // A session could not use a host (connect failure, 421, greeting or EHLO refused) at `now`;
  // `hosts` is the length of the walk. jitter01 in [0, 1) spreads the retry time (±10 %).
  Failure host_failed(MonoTime now, size_t hosts, const queue::RetryPolicy& policy, double jitter01);
  // The destination could not even be looked up (DNS temporary failure, smart host names): down
  // for the next back-off step.
  void lookup_failed(MonoTime now, const queue::RetryPolicy& policy, double jitter01);
  // Nothing to try until `t` (no address yet), without counting a round.
  void wait_until(MonoTime t) { retry_at_ = t; }
  // A delivery through the destination worked. True if it was down (the probe succeeded).
  bool delivered();
  // The operator's "retry now": the next session may go at once (still as a probe if it was down).
  void retry_now() { retry_at_ = {}; }

  bool in_retry(MonoTime now) const { return now < retry_at_; }
  MonoTime retry_at() const { return retry_at_; }
  bool probing() const { return probing_; }
  // Sessions that may be open at once: the connector's limit, or one probe while down.
  unsigned session_limit(unsigned configured) const { return probing_ ? 1u : configured; }
  // Hosts that failed in a row in the current walk (0 = start the walk afresh).
  size_t failures_in_walk() const { return in_walk_; }

 private:
  MonoTime retry_at_{};   // in Retry until then
  size_t in_walk_ = 0;    // consecutive host failures in this walk
  uint32_t rounds_ = 0;   // times marked down in a row (the back-off step)
  bool probing_ = false;  // marked down: one probe session until a delivery works
};

}  // namespace ringmail::engine
