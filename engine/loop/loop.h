// The per-worker io_uring event loop: one ring created on the worker thread with
// SINGLE_ISSUER|DEFER_TASKRUN, a provided-buffer ring for multishot receives, a timer wheel,
// and a cross-thread wake-up (eventfd + task queue). Every submitted operation carries a pointer
// to a Completion (user_data); the loop calls it for each CQE. What runs on top (sessions,
// listeners, the spool) lives elsewhere; nothing here knows SMTP.
#pragma once

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "engine/loop/timer_wheel.h"

namespace ringmail::engine {

// Receives the CQEs of one operation (several for multishot). Must outlive its last CQE.
class Completion {
 public:
  virtual void on_complete(const io_uring_cqe& cqe) = 0;

 protected:
  ~Completion() = default;
};

struct LoopOptions {
  unsigned sq_entries = 1024;       // submission queue size
  unsigned cq_entries = 16384;      // completion queue size (many multishot receives)
  unsigned buffer_count = 1024;     // provided buffers (power of two)
  unsigned buffer_size = 4096;      // bytes per provided buffer
};

// Checks once per process that the kernel offers io_uring with the opcodes ringmail uses.
// Returns a clear error (not a crash) on kernels without io_uring or with it disabled.
Status probe_io_uring();

class Loop {
 public:
  static constexpr uint16_t kBufferGroup = 1;  // buffer group id of the provided-buffer ring

  // Creates the ring; must be called on the thread that will run the loop.
  static Result<std::unique_ptr<Loop>> create(const LoopOptions& options);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // An SQE to fill; submits pending ones first if the SQ is full. Never returns null.
  io_uring_sqe* sqe();
  // Same, with user_data already pointing at `c`.
  io_uring_sqe* sqe_for(Completion* c);

  // Runs until stop() is called (from the loop thread, or via post()); may be entered again.
  void run();
  void stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

  // Runs at the top of every iteration, before waiting (e.g. refreshing the routing snapshot).
  void set_iteration_hook(std::function<void()> fn) { iteration_hook_ = std::move(fn); }

  // Thread-safe: runs `fn` on the loop thread at the top of its next iteration.
  void post(std::function<void()> fn);
  // Runs `fn` at the end of the current iteration (after all CQEs of the batch are dispatched):
  // the place to free objects whose handler is still on the stack.
  void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

  // Provided buffers: data of a recv CQE, and returning the buffer to the ring afterwards.
  const char* buffer(uint16_t bid) const { return buf_base_ + static_cast<size_t>(bid) * buffer_size_; }
  void recycle_buffer(uint16_t bid);
  unsigned buffer_size() const { return buffer_size_; }

  TimerWheel& timers() { return timers_; }
  MonoTime now() const { return now_; }  // cached at the top of each iteration
  io_uring* ring() { return &ring_; }

  struct Stats {
    uint64_t iterations = 0;  // loop turns
    uint64_t cqes = 0;        // completions dispatched
    uint64_t enobufs = 0;     // multishot receives ended by an empty buffer ring
  };
  Stats& stats() { return stats_; }

 private:
  Loop() : timers_(MonoClock::now()) {}
  void arm_wakeup();
  void run_posted();

  io_uring ring_{};                 // the ring, owned by this thread
  bool ring_ready_ = false;         // queue_init succeeded
  io_uring_buf_ring* buf_ring_ = nullptr;  // provided-buffer ring (mmap'ed)
  size_t buf_ring_bytes_ = 0;       // size of the mmap above
  char* buf_base_ = nullptr;        // buffer memory, buffer_count * buffer_size
  unsigned buffer_count_ = 0;
  unsigned buffer_size_ = 0;
  TimerWheel timers_;               // protocol timeouts
  MonoTime now_{};                  // cached clock
  bool stopping_ = false;           // run() returns after the current iteration

  // Cross-thread wake-up: posters push under the mutex and write the eventfd once per batch.
  class WakeCompletion final : public Completion {
   public:
    explicit WakeCompletion(Loop* l) : loop_(l) {}
    void on_complete(const io_uring_cqe& cqe) override;
   private:
    Loop* loop_;
  };
  int wake_fd_ = -1;                // eventfd
  uint64_t wake_value_ = 0;         // read target of the armed eventfd read
  WakeCompletion wake_completion_{this};
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;   // guarded by post_mutex_
  std::vector<std::function<void()>> running_;  // swapped out of posted_ on the loop thread
  std::atomic<bool> wake_pending_{false};       // an eventfd write is outstanding
  std::vector<std::function<void()>> deferred_; // run at the end of the iteration
  std::function<void()> iteration_hook_;        // see set_iteration_hook()
  Stats stats_;
};

}  // namespace ringmail::engine
