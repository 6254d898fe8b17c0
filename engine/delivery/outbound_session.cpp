// OutboundSession implementation (see outbound_session.h).
#include "engine/delivery/outbound_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ringmail::engine {

OutboundSession::OutboundSession(Delivery& delivery, NextHop& hop, const SocketAddress& host)
    : delivery_(delivery), hop_(hop), host_(host), host_text_(host.to_string()), client_(hop.client, *this) {
  connect_op_.s = this;
  timeout_op_.s = this;
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
  conn_ = std::make_unique<TcpConnection>(delivery_.loop(), fd_, *this);
  fd_ = -1;  // owned by the connection now
  conn_->start();
  act(client_.on_connected(out_));
}

void OutboundSession::connect_failed(std::string why) {
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
        delivery_.session_idle(hop_, this);
      }
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

void OutboundSession::shutdown() {
  if (closed_) return;
  if (!conn_) return;  // still connecting: the connect completes or times out on its own
  act(client_.shutdown(out_));
}

const smtp::OutboundTransaction* OutboundSession::next_transaction() {
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
  delivery_.on_recipient_result(*current_, rcpt_index, outcome, host_text_);
}

void OutboundSession::on_transaction_done(const smtp::OutboundTransaction&) {
  DeliveryWork* w = current_;
  current_ = nullptr;
  delivery_.on_transaction_done(*w);
}

void OutboundSession::on_session_result(const smtp::DeliveryOutcome& outcome) {
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
