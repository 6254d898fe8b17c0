// A hashed timer wheel for protocol timeouts (RFC 5321 §4.5.3.2) on one worker thread.
// Timers are intrusive (embedded in the session that owns them): arming, re-arming and cancelling
// are O(1) and allocate nothing. Resolution is one tick (10 ms by default); expiry runs on the
// loop thread when the loop calls expire(). Not thread-safe: one wheel per worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "common/clock.h"

namespace ringmail::engine {

class TimerWheel;

// Embed one of these per timeout; fire() runs on expiry (never while the wheel is being destroyed).
class Timer {
 public:
  Timer() = default;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  virtual ~Timer();
  bool armed() const { return wheel_ != nullptr; }

 protected:
  virtual void fire() = 0;

 private:
  friend class TimerWheel;
  TimerWheel* wheel_ = nullptr;  // the wheel this timer is linked into, null when idle
  Timer* prev_ = nullptr;        // intrusive list within a slot
  Timer* next_ = nullptr;
  uint64_t deadline_tick_ = 0;   // absolute tick at which it fires
  bool in_expired_ = false;      // on the wheel's list of due timers about to fire
};

// A timer that calls one member function of its owner: `MemberTimer<Owner, &Owner::on_x> t_{this};`
// (the member function must be declared before the timer member).
template <typename Owner, void (Owner::*Fn)()>
class MemberTimer final : public Timer {
 public:
  explicit MemberTimer(Owner* owner) : owner_(owner) {}

 private:
  void fire() override { (owner_->*Fn)(); }
  Owner* owner_;
};

class TimerWheel {
 public:
  explicit TimerWheel(MonoTime start, std::chrono::milliseconds tick = std::chrono::milliseconds(10),
                      size_t slots = 4096);
  ~TimerWheel();

  // Arms (or re-arms) `t` to fire `after` from `now`. Rounded up to the next tick.
  void arm(Timer& t, MonoTime now, std::chrono::nanoseconds after);
  void cancel(Timer& t);
  // Fires every timer whose deadline is at or before `now`. Returns how many fired.
  size_t expire(MonoTime now);
  // Time until the earliest armed timer could fire, capped at `cap`; zero if one is due.
  std::chrono::nanoseconds until_next(MonoTime now, std::chrono::nanoseconds cap) const;
  size_t armed_count() const { return armed_; }

 private:
  uint64_t tick_of(MonoTime t) const;
  void link(Timer& t);
  void unlink(Timer& t);
  Timer*& head_of(Timer& t);

  MonoTime start_;                    // tick 0
  std::chrono::nanoseconds tick_;     // tick length
  std::vector<Timer*> slots_;         // heads of the per-slot lists; slot = deadline_tick % size
  uint64_t current_tick_ = 0;         // every tick below this has been expired
  size_t armed_ = 0;                  // timers linked in
  uint64_t earliest_hint_ = UINT64_MAX;  // lower bound on the earliest deadline tick (for until_next)
  Timer* expired_ = nullptr;          // due timers collected by expire(), fired one at a time
};

}  // namespace ringmail::engine
