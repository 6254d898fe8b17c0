// Hashed timer wheel implementation (see timer_wheel.h). Each slot holds timers whose deadline
// tick maps to it; a timer more than one revolution away stays in its slot and is skipped until
// its tick comes round, so no "rounds" counter is needed. Due timers are first moved to an
// "expired" list and then fired one by one, so a callback may cancel or re-arm any timer
// (itself or another due one) safely.
#include "engine/loop/timer_wheel.h"

#include <algorithm>

namespace ringmail::engine {

Timer::~Timer() {
  if (wheel_) wheel_->cancel(*this);
}

TimerWheel::TimerWheel(MonoTime start, std::chrono::milliseconds tick, size_t slots)
    : start_(start), tick_(tick), slots_(slots, nullptr) {}

TimerWheel::~TimerWheel() {
  auto detach = [](Timer*& head) {
    while (head) {
      Timer* t = head;
      head = t->next_;
      t->wheel_ = nullptr;
      t->prev_ = t->next_ = nullptr;
      t->in_expired_ = false;
    }
  };
  for (Timer*& head : slots_) detach(head);
  detach(expired_);
}

uint64_t TimerWheel::tick_of(MonoTime t) const {
  if (t <= start_) return 0;
  auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(t - start_);
  return static_cast<uint64_t>(d.count() / tick_.count());
}

Timer*& TimerWheel::head_of(Timer& t) {
  return t.in_expired_ ? expired_ : slots_[t.deadline_tick_ % slots_.size()];
}

void TimerWheel::link(Timer& t) {
  Timer*& head = head_of(t);
  t.prev_ = nullptr;
  t.next_ = head;
  if (head) head->prev_ = &t;
  head = &t;
  t.wheel_ = this;
  ++armed_;
  if (!t.in_expired_) earliest_hint_ = std::min(earliest_hint_, t.deadline_tick_);
}

void TimerWheel::unlink(Timer& t) {
  Timer*& head = head_of(t);
  if (t.prev_) t.prev_->next_ = t.next_;
  else head = t.next_;
  if (t.next_) t.next_->prev_ = t.prev_;
  t.prev_ = t.next_ = nullptr;
  t.wheel_ = nullptr;
  t.in_expired_ = false;
  --armed_;
}

void TimerWheel::arm(Timer& t, MonoTime now, std::chrono::nanoseconds after) {
  if (t.wheel_) unlink(t);
  auto ticks = (after.count() + tick_.count() - 1) / tick_.count();  // round up
  uint64_t deadline = tick_of(now) + static_cast<uint64_t>(std::max<int64_t>(ticks, 1));
  t.deadline_tick_ = std::max(deadline, current_tick_);
  link(t);
}

void TimerWheel::cancel(Timer& t) {
  if (t.wheel_ == this) unlink(t);
}

size_t TimerWheel::expire(MonoTime now) {
  uint64_t target = tick_of(now);
  if (armed_ == 0) {
    current_tick_ = std::max(current_tick_, target + 1);
    earliest_hint_ = UINT64_MAX;
    return 0;
  }
  if (target < earliest_hint_) return 0;  // nothing can be due yet
  auto collect = [&](Timer*& head) {
    Timer* t = head;
    while (t) {
      Timer* next = t->next_;
      if (t->deadline_tick_ <= target) {
        unlink(*t);
        t->in_expired_ = true;
        link(*t);  // onto expired_
      }
      t = next;
    }
  };
  if (target - current_tick_ >= slots_.size()) {
    for (Timer*& head : slots_) collect(head);  // far behind: one sweep of every slot
  } else {
    for (uint64_t tick = current_tick_; tick <= target; ++tick) collect(slots_[tick % slots_.size()]);
  }
  current_tick_ = target + 1;

  size_t fired = 0;
  while (expired_) {
    Timer* t = expired_;
    unlink(*t);
    t->fire();  // may arm/cancel anything, including timers still on expired_
    ++fired;
  }
  // New lower bound: the first non-empty slot from current_tick_ (any timer in slot s is due no
  // earlier than the first tick >= current_tick_ that maps to s).
  earliest_hint_ = UINT64_MAX;
  if (armed_ > 0) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[(current_tick_ + i) % slots_.size()]) {
        earliest_hint_ = current_tick_ + i;
        break;
      }
    }
  }
  return fired;
}

std::chrono::nanoseconds TimerWheel::until_next(MonoTime now, std::chrono::nanoseconds cap) const {
  if (armed_ == 0 || earliest_hint_ == UINT64_MAX) return cap;
  MonoTime due = start_ + tick_ * static_cast<int64_t>(earliest_hint_);
  if (due <= now) return std::chrono::nanoseconds(0);
  return std::min(cap, std::chrono::duration_cast<std::chrono::nanoseconds>(due - now) + tick_);
}

}  // namespace ringmail::engine
