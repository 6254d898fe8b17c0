// Worker implementation (see worker.h): thread start-up handshake, multishot accept, the
// shutdown sequence (stop accepting → 421 to idle clients → let busy ones finish within the
// grace period → close the spool writer, which syncs → leave the loop).
#include "engine/server/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "engine/server/inbound_session.h"

namespace ringmail::engine {

Worker::Worker(WorkerConfig config) : config_(std::move(config)) {
  if (config_.security) config_.server.security = config_.security->protocol();
  // A handshake may take as long as a command, never longer (so --command-timeout bounds it too).
  auto& limits = config_.server.limits;
  limits.tls_handshake_timeout = std::min(limits.tls_handshake_timeout, limits.command_timeout);
}

Worker::~Worker() {
  if (thread_.joinable()) thread_.join();
  for (int fd : config_.listen_fds)
    if (fd >= 0) ::close(fd);
}

Status Worker::start() {
  thread_ = std::thread([this] { thread_main(); });
  std::unique_lock<std::mutex> lk(start_mutex_);
  start_cv_.wait(lk, [this] { return start_done_; });
  if (start_error_) return *start_error_;
  return {};
}

void Worker::thread_main() {
  log::set_thread_name(fmt::format("w{}", config_.id));
  auto fail = [this](Error e) {
    std::lock_guard<std::mutex> g(start_mutex_);
    start_error_ = std::move(e);
    start_done_ = true;
    start_cv_.notify_all();
  };
  if (config_.cpu >= 0) {  // before the ring exists, so its io-wq threads inherit the CPU
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(config_.cpu, &set);
    if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0)
      return fail(
          Error(fmt::format("worker {}: cannot run on CPU {}: {}", config_.id, config_.cpu, std::strerror(rc))));
    log::info("worker {} runs on CPU {}", config_.id, config_.cpu);
  }
  auto loop = Loop::create(config_.loop);
  if (!loop) return fail(loop.error());
  loop_ = std::move(*loop);
  file_io_ = std::make_unique<RingFileIo>(*loop_);
  if (config_.security && !config_.security->tls_cert.empty()) {
    auto ctx = config_.security->make_tls_context();  // built on this thread, used only here
    if (!ctx) return fail(ctx.error());
    server_tls_ = std::move(*ctx);
  }
  auto writer = config_.spool->make_writer(config_.id, *file_io_, SystemClock::instance());
  if (!writer) return fail(writer.error());
  writer_ = std::move(*writer);
  if (config_.routes) {
    // Each iteration costs one acquire load; a new table is taken only after a reload.
    routes_ = std::make_unique<routing::TableReader>(*config_.routes);
    routes_->refresh();
    loop_->set_iteration_hook([this] {
      if (routes_->refresh()) log::debug("routing table version {} in use", routes_->version());
    });
  }
  if (!config_.tracking_log_dir.empty())
    tracking_ = std::make_unique<TrackingLog>(loop_.get(), config_.tracking_log_dir, config_.id, SystemClock::instance(),
                                              config_.log_max_age_days);
  if (config_.delivery) {
    delivery_ = std::make_unique<Delivery>(config_.id, *loop_, *file_io_, *config_.delivery);
    delivery_->set_tracking_log(tracking_.get());
    delivery_->attach_writer(*writer_, [this](queue::MessageRef m) { message_committed(std::move(m)); });
    if (auto st = delivery_->start(); !st) return fail(st.error());
  }
  Acceptor::Handler& handler = *this;
  for (int fd : config_.listen_fds) acceptors_.push_back(std::make_unique<Acceptor>(*loop_, fd, handler));
  {
    std::lock_guard<std::mutex> g(start_mutex_);
    start_done_ = true;
    start_cv_.notify_all();
  }
  loop_->run();
  auto st = writer_->stats();
  if (st.records > 0)
    log::info("spool writer: {} messages in {} writes and {} {} ({:.1f} messages per commit), commit latency "
              "mean {:.2f} ms, max {:.2f} ms",
              st.records, st.batches, st.syncs,
              st.direct_segments == st.segments ? "durable direct writes"
              : st.direct_segments == 0         ? "fdatasyncs"
                                                : "commits (direct and fdatasync)",
              st.syncs ? double(st.records) / double(st.syncs) : 0.0,
              st.syncs ? double(st.sync_ns_sum) / double(st.syncs) / 1e6 : 0.0, double(st.sync_ns_max) / 1e6);
  // The loop ends only after the writer closed; drop what is left in a safe order.
  delivery_.reset();
  tracking_.reset();  // flushes
  writer_.reset();
  file_io_.reset();
  routes_.reset();
  server_tls_.reset();
  loop_.reset();
}

void Worker::open_listeners() {
  loop_->post([this] {
    if (stopping_) return;
    for (auto& a : acceptors_) a->start();
  });
}

void Worker::message_committed(queue::MessageRef msg, std::string_view message_id) {
  if (tracking_) tracking_->receive(msg->env, msg->location.body_len, message_id);
  if (!delivery_ || !routes_) return;  // holding: the message stays in the spool
  dispatch_message(*config_.delivery, routes_->snapshot(), msg);
}

void Worker::on_accepted(Acceptor&, int fd, const SocketAddress& remote) {
  if (stopping_) {
    ::close(fd);
    return;
  }
  if (config_.open_connections->fetch_add(1, std::memory_order_relaxed) >= config_.max_connections) {
    config_.open_connections->fetch_sub(1, std::memory_order_relaxed);
    counters_.refused_connections.fetch_add(1, std::memory_order_relaxed);
    // A short non-blocking reply, then close: the client learns why (RFC 5321 §3.8 421).
    static constexpr char kBusy[] = "421 4.7.0 Too many connections, try again later\r\n";
    ssize_t rc = ::send(fd, kBusy, sizeof kBusy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)rc;
    ::close(fd);
    return;
  }
  counters_.accepted_connections.fetch_add(1, std::memory_order_relaxed);
  smtp::PeerInfo peer;
  peer.remote = remote;
  peer.relay_allowed = config_.relay_networks.contains(peer.remote);
  auto* s = new InboundSession(*this, fd, peer);
  s->next = sessions_;
  if (sessions_) sessions_->prev = s;
  sessions_ = s;
  ++session_count_;
  s->start();
}

void Worker::on_acceptor_stopped(Acceptor&) {
  ++acceptors_stopped_;
  maybe_finish_stop();
}

void Worker::session_finished(InboundSession* s) {
  if (s->prev) s->prev->next = s->next;
  else sessions_ = s->next;
  if (s->next) s->next->prev = s->prev;
  --session_count_;
  config_.open_connections->fetch_sub(1, std::memory_order_relaxed);
  delete s;
  if (stopping_) maybe_finish_stop();
}

void Worker::request_stop() {
  if (!loop_) return;
  loop_->post([this] { begin_stop(); });
}

void Worker::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  for (InboundSession* s = sessions_; s;) {
    InboundSession* next = s->next;  // shutdown() never frees synchronously, but be safe
    s->shutdown();
    s = next;
  }
  loop_->timers().arm(grace_timer_, loop_->now(), config_.shutdown_grace);
  for (auto& a : acceptors_) a->stop();  // each reports on_acceptor_stopped()
  maybe_finish_stop();
}

void Worker::on_grace_expired() {
  if (session_count_ > 0) log::warn("shutdown: aborting {} sessions still busy after the grace period", session_count_);
  for (InboundSession* s = sessions_; s; s = s->next) s->abort();
}

void Worker::maybe_finish_stop() {
  if (!stopping_ || writer_closing_ || session_count_ > 0) return;
  if (acceptors_stopped_ < acceptors_.size()) return;
  loop_->timers().cancel(grace_timer_);
  for (int& fd : config_.listen_fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  if (delivery_ && !delivery_stopping_) {
    // Outbound sessions end first (idle ones QUIT, a transaction under way finishes within
    // --shutdown-grace, the rest are cut and retried after restart), then the journal syncs, then
    // the spool writer.
    delivery_stopping_ = true;
    delivery_->stop([this] {
      delivery_stopped_ = true;
      maybe_finish_stop();
    });
    return;
  }
  if (delivery_ && delivery_stopping_ && !delivery_stopped_) return;
  writer_closing_ = true;
  writer_->close([this] { loop_->stop(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ringmail::engine
