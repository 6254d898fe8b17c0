// The epoll loop of ringmail-inject (see load_loop.h).
//
// Each slot is one connection: Idle (waiting for its reconnect time), Connecting, Connected or
// Done. Sockets are level-triggered for reads; EPOLLOUT is armed only while output is pending.
// A slot whose connections keep failing backs off (50 ms doubling to 2 s) and gives up after
// --max-retries consecutive failures, so a dead target never makes the loop spin. Timers are
// checked every few milliseconds by a scan of the slots: reply timeouts are seconds long.
#include "tools/inject/load_loop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "common/log.h"
#include "engine/tls/tls_session.h"

namespace ringmail::inject {
namespace {

constexpr int kMaxEvents = 256;                               // per epoll_wait
constexpr size_t kReadBufferBytes = 64 * 1024;                // one read's worth
constexpr auto kTimerScanInterval = std::chrono::milliseconds(5);
constexpr auto kBackoffFirst = std::chrono::milliseconds(50);
constexpr auto kBackoffMax = std::chrono::milliseconds(2000);

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

int64_t to_ns(MonoTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

enum class SendResult { kAll, kBlocked, kBroken };

// Sends as much of `data` as the non-blocking socket takes; *sent counts the bytes it took.
SendResult send_some(int fd, std::string_view data, size_t* sent) {
  *sent = 0;
  while (*sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + *sent, data.size() - *sent, MSG_NOSIGNAL);
    if (n > 0) {
      *sent += size_t(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SendResult::kBlocked;
    if (n < 0 && errno == EINTR) continue;
    return SendResult::kBroken;
  }
  return SendResult::kAll;
}

}  // namespace

struct LoadLoop::Slot {
  enum class State { kIdle, kConnecting, kConnected, kDone };
  State state = State::kIdle;        // see the file comment
  int fd = -1;                       // socket while Connecting/Connected
  bool want_write = false;           // EPOLLOUT armed
  int consecutive_failures = 0;      // failed connections since the last accepted message
  MonoTime retry_at;                 // Idle: when to connect
  MonoTime deadline;                 // Connecting/Connected: connect or reply timeout
  std::unique_ptr<InjectSession> session;  // reused across this slot's connections
  std::unique_ptr<tls::TlsSession> tls;    // after STARTTLS on the current connection
  bool tls_ready = false;            // the handshake completed (counted, EHLO sent again)
  std::string wire;                  // TLS: ciphertext not yet sent
  size_t wire_sent = 0;              // prefix of wire already sent
};

LoadLoop::LoadLoop(SharedRun& run, int connections, uint64_t seed)
    : run_(run), builder_(run.options->message, seed, long(::getpid())), read_buffer_(kReadBufferBytes) {
  for (int i = 0; i < connections; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->session = std::make_unique<InjectSession>(run.options->session, builder_, *this);
    slots_.push_back(std::move(slot));
  }
}

LoadLoop::~LoadLoop() {
  for (auto& s : slots_)
    if (s->fd >= 0) ::close(s->fd);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool LoadLoop::messages_remain() const {
  return !run_.interrupted.load(std::memory_order_relaxed) && now_ < run_.stop_starting &&
         run_.next_message.load(std::memory_order_relaxed) < run_.options->count;
}

std::optional<uint64_t> LoadLoop::claim_message() {
  if (run_.interrupted.load(std::memory_order_relaxed)) return std::nullopt;
  if (now_ >= run_.stop_starting) {
    run_.time_capped.store(true, std::memory_order_relaxed);
    return std::nullopt;
  }
  uint64_t n = run_.next_message.fetch_add(1, std::memory_order_relaxed);
  if (n >= run_.options->count) return std::nullopt;
  return n;
}

std::string_view LoadLoop::date_header() {
  std::time_t t = std::time(nullptr);
  if (t != date_second_) {
    date_ = rfc5322_date(t);
    date_second_ = t;
  }
  return date_;
}

void LoadLoop::message_done(const MessageOutcome& outcome) {
  stats_.record(outcome);
  if (!run_.log->write(outcome)) log::warn("inject: cannot write to the --log file: {}", std::strerror(errno));
  run_.progress.attempted.fetch_add(1, std::memory_order_relaxed);
  if (outcome.code >= 200 && outcome.code < 300) run_.progress.accepted.fetch_add(1, std::memory_order_relaxed);
}

Status LoadLoop::run() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return make_error("epoll_create1: {}", std::strerror(errno));
  if (run_.options->session.starttls) {
    auto ctx = tls::TlsContext::client({});
    if (!ctx) return ctx.error();
    tls_context_ = std::move(*ctx);
    tls_cache_key_ = run_.options->target.to_string();
  }
  now_ = MonoClock::now();
  for (auto& s : slots_) s->retry_at = now_;
  MonoTime next_scan = now_;
  epoll_event events[kMaxEvents];
  for (;;) {
    if (now_ >= next_scan) {
      check_timers();
      next_scan = now_ + kTimerScanInterval;
      bool any_active = std::any_of(slots_.begin(), slots_.end(),
                                    [](const auto& s) { return s->state != Slot::State::kDone; });
      if (!any_active) return {};
    }
    int wait_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(next_scan - now_).count()) + 1;
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, std::max(wait_ms, 1));
    if (n < 0 && errno != EINTR) return make_error("epoll_wait: {}", std::strerror(errno));
    now_ = MonoClock::now();
    for (int i = 0; i < n; ++i) {
      Slot& slot = *static_cast<Slot*>(events[i].data.ptr);
      if (slot.fd < 0) continue;  // defensive: each fd appears once per batch, and only its own
                                  // event or check_timers() closes a slot
      on_event(slot, events[i].events);
    }
  }
}

void LoadLoop::check_timers() {
  const bool hard_stop = now_ >= run_.hard_stop;
  if (hard_stop) run_.time_capped.store(true, std::memory_order_relaxed);
  for (auto& sp : slots_) {
    Slot& slot = *sp;
    switch (slot.state) {
      case Slot::State::kIdle:
        if (!messages_remain()) {
          if (now_ >= run_.stop_starting) run_.time_capped.store(true, std::memory_order_relaxed);
          slot.state = Slot::State::kDone;
        } else if (now_ >= slot.retry_at) {
          start_connect(slot);
        }
        break;
      case Slot::State::kConnecting:
      case Slot::State::kConnected:
        if (hard_stop) {
          end_session(slot, slot.session->on_timeout(), false);
          slot.state = Slot::State::kDone;
        } else if (now_ >= slot.deadline) {
          if (slot.state == Slot::State::kConnected) end_session(slot, slot.session->on_timeout(), true);
          else end_session(slot, SessionStatus::kFailed, true, "connect timed out");
        }
        break;
      case Slot::State::kDone:
        break;
    }
  }
}

void LoadLoop::start_connect(Slot& slot) {
  const InjectOptions& o = *run_.options;
  int fd = ::socket(o.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    end_session(slot, SessionStatus::kFailed, true, fmt::format("socket: {}", std::strerror(errno)));
    return;
  }
  slot.fd = fd;
  slot.state = Slot::State::kConnecting;
  slot.deadline = now_ + seconds(o.timeout_s);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o.source) {
    // Let connect() pick the port per destination, so many connections from one source IP do
    // not run out of ephemeral ports at bind() time.
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd, o.source->sa(), o.source->len()) != 0) {
      end_session(slot, SessionStatus::kFailed, true,
                  fmt::format("bind {}: {}", o.source->to_string(), std::strerror(errno)));
      return;
    }
  }
  if (::connect(fd, o.target.sa(), o.target.len()) != 0 && errno != EINPROGRESS) {
    end_session(slot, SessionStatus::kFailed, true,
                fmt::format("connect {}: {}", o.target.to_string(), std::strerror(errno)));
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.ptr = &slot;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    end_session(slot, SessionStatus::kFailed, true, fmt::format("epoll_ctl: {}", std::strerror(errno)));
    return;
  }
  slot.want_write = true;
}

void LoadLoop::on_event(Slot& slot, uint32_t events) {
  if (slot.state == Slot::State::kConnecting) {
    on_connect_result(slot);
    return;
  }
  slot.deadline = now_ + seconds(run_.options->timeout_s);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!read_and_handle(slot)) return;
  }
  if (!flush(slot)) {
    std::string why = fmt::format("send: {}", std::strerror(errno));
    end_session(slot, slot.session->on_disconnected(), true, why);
  }
}

void LoadLoop::on_connect_result(Slot& slot) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    end_session(slot, SessionStatus::kFailed, true,
                fmt::format("connect {}: {}", run_.options->target.to_string(), std::strerror(err)));
    return;
  }
  ++stats_.connections;
  slot.state = Slot::State::kConnected;
  slot.deadline = now_ + seconds(run_.options->timeout_s);
  slot.session->on_connected();
  set_want_write(slot, false);
}

// Reads until the socket is drained; returns false if the session ended.
bool LoadLoop::read_and_handle(Slot& slot) {
  for (;;) {
    ssize_t n = ::recv(slot.fd, read_buffer_.data(), read_buffer_.size(), 0);
    if (n > 0) {
      std::string why;
      SessionStatus s = deliver(slot, std::string_view(read_buffer_.data(), size_t(n)), &why);
      if (s != SessionStatus::kRunning) {
        // Send what the last reply produced (QUIT's reply needs nothing; a failure sends nothing).
        end_session(slot, s, s == SessionStatus::kFailed, why);
        return false;
      }
      if (size_t(n) < read_buffer_.size()) return true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    std::string why = n < 0 ? fmt::format("recv: {}", std::strerror(errno)) : std::string();
    SessionStatus s = slot.session->on_disconnected();
    end_session(slot, s, s == SessionStatus::kFailed, why);
    return false;
  }
}

SessionStatus LoadLoop::deliver(Slot& slot, std::string_view bytes, std::string* why) {
  if (!slot.tls) {
    SessionStatus s = slot.session->on_bytes(bytes, to_ns(now_));
    return s == SessionStatus::kStartTls ? begin_tls(slot, why) : s;
  }
  plain_.clear();
  tls::TlsState st = slot.tls->read_input(bytes, plain_);
  if (st == tls::TlsState::kFailed) {
    if (!slot.tls_ready) ++stats_.tls_failures;
    *why = slot.tls->failure_text();
    slot.session->on_disconnected();  // fails the message in flight, if any
    return SessionStatus::kFailed;
  }
  if (!slot.tls_ready && (st == tls::TlsState::kEstablished || st == tls::TlsState::kClosed)) {
    slot.tls_ready = true;
    ++stats_.tls_handshakes;
    if (slot.tls->resumed()) ++stats_.tls_resumed;
    slot.session->on_tls_established();
  }
  if (!plain_.empty()) {
    SessionStatus s = slot.session->on_bytes(plain_, to_ns(now_));
    if (s == SessionStatus::kStartTls) {  // cannot happen: the session asks only once
      *why = "STARTTLS inside TLS";
      return SessionStatus::kFailed;
    }
    if (s != SessionStatus::kRunning) return s;
  }
  if (st == tls::TlsState::kClosed) return slot.session->on_disconnected();
  return SessionStatus::kRunning;
}

SessionStatus LoadLoop::begin_tls(Slot& slot, std::string* why) {
  if (!tls_context_) {  // the session asks only under --starttls, which made the context
    *why = "STARTTLS without a TLS context";
    return SessionStatus::kFailed;
  }
  slot.tls = std::make_unique<tls::TlsSession>(*tls_context_);
  slot.tls_ready = false;
  tls::ClientParams params;  // no SNI (an address), no verification: a benchmark peer
  params.cache_key = tls_cache_key_;
  if (Status st = slot.tls->start_client(params); !st) {
    ++stats_.tls_failures;
    *why = st.error().message();
    return SessionStatus::kFailed;
  }
  return SessionStatus::kRunning;  // the ClientHello waits in the session's output; flush() sends it
}

// Sends pending output (through TLS once it is on); returns false if the connection is broken.
bool LoadLoop::flush(Slot& slot) {
  if (slot.tls) {
    std::string_view out = slot.session->output();
    if (!out.empty() && slot.tls->established()) {
      if (!slot.tls->write(out)) {
        errno = EPROTO;
        return false;
      }
      slot.session->consume_output(out.size());
    }
    slot.tls->take_output(slot.wire);
    size_t sent = 0;
    SendResult r = send_some(slot.fd, std::string_view(slot.wire).substr(slot.wire_sent), &sent);
    slot.wire_sent += sent;
    if (r == SendResult::kBroken) return false;
    if (r == SendResult::kBlocked) {
      set_want_write(slot, true);
      return true;
    }
    slot.wire.clear();
    slot.wire_sent = 0;
    set_want_write(slot, false);
    return true;
  }
  size_t sent = 0;
  SendResult r = send_some(slot.fd, slot.session->output(), &sent);
  slot.session->consume_output(sent);
  if (r == SendResult::kBroken) return false;
  if (r == SendResult::kBlocked) {
    set_want_write(slot, true);
    return true;
  }
  set_want_write(slot, false);
  return true;
}

void LoadLoop::set_want_write(Slot& slot, bool want) {
  if (slot.want_write == want) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &slot;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, slot.fd, &ev) == 0) slot.want_write = want;
}

void LoadLoop::end_session(Slot& slot, SessionStatus status, bool count_as_error, std::string_view reason) {
  // Only a connection that got messages through proves the target works.
  const bool progressed = slot.state == Slot::State::kConnected && slot.session->accepted_on_connection() > 0;
  if (slot.tls) {
    // A clean end sends close_notify (best effort) so the cached session stays resumable.
    if (status != SessionStatus::kFailed && slot.fd >= 0) {
      slot.tls->close();
      std::string bye;
      slot.tls->take_output(bye);
      if (!bye.empty()) (void)::send(slot.fd, bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    slot.tls.reset();
    slot.wire.clear();
    slot.wire_sent = 0;
  }
  if (slot.fd >= 0) {
    ::close(slot.fd);  // also removes it from the epoll set
    slot.fd = -1;
  }
  slot.want_write = false;
  slot.state = Slot::State::kIdle;
  slot.retry_at = now_;
  if (status != SessionStatus::kFailed) {
    slot.consecutive_failures = 0;
    if (messages_remain()) start_connect(slot);  // reconnect at once for the next batch
    return;
  }
  if (count_as_error) {
    ++stats_.connection_errors;
    stats_.last_connection_error.assign(reason.empty() ? std::string_view(slot.session->failure_reason()) : reason);
    log::debug("inject: connection failed: {}", stats_.last_connection_error);
  }
  slot.consecutive_failures = progressed ? 1 : slot.consecutive_failures + 1;
  if (slot.consecutive_failures > run_.options->max_retries) {
    if (stats_.slots_given_up++ == 0)
      log::warn("inject: connections keep failing ({}); giving up slots after {} consecutive failures",
                stats_.last_connection_error, slot.consecutive_failures);
    slot.state = Slot::State::kDone;
    return;
  }
  auto backoff = kBackoffFirst * (1 << std::min(slot.consecutive_failures - 1, 10));
  slot.retry_at = now_ + std::min<std::chrono::nanoseconds>(backoff, kBackoffMax);
}

}  // namespace ringmail::inject
