// io_uring loop implementation (see loop.h). Follows platform-notes §1: ring created on its own
// thread, DEFER_TASKRUN so completions are processed only when we enter the kernel, one
// submit_and_wait per iteration, the whole CQ batch retired with one cq_advance.
#include "engine/loop/loop.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ringmail::engine {

Status probe_io_uring() {
  // A small ring of our own, so the kernel's reason is known (liburing reports it as -errno).
  io_uring ring{};
  int rc = io_uring_queue_init(2, &ring, 0);
  if (rc < 0)
    return make_error(
        "io_uring is not available on this kernel (io_uring_setup failed: {}); ringmail needs Linux >= 6.1 "
        "with io_uring enabled (check sysctl kernel.io_uring_disabled and seccomp/container policy)",
        std::strerror(-rc));
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  io_uring_queue_exit(&ring);
  if (!probe) return make_error("io_uring is present but cannot be probed for its opcodes (kernel too old?)");
  struct Needed {
    int op;
    const char* name;
  };
  static constexpr Needed kNeeded[] = {
      {IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_RECV, "RECV"},          {IORING_OP_SEND, "SEND"},
      {IORING_OP_READ, "READ"},       {IORING_OP_WRITE, "WRITE"},        {IORING_OP_FSYNC, "FSYNC"},
      {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_CLOSE, "CLOSE"}, {IORING_OP_CONNECT, "CONNECT"},
      {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"}, {IORING_OP_SHUTDOWN, "SHUTDOWN"},
  };
  std::string missing;
  for (const auto& n : kNeeded) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      if (!missing.empty()) missing += ", ";
      missing += n.name;
    }
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) return make_error("this kernel's io_uring lacks opcodes ringmail needs: {}", missing);
  return {};
}

Result<std::unique_ptr<Loop>> Loop::create(const LoopOptions& o) {
  std::unique_ptr<Loop> loop(new Loop());
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_CQSIZE;
  p.cq_entries = o.cq_entries;
  int rc = io_uring_queue_init_params(o.sq_entries, &loop->ring_, &p);
  if (rc < 0)
    return make_error("cannot create io_uring (SINGLE_ISSUER|DEFER_TASKRUN needs Linux >= 6.1): {}",
                      std::strerror(-rc));
  loop->ring_ready_ = true;
  io_uring_register_ring_fd(&loop->ring_);  // optional speed-up; failure is harmless

  // Provided-buffer ring set up by hand: liburing 2.3 has no io_uring_setup_buf_ring (notes §1.4).
  loop->buffer_count_ = o.buffer_count;
  loop->buffer_size_ = o.buffer_size;
  loop->buf_ring_bytes_ = o.buffer_count * sizeof(io_uring_buf);
  void* ring_mem = mmap(nullptr, loop->buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED) return make_error("cannot map buffer ring: {}", std::strerror(errno));
  loop->buf_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<unsigned long>(ring_mem);
  reg.ring_entries = o.buffer_count;
  reg.bgid = kBufferGroup;
  rc = io_uring_register_buf_ring(&loop->ring_, &reg, 0);
  if (rc < 0) return make_error("cannot register provided-buffer ring: {}", std::strerror(-rc));
  io_uring_buf_ring_init(loop->buf_ring_);
  loop->buf_base_ = static_cast<char*>(
      mmap(nullptr, static_cast<size_t>(o.buffer_count) * o.buffer_size, PROT_READ | PROT_WRITE,
           MAP_ANONYMOUS | MAP_PRIVATE, -1, 0));
  if (loop->buf_base_ == MAP_FAILED) {
    loop->buf_base_ = nullptr;
    return make_error("cannot map receive buffers: {}", std::strerror(errno));
  }
  int mask = io_uring_buf_ring_mask(o.buffer_count);
  for (unsigned i = 0; i < o.buffer_count; ++i)
    io_uring_buf_ring_add(loop->buf_ring_, loop->buf_base_ + static_cast<size_t>(i) * o.buffer_size,
                          o.buffer_size, static_cast<unsigned short>(i), mask, static_cast<int>(i));
  io_uring_buf_ring_advance(loop->buf_ring_, static_cast<int>(o.buffer_count));

  loop->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->wake_fd_ < 0) return make_error("cannot create eventfd: {}", std::strerror(errno));
  loop->now_ = MonoClock::now();
  loop->arm_wakeup();
  return loop;
}

Loop::~Loop() {
  if (ring_ready_) io_uring_queue_exit(&ring_);  // after this the kernel touches none of our memory
  if (buf_base_) munmap(buf_base_, static_cast<size_t>(buffer_count_) * buffer_size_);
  if (buf_ring_) munmap(buf_ring_, buf_ring_bytes_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

io_uring_sqe* Loop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (!s) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

io_uring_sqe* Loop::sqe_for(Completion* c) {
  io_uring_sqe* s = sqe();
  io_uring_sqe_set_data(s, c);
  return s;
}

void Loop::recycle_buffer(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buf_base_ + static_cast<size_t>(bid) * buffer_size_, buffer_size_, bid,
                        io_uring_buf_ring_mask(buffer_count_), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void Loop::arm_wakeup() {
  io_uring_sqe* s = sqe_for(&wake_completion_);
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
}

void Loop::WakeCompletion::on_complete(const io_uring_cqe&) {
  loop_->wake_pending_.store(false, std::memory_order_release);
  loop_->arm_wakeup();
  loop_->run_posted();
}

void Loop::post(std::function<void()> fn) {
  // Everything happens under the mutex: the loop thread cannot run this task (which may end the
  // loop and destroy it) before the poster is done touching the loop. One eventfd write per batch
  // of posts: later posters see wake_pending_ and skip the syscall.
  std::lock_guard<std::mutex> g(post_mutex_);
  posted_.push_back(std::move(fn));
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t rc = ::write(wake_fd_, &one, sizeof one);
    (void)rc;  // EAGAIN only if the counter is saturated, which still wakes the reader
  }
}

void Loop::run_posted() {
  {
    std::lock_guard<std::mutex> g(post_mutex_);
    running_.swap(posted_);
  }
  for (auto& fn : running_) fn();
  running_.clear();
}

void Loop::run() {
  using namespace std::chrono;
  stopping_ = false;
  while (!stopping_) {
    ++stats_.iterations;
    if (iteration_hook_) iteration_hook_();
    now_ = MonoClock::now();
    auto wait = timers_.until_next(now_, seconds(1));
    __kernel_timespec ts{};
    ts.tv_sec = duration_cast<seconds>(wait).count();
    ts.tv_nsec = (wait - seconds(ts.tv_sec)).count();
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
      log::error("io_uring_submit_and_wait_timeout: {}", std::strerror(-rc));
    now_ = MonoClock::now();
    unsigned head = 0, n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      auto* c = static_cast<Completion*>(io_uring_cqe_get_data(cqe));
      if (c) c->on_complete(*cqe);
    }
    io_uring_cq_advance(&ring_, n);
    stats_.cqes += n;
    timers_.expire(now_);
    // Deferred work may defer more; run until quiet.
    while (!deferred_.empty()) {
      auto batch = std::move(deferred_);
      deferred_.clear();
      for (auto& fn : batch) fn();
    }
  }
  // Submit what the last iteration queued (e.g. final sends, closes) before returning.
  io_uring_submit(&ring_);
}

}  // namespace ringmail::engine
