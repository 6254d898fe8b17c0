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
      engine::Acceptor::Handler& handler = *this;
      for (size_t i = 0; i < listen_fds_.size(); ++i) {
        acceptors_.push_back(std::make_unique<engine::Acceptor>(*loop_, listen_fds_[i], handler, i));
        acceptors_.back()->start();
      }
    }
    start_done_ = true;
    start_cv_.notify_all();
  }
  if (!loop_) return;
  loop_->run();
  loop_.reset();  // every operation has completed: nothing the kernel writes into is freed early
}

void SinkWorker::on_accepted(engine::Acceptor& acceptor, int fd, const SocketAddress& peer) {
  if (stopping_) {
    ::close(fd);
    return;
  }
  shared_.counters.connections.fetch_add(1, std::memory_order_relaxed);
  shared_.counters.open_connections.fetch_add(1, std::memory_order_relaxed);
  auto* c = new SinkConnection(*this, fd, shared_.listen_names[acceptor.index()], peer);
  c->next = connections_;
  if (connections_) connections_->prev = c;
  connections_ = c;
  ++connection_count_;
  c->start();
}

void SinkWorker::on_acceptor_stopped(engine::Acceptor&) {
  ++acceptors_stopped_;
  maybe_finish_stop();
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
  // stop() never frees synchronously (release goes through Loop::defer), so the walk is safe.
  for (SinkConnection* c = connections_; c; c = c->next) c->stop();
  loop_->timers().arm(grace_timer_, loop_->now(), kStopGrace);
  for (auto& a : acceptors_) a->stop();  // each reports on_acceptor_stopped()
  maybe_finish_stop();
}

void SinkWorker::on_grace_expired() {
  for (SinkConnection* c = connections_; c; c = c->next) c->abort();
}

void SinkWorker::maybe_finish_stop() {
  if (!stopping_ || connection_count_ > 0) return;
  if (acceptors_stopped_ < acceptors_.size()) return;
  loop_->timers().cancel(grace_timer_);
  loop_->stop();
}

void SinkWorker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ringmail::sink
