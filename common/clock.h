// Injectable clock: production code asks a Clock for the time so tests can drive time forward
// (retry ladders, expiry, cache TTLs). Timer mechanics live in the engine, not here.
#pragma once

#include <chrono>

namespace ringmail {

using MonoClock = std::chrono::steady_clock;
using MonoTime = MonoClock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime now() const = 0;     // for deadlines and intervals
  virtual WallTime wall() const = 0;    // for headers, logs and persisted times
};

// The real clocks.
class SystemClock final : public Clock {
 public:
  MonoTime now() const override { return MonoClock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& instance() {
    static const SystemClock c;
    return c;
  }
};

// A clock tests move by hand.
class ManualClock final : public Clock {
 public:
  MonoTime now() const override { return mono_; }
  WallTime wall() const override { return wall_; }
  void advance(std::chrono::nanoseconds d) {
    mono_ += d;
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }
  void set_wall(WallTime w) { wall_ = w; }

 private:
  MonoTime mono_{std::chrono::hours(1)};  // arbitrary non-zero start
  WallTime wall_{std::chrono::seconds(1'800'000'000)};
};

}  // namespace ringmail
