// SinkWorker implementation (see sink_worker.h): start-up handshake, multishot accept, and the
// stop sequence (cancel accepts → every connection flushes and closes → abort stragglers after
// the grace period → leave the loop once the last accept and connection are gone).
#include "tools/sink/sink_worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/log.h"
#include "tools/sink/sink_connection.h"

namespace ringmail::sink {

namespace {
constexpr std::chrono::seconds kStopGrace{2};  // how long clients get to read their last replies
}

SinkWorker::SinkWorker(unsigned id, SinkShared& shared, std::vector<int> listen_fds)
    : id_(id), shared_(shared), listen_fds_(std::move(listen_fds)), faults_(shared.options->faults, id) {}

SinkWorker::~SinkWorker() {
  if (thread_.joinable()) thread_.join();
  for (int fd : listen_fds_)
    if (fd >= 0) ::close(fd);
}

Status SinkWorker::start() {
  thread_ = std::thread([this] { thread_main(); });
  std::unique_lock<std::mutex> lk(start_mutex_);
  start_cv_.wait(lk, [this] { return start_done_; });
  if (start_error_) return *start_error_;
  return {};
}

void SinkWorker::thread_main() {
  log::set_thread_name(fmt::format("sink{}", id_));
  engine::LoopOptions lo;
  lo.buffer_count = 1024;  // 4 MiB of receive buffers per worker, shared by all its connections
  auto loop = engine::Loop::create(lo);
  {
    std::lock_guard<std::mutex> g(start_mutex_);
    if (!loop) start_error_ = loop.error();
    else loop_ = std::move(*loop);
    if (loop_) {
      for (size_t i = 0; i < listen_fds_.size(); ++i) {
        auto op = std::make_unique<AcceptOp>();
        op->worker = this;
        op->fd = listen_fds_[i];
        op->listener = i;
        arm_accept(*op);
        accepts_.push_back(std::move(op));
      }
    }
    start_done_ = true;
    start_cv_.notify_all();
  }
  if (!loop_) return;
  loop_->run();
  loop_.reset();  // every operation has completed: nothing the kernel writes into is freed early
}

void SinkWorker::arm_accept(AcceptOp& op) {
  io_uring_sqe* s = loop_->sqe_for(&op);
  io_uring_prep_multishot_accept(s, op.fd, nullptr, nullptr, SOCK_CLOEXEC);
  op.armed = true;
}

void SinkWorker::on_accept(AcceptOp& op, const io_uring_cqe& cqe) {
  if (!(cqe.flags & IORING_CQE_F_MORE)) op.armed = false;
  if (cqe.res >= 0) {
    int fd = cqe.res;
    if (stopping_) {
      ::close(fd);
    } else {
      shared_.counters.connections.fetch_add(1, std::memory_order_relaxed);
      shared_.counters.open_connections.fetch_add(1, std::memory_order_relaxed);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // replies are batched already
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      SocketAddress peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      auto* c = new SinkConnection(*this, fd, shared_.listen_names[op.listener], peer);
      c->next = connections_;
      if (connections_) connections_->prev = c;
      connections_ = c;
      ++connection_count_;
      c->start();
    }
  } else if (cqe.res == -EMFILE || cqe.res == -ENFILE) {
    // Out of descriptors: the multishot ends; it is re-armed below and the client waits in the backlog.
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) log::warn("accept: {} (raise the open-files limit)", std::strerror(-cqe.res));
  } else if (cqe.res != -ECANCELED && !stopping_) {
    log::warn("accept failed: {}", std::strerror(-cqe.res));
  }
  if (!op.armed) {
    if (!stopping_) arm_accept(op);
    else maybe_finish_stop();
  }
}

void SinkWorker::connection_finished(SinkConnection* c) {
  if (c->prev) c->prev->next = c->next;
  else connections_ = c->next;
  if (c->next) c->next->prev = c->prev;
  --connection_count_;
  shared_.counters.open_connections.fetch_sub(1, std::memory_order_relaxed);
  delete c;
  if (stopping_) maybe_finish_stop();
}

void SinkWorker::request_stop() {
  if (!loop_) return;
  loop_->post([this] { begin_stop(); });
}

void SinkWorker::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& op : accepts_) {
    if (op->armed) {
      io_uring_sqe* s = loop_->sqe();
      io_uring_prep_cancel(s, op.get(), 0);
      io_uring_sqe_set_data(s, nullptr);  // the cancel's own CQE needs no handler
    }
  }
  // stop() never frees synchronously (release goes through Loop::defer), so the walk is safe.
  for (SinkConnection* c = connections_; c; c = c->next) c->stop();
  loop_->timers().arm(grace_timer_, loop_->now(), kStopGrace);
  maybe_finish_stop();
}

void SinkWorker::on_grace_expired() {
  for (SinkConnection* c = connections_; c; c = c->next) c->abort();
}

void SinkWorker::maybe_finish_stop() {
  if (!stopping_ || connection_count_ > 0) return;
  for (auto& op : accepts_)
    if (op->armed) return;
  loop_->timers().cancel(grace_timer_);
  loop_->stop();
}

void SinkWorker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ringmail::sink
