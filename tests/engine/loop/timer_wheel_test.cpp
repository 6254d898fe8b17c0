#include "engine/loop/timer_wheel.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace ringmail::engine {
namespace {

using namespace std::chrono;

struct FnTimer : Timer {
  std::function<void()> fn;
  int fired = 0;
  void fire() override {
    ++fired;
    if (fn) fn();
  }
};

TEST(TimerWheel, FiresAtDeadlineNotBefore) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0);
  FnTimer a;
  w.arm(a, t0, milliseconds(100));
  EXPECT_EQ(w.expire(t0 + milliseconds(50)), 0u);
  EXPECT_EQ(a.fired, 0);
  EXPECT_EQ(w.expire(t0 + milliseconds(111)), 1u);
  EXPECT_EQ(a.fired, 1);
  EXPECT_FALSE(a.armed());
}

TEST(TimerWheel, LongTimersSurviveManyRevolutions) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0, milliseconds(10), 64);  // one revolution = 640 ms
  FnTimer a;
  w.arm(a, t0, seconds(300));  // RFC 5321 command timeout
  for (int ms = 0; ms < 299'000; ms += 7) ASSERT_EQ(w.expire(t0 + milliseconds(ms)), 0u) << ms;
  EXPECT_EQ(w.expire(t0 + milliseconds(300'020)), 1u);
}

TEST(TimerWheel, RearmAndCancel) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0);
  FnTimer a, b;
  w.arm(a, t0, milliseconds(100));
  w.arm(b, t0, milliseconds(100));
  w.arm(a, t0, milliseconds(500));  // re-arm pushes it out
  w.cancel(b);
  EXPECT_EQ(w.expire(t0 + milliseconds(200)), 0u);
  EXPECT_EQ(w.armed_count(), 1u);
  EXPECT_EQ(w.expire(t0 + milliseconds(520)), 1u);
  EXPECT_EQ(b.fired, 0);
}

TEST(TimerWheel, CallbackMayCancelAnotherDueTimer) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0);
  FnTimer a, b;
  a.fn = [&] { w.cancel(b); };
  b.fn = [&] { w.cancel(a); };
  w.arm(a, t0, milliseconds(100));
  w.arm(b, t0, milliseconds(100));
  EXPECT_EQ(w.expire(t0 + milliseconds(200)), 1u);  // whichever fires first cancels the other
  EXPECT_EQ(a.fired + b.fired, 1);
}

TEST(TimerWheel, CallbackMayRearmItself) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0);
  FnTimer a;
  MonoTime now = t0;
  a.fn = [&] {
    if (a.fired < 3) w.arm(a, now, milliseconds(100));
  };
  w.arm(a, t0, milliseconds(100));
  for (int i = 1; i <= 5; ++i) {
    now = t0 + milliseconds(110 * i);
    w.expire(now);
  }
  EXPECT_EQ(a.fired, 3);
}

TEST(TimerWheel, UntilNextIsALowerBoundThatNeverOversleeps) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0, milliseconds(10), 128);
  FnTimer a;
  w.arm(a, t0, milliseconds(2500));  // several revolutions away
  MonoTime now = t0;
  int wakeups = 0;
  while (a.fired == 0 && wakeups < 1000) {
    auto d = w.until_next(now, seconds(1));
    now += d + milliseconds(1);
    w.expire(now);
    ++wakeups;
  }
  EXPECT_EQ(a.fired, 1);
  EXPECT_LE(now - t0, milliseconds(2500 + 30));  // fired within a few ticks of its deadline
}

TEST(TimerWheel, DestroyingATimerUnlinksIt) {
  MonoTime t0{hours(1)};
  TimerWheel w(t0);
  {
    FnTimer a;
    w.arm(a, t0, milliseconds(100));
    EXPECT_EQ(w.armed_count(), 1u);
  }
  EXPECT_EQ(w.armed_count(), 0u);
  EXPECT_EQ(w.expire(t0 + seconds(1)), 0u);
}

}  // namespace
}  // namespace ringmail::engine
