// SinkConnection implementation (see sink_connection.h). Without --delay-ms the responder writes
// straight into the connection's output buffer and one flush per receive sends every reply of a
// pipelined group together; with it, replies collect in delayed_ until the timer fires.
#include "tools/sink/sink_connection.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "common/log.h"
#include "tools/sink/sink_worker.h"

namespace ringmail::sink {

SinkConnection::SinkConnection(SinkWorker& worker, int fd, const std::string& listen_name, const SocketAddress& peer)
    : worker_(worker),
      listen_name_(listen_name),
      peer_(peer),
      responder_(worker.shared().options->responder, worker.faults(), *this),
      conn_(worker.loop(), fd, *this) {}

std::string& SinkConnection::reply_buffer() {
  return worker_.shared().options->delay_ms ? delayed_ : conn_.out();
}

void SinkConnection::start() {
  conn_.start();
  act(responder_.start(reply_buffer()));
}

void SinkConnection::on_data(std::string_view bytes) {
  worker_.shared().counters.bytes_received.fetch_add(bytes.size(), std::memory_order_relaxed);
  act(responder_.feed(bytes, reply_buffer()));
}

void SinkConnection::act(Verdict v) {
  if (v == Verdict::kDrop) {
    engine::Timer& t = *this;
    if (t.armed()) worker_.loop().timers().cancel(t);
    conn_.abort();
    return;
  }
  if (v == Verdict::kStartTls) {
    begin_tls();
    return;
  }
  if (v == Verdict::kClose) conn_.ignore_input();
  unsigned delay_ms = worker_.shared().options->delay_ms;
  if (delay_ms == 0) {
    if (v == Verdict::kClose) conn_.close_after_flush();
    else conn_.flush();
    return;
  }
  if (v == Verdict::kClose) close_when_sent_ = true;
  engine::Timer& t = *this;
  if (!delayed_.empty() && !t.armed())
    worker_.loop().timers().arm(t, worker_.loop().now(), std::chrono::milliseconds(delay_ms));
}

void SinkConnection::begin_tls() {
  // The 220 must leave in clear before the handshake, so --delay-ms does not hold it back.
  conn_.out() += delayed_;
  delayed_.clear();
  responder_.tls_started();
  tls::TlsContext* context = worker_.shared().tls;
  Status started = make_error("no TLS context");
  if (context) started = conn_.start_tls(*context, nullptr);
  if (!started) {
    log::warn("sink: STARTTLS from {}: {}", peer_.to_string(), started.error().message());
    worker_.shared().counters.tls_failures.fetch_add(1, std::memory_order_relaxed);
    abort();
  }
}

void SinkConnection::on_tls_ready() {
  SinkCounters& c = worker_.shared().counters;
  c.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (conn_.tls()->resumed()) c.tls_resumed.fetch_add(1, std::memory_order_relaxed);
}

void SinkConnection::on_tls_failed(tls::FailureKind, std::string_view text) {
  log::debug("sink: TLS with {} failed: {}", peer_.to_string(), text);
  worker_.shared().counters.tls_failures.fetch_add(1, std::memory_order_relaxed);
  abort();
}

void SinkConnection::fire() {
  conn_.out() += delayed_;
  delayed_.clear();
  if (close_when_sent_) conn_.close_after_flush();
  else conn_.flush();
}

void SinkConnection::stop() {
  // Replies held back by --delay-ms go out now. The connection stays open so a client that just
  // got its 250 (e.g. the one that reached --exit-after) can still QUIT cleanly; the worker
  // aborts whatever is left when its grace period ends.
  engine::Timer& t = *this;
  if (t.armed()) worker_.loop().timers().cancel(t);
  conn_.out() += delayed_;
  delayed_.clear();
  if (close_when_sent_) conn_.close_after_flush();
  else conn_.flush();
}

void SinkConnection::abort() {
  engine::Timer& t = *this;
  if (t.armed()) worker_.loop().timers().cancel(t);
  conn_.abort();
}

void SinkConnection::on_peer_closed(int) { abort(); }

void SinkConnection::on_released() {
  engine::Timer& t = *this;
  if (t.armed()) worker_.loop().timers().cancel(t);
  worker_.connection_finished(this);  // deletes this
}

uint64_t SinkConnection::next_message_number() {
  return worker_.shared().last_message_number.fetch_add(1, std::memory_order_relaxed) + 1;
}

void SinkConnection::message_accepted(const Transaction& t, uint64_t number) {
  SinkShared& s = worker_.shared();
  s.counters.rcpts.fetch_add(t.rcpts.size(), std::memory_order_relaxed);
  s.counters.message_bytes.fetch_add(t.size, std::memory_order_relaxed);
  if (s.recorder) {
    std::string client = peer_.to_string();
    s.recorder->record(RecordedMessage{number, listen_name_, client, &t});
  }
  uint64_t accepted = s.counters.messages.fetch_add(1, std::memory_order_relaxed) + 1;
  // --exit-after: the main thread's sigwait() turns this into the ordinary shutdown, which still
  // flushes this message's 250 before closing.
  if (s.options->exit_after && accepted == s.options->exit_after) ::kill(::getpid(), SIGTERM);
}

void SinkConnection::fault_injected(FaultKind kind) {
  SinkCounters& c = worker_.shared().counters;
  switch (kind) {
    case FaultKind::kRcpt: c.rcpt_faults.fetch_add(1, std::memory_order_relaxed); break;
    case FaultKind::kData: c.data_faults.fetch_add(1, std::memory_order_relaxed); break;
    case FaultKind::kDropMidData: c.dropped.fetch_add(1, std::memory_order_relaxed); break;
    case FaultKind::kOversize: c.oversize.fetch_add(1, std::memory_order_relaxed); break;
  }
}

}  // namespace ringmail::sink
