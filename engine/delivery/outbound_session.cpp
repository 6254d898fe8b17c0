// OutboundSession implementation (see outbound_session.h).
#include "engine/delivery/outbound_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "common/log.h"

namespace ringmail::engine {
namespace {

using routing::TlsPolicy;

// Per worker thread (each worker is one thread, so no locks): client TLS contexts by CA file (""
// = the system store), each with its session cache, and the hosts whose TLS handshake broke under
// the opportunistic policy, which get clear text until the entry expires.
struct WorkerTls {
  std::unordered_map<std::string, std::unique_ptr<tls::TlsContext>> contexts;  // by CA file
  std::unordered_map<std::string, MonoTime> broken;                           // "[ip]:port" → until
};
thread_local WorkerTls t_tls;

// How long a host whose TLS handshake broke is given clear text (opportunistic only). Long enough
// not to retry a broken server on every message, short enough to notice when it is fixed.
constexpr std::chrono::minutes kBrokenTlsMemory{60};

Result<tls::TlsContext*> client_context(const std::string& ca_file) {
  auto it = t_tls.contexts.find(ca_file);
  if (it != t_tls.contexts.end()) return it->second.get();
  auto made = tls::TlsContext::client({ca_file, 4096});
  if (!made) return made.error();
  tls::TlsContext* ctx = made->get();
  t_tls.contexts.emplace(ca_file, std::move(*made));
  return ctx;
}

bool tls_broken_recently(const std::string& host, MonoTime now) {
  auto it = t_tls.broken.find(host);
  if (it == t_tls.broken.end()) return false;
  if (now < it->second) return true;
  t_tls.broken.erase(it);
  return false;
}

// The name a `verify` session checks (and sends as SNI) when neither tls_domain nor the host's
// name (the MX exchange for DNS-routed next hops) is known: the smart host's name, when it is
// unambiguous (one named smart host with this port).
std::string tls_name_for(const routing::Connector& c, const SocketAddress& host) {
  if (!c.tls_domain.empty()) return c.tls_domain;
  std::string found;
  for (const auto& sh : c.smart_hosts) {
    if (sh.is_ip_literal) continue;
    if ((sh.port ? sh.port : c.port) != host.port()) continue;
    if (!found.empty()) return {};  // two candidates: cannot tell which one this address belongs to
    found = sh.host;
  }
  return found;
}

smtp::ClientConfig session_config(const NextHop& hop, const std::string& host_text, MonoTime now) {
  smtp::ClientConfig config = hop.client;
  const routing::Connector& c = *hop.connector;
  switch (c.tls) {
    case TlsPolicy::kNone: config.starttls = smtp::StartTls::kNever; break;
    case TlsPolicy::kOpportunistic:
      config.starttls = tls_broken_recently(host_text, now) ? smtp::StartTls::kNever : smtp::StartTls::kIfOffered;
      break;
    case TlsPolicy::kRequired:
    case TlsPolicy::kVerify: config.starttls = smtp::StartTls::kRequired; break;
  }
  if (c.auth) {
    config.auth.username = c.auth->username;
    config.auth.password = c.auth->password;
    config.auth.mechanism = c.auth->mechanism;
    config.auth.allow_plaintext = c.auth_allow_plaintext;
  }
  return config;
}

}  // namespace

OutboundSession::OutboundSession(Delivery& delivery, NextHop& hop, const SocketAddress& host,
                                 const std::string& host_name)
    : delivery_(delivery),
      hop_(hop),
      host_(host),
      host_text_(host.to_string()),
      tls_name_(!hop.connector->tls_domain.empty() ? hop.connector->tls_domain
                : !host_name.empty()                 ? host_name
                                                     : tls_name_for(*hop.connector, host)),
      config_(session_config(hop, host_text_, delivery.loop().now())),
      client_(config_, *this) {
  connect_op_.s = this;
  timeout_op_.s = this;
  if (hop.connector->protocol_log) protocol_log_ = delivery.protocol_log();
  if (protocol_log_ != nullptr) {
    config_.transcript = true;  // before any event: the session reads its config as it goes
    log_name_ = delivery.new_session_name();
  }
}

void OutboundSession::log_line(char event, std::string_view text) {
  if (protocol_log_ != nullptr) protocol_log_->write(log_name_, hop_.connector->name, host_text_, event, text);
}

void OutboundSession::on_transcript(smtp::TranscriptKind kind, std::string_view line) {
  switch (kind) {
    case smtp::TranscriptKind::kSent: log_line('>', line); break;
    case smtp::TranscriptKind::kReceived: log_line('<', line); break;
    case smtp::TranscriptKind::kNote: log_line('*', line); break;
  }
}

OutboundSession::~OutboundSession() {
  if (fd_ >= 0) ::close(fd_);
}

void OutboundSession::start() {
  fd_ = ::socket(host_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return connect_failed(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (const auto& src : hop_.connector->source_addresses) {
    // The connector's first source address of our family is the egress address (Exchange's
    // SourceIPAddress); binding fails loudly rather than silently using another address.
    auto a = SocketAddress::parse(src, 0);
    if (!a || a->family() != host_.family()) continue;
    if (::bind(fd_, a->sa(), a->len()) < 0)
      return connect_failed(fmt::format("bind to source address {}: {}", src, std::strerror(errno)));
    break;
  }
  auto secs = hop_.client.timeouts.connect.count();
  connect_timeout_.tv_sec = secs;
  connect_timeout_.tv_nsec = 0;
  io_uring_sqe* c = delivery_.loop().sqe_for(&connect_op_);
  io_uring_prep_connect(c, fd_, host_.sa(), host_.len());
  c->flags |= IOSQE_IO_LINK;
  io_uring_sqe* t = delivery_.loop().sqe_for(&timeout_op_);
  io_uring_prep_link_timeout(t, &connect_timeout_, 0);
  connect_cqes_pending_ = 2;
}

void OutboundSession::on_connect_timeout_cqe() {
  --connect_cqes_pending_;
  maybe_release();
}

void OutboundSession::on_connect(int res) {
  --connect_cqes_pending_;
  if (res < 0) {
    connect_failed(res == -ECANCELED ? fmt::format("connect to {}: timed out", host_text_)
                                     : fmt::format("connect to {}: {}", host_text_, std::strerror(-res)));
    return;
  }
  if (protocol_log_ != nullptr) {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    const bool known = ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) == 0;
    log_line('+', known ? fmt::format("connected from {}",
                                      SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), len).to_string())
                        : std::string("connected"));
  }
  conn_ = std::make_unique<TcpConnection>(delivery_.loop(), fd_, *this);
  fd_ = -1;  // owned by the connection now
  conn_->start();
  act(client_.on_connected(out_));
}

void OutboundSession::connect_failed(std::string why) {
  log_line('-', why);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  client_.on_connection_lost(why);  // reports kTryNextHost through on_session_result
  closed_ = true;
  maybe_release();
}

void OutboundSession::act(smtp::ClientAction action) {
  if (!conn_) return;
  if (!out_.empty()) {
    conn_->out().append(out_);
    out_.clear();
  }
  switch (action) {
    case smtp::ClientAction::kNeedInput:
      conn_->flush();
      delivery_.loop().timers().arm(*this, delivery_.loop().now(), client_.timeout());
      if (client_.idle() && !was_idle_) {
        was_idle_ = true;
        conn_->release_idle_buffers();  // an idle pooled session keeps no TLS or output buffers
        delivery_.session_idle(hop_, this);
      }
      break;
    case smtp::ClientAction::kStartTls:
      // The handshake runs under the state's timeout (the EHLO one); a failure ends the session.
      delivery_.loop().timers().arm(*this, delivery_.loop().now(), client_.timeout());
      if (conn_->tls() != nullptr) break;  // already started (the session says kStartTls once)
      if (Status s = start_tls(); !s) act(client_.on_tls_failed(s.error().message()));
      break;
    case smtp::ClientAction::kSendMore:
      conn_->flush();  // on_output_drained() asks for the next chunk
      delivery_.loop().timers().arm(*this, delivery_.loop().now(), client_.timeout());
      break;
    case smtp::ClientAction::kClose:
      delivery_.loop().timers().cancel(*this);
      closed_ = true;
      if (was_idle_) {
        was_idle_ = false;
        delivery_.session_busy(hop_, this);
      }
      conn_->ignore_input();
      conn_->close_after_flush();
      break;
  }
}

void OutboundSession::on_data(std::string_view bytes) {
  if (closed_) return;
  act(client_.on_input(bytes, out_));
}

void OutboundSession::on_output_drained() {
  if (closed_ || client_.finished()) return;
  act(client_.on_output_drained(out_));
}

Status OutboundSession::start_tls() {
  const routing::Connector& c = *hop_.connector;
  const bool verify = c.tls == TlsPolicy::kVerify;
  if (verify && tls_name_.empty())
    return make_error("cannot tell which name to verify for {}: set tls_domain on connector '{}'", host_text_, c.name);
  auto ctx = client_context(verify ? c.tls_ca_file : std::string());
  if (!ctx) return make_error("TLS client context: {}", ctx.error().message());
  // One resumable session per host, policy and name: a session made without verification is
  // never resumed by a verifying connector.
  std::string key = fmt::format("{}|{}|{}", host_text_, tls_policy_name(c.tls), verify ? tls_name_ : "");
  tls::ClientParams params{tls_name_, verify, tls_name_, key};
  return conn_->start_tls(**ctx, &params);
}

void OutboundSession::on_tls_ready() {
  if (closed_) return;
  const tls::TlsSession* t = conn_->tls();
  if (log::enabled(log::Level::kDebug) || protocol_log_ != nullptr) {
    const std::string what = fmt::format("TLS {} {} ({} bits){}{}", t->version(), t->cipher(), t->cipher_bits(),
                                         hop_.connector->tls == TlsPolicy::kVerify ? ", certificate verified" : "",
                                         t->resumed() ? ", resumed" : "");
    log::debug("outbound {}: {}", host_text_, what);
    log_line('*', what);
  }
  delivery_.shared().tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (t->resumed()) delivery_.shared().tls_resumed.fetch_add(1, std::memory_order_relaxed);
  act(client_.on_tls_ready(out_));
}

void OutboundSession::on_tls_failed(tls::FailureKind kind, std::string_view text) {
  const routing::Connector& c = *hop_.connector;
  log::warn("outbound {} (connector {}, tls {}): {}", host_text_, c.name, tls_policy_name(c.tls), text);
  if (protocol_log_ != nullptr) log_line('*', fmt::format("TLS failed: {}", text));
  // Opportunistic TLS that breaks in the handshake (not a check: nothing is checked there) is
  // remembered, so the next sessions to this host use clear text instead of failing forever.
  if (c.tls == TlsPolicy::kOpportunistic && !client_.tls_active() && kind != tls::FailureKind::kNone)
    t_tls.broken[host_text_] = delivery_.loop().now() + kBrokenTlsMemory;
  if (closed_) return;
  act(client_.on_tls_failed(text));
}

void OutboundSession::on_peer_closed(int error) {
  if (was_idle_) {  // a closing session must not sit in the idle list where pump() offers work
    was_idle_ = false;
    delivery_.session_busy(hop_, this);
  }
  if (!closed_) {
    closed_ = true;
    client_.on_connection_lost(error ? std::strerror(-error) : "connection closed by the server");
  }
  delivery_.loop().timers().cancel(*this);
  conn_->abort();
}

void OutboundSession::fire() {
  if (closed_) return;
  act(client_.on_timeout(out_));
}

void OutboundSession::offer() {
  if (closed_ || !client_.idle()) return;
  if (was_idle_) {
    was_idle_ = false;
    delivery_.session_busy(hop_, this);
  }
  act(client_.offer(out_));
}

void OutboundSession::shutdown(bool now) {
  if (closed_) return;
  if (!conn_) return;  // still connecting: the connect completes or times out on its own
  act(client_.shutdown(out_, now));
}

const smtp::OutboundTransaction* OutboundSession::next_transaction() {
  if (opening_) {  // ready for its first transaction: no longer counted as opening
    opening_ = false;
    delivery_.session_opened(hop_);
  }
  // Off the idle list first, so nothing offers work to this session while it is taking some.
  if (was_idle_) {
    was_idle_ = false;
    delivery_.session_busy(hop_, this);
  }
  current_ = delivery_.take_ready(hop_);
  return current_ ? &current_->txn : nullptr;
}

void OutboundSession::on_recipient_result(const smtp::OutboundTransaction&, size_t rcpt_index,
                                          const smtp::DeliveryOutcome& outcome) {
  delivery_.on_recipient_result(*current_, rcpt_index, outcome, host_text_, client_.capabilities().dsn);
}

void OutboundSession::on_transaction_done(const smtp::OutboundTransaction&) {
  DeliveryWork* w = current_;
  current_ = nullptr;
  delivery_.on_transaction_done(*w);
}

void OutboundSession::on_session_result(const smtp::DeliveryOutcome& outcome) {
  if (protocol_log_ != nullptr && conn_) log_line('-', "closed: " + smtp::describe(outcome));  // connect failures: connect_failed
  delivery_.on_session_result(hop_, outcome, host_text_);
}

void OutboundSession::on_released() {
  conn_.reset();
  maybe_release();
}

void OutboundSession::maybe_release() {
  // Free only when the connect's two CQEs have arrived and the connection (if any) is released.
  if (released_ || !closed_ || connect_cqes_pending_ > 0 || conn_) return;
  released_ = true;
  delivery_.loop().timers().cancel(*this);
  if (opening_) {
    opening_ = false;
    delivery_.session_opened(hop_);
  }
  if (was_idle_) {
    was_idle_ = false;
    delivery_.session_busy(hop_, this);
  }
  OutboundSession* self = this;
  Delivery* d = &delivery_;
  NextHop* hop = &hop_;
  delivery_.loop().defer([d, hop, self] { d->session_released(*hop, self); });
}

}  // namespace ringmail::engine
