// TcpConnection implementation. Teardown order (platform-notes §1.3): cancel the multishot recv,
// wait for its final CQE (no F_MORE) and for the send in flight, then IORING_OP_CLOSE, then tell
// the owner it may free us — from Loop::defer, so never inside one of our own handlers.
#include "engine/net/tcp_connection.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringmail::engine {

TcpConnection::TcpConnection(Loop& loop, int fd, Handler& handler) : loop_(loop), fd_(fd), handler_(handler) {}

TcpConnection::~TcpConnection() {
  // Normal path: the fd was closed by IORING_OP_CLOSE. If the owner frees us early (start-up
  // failure before start()), close synchronously.
  if (fd_ >= 0 && state_ != State::kClosed) ::close(fd_);
}

void TcpConnection::start() { arm_recv(); }

void TcpConnection::arm_recv() {
  io_uring_sqe* s = loop_.sqe_for(&recv_op_);
  io_uring_prep_recv_multishot(s, fd_, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = Loop::kBufferGroup;
  recv_armed_ = true;
}

void TcpConnection::on_recv(const io_uring_cqe& cqe) {
  bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) recv_armed_ = false;
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe.res > 0 && state_ == State::kOpen && !ignore_input_) {
      last_activity_ = loop_.now();
      std::string_view bytes(loop_.buffer(bid), static_cast<size_t>(cqe.res));
      if (tls_) on_tls_input(bytes, false);
      else handler_.on_data(bytes);
    }
    loop_.recycle_buffer(bid);  // returned right away: buffers are held only during on_data
  }
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybe_release();
    return;
  }
  if (cqe.res == 0 || (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED)) {
    // EOF or a hard error: report once, let the owner decide (it usually closes). Under TLS the
    // EOF goes through the session first: buffered records are still delivered, and an EOF in the
    // middle of the handshake is a TLS failure the owner wants to know about.
    if (cqe.res == 0 && tls_ && state_ == State::kOpen && !ignore_input_) on_tls_input({}, true);
    report_peer_closed(cqe.res < 0 ? cqe.res : 0);
    maybe_release();
    return;
  }
  if (cqe.res == -ENOBUFS) loop_.stats().enobufs++;
  // -ENOBUFS or a multishot that simply ended: re-arm (buffers were just recycled).
  if (!more && (state_ == State::kOpen || state_ == State::kDraining)) arm_recv();
}

void TcpConnection::report_peer_closed(int error) {
  if (peer_closed_reported_) return;
  peer_closed_reported_ = true;
  handler_.on_peer_closed(error);
}

void TcpConnection::flush() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  std::string* pending = &out_;
  if (tls_) {
    // Plaintext is encrypted only once the handshake is done; until then it waits in out_.
    if (tls_->established() && !out_.empty()) {
      if (!tls_->write(out_).ok()) {
        out_.clear();
        if (!tls_failed_reported_) {
          tls_failed_reported_ = true;
          handler_.on_tls_failed(tls_->failure(), tls_->failure_text());
        }
      }
      out_.clear();
    }
    tls_->take_output(wire_);
    pending = &wire_;
  }
  if (send_in_flight_ || pending->empty()) return;
  last_activity_ = loop_.now();
  sending_.swap(*pending);
  pending->clear();
  send_offset_ = 0;
  submit_send();
}

Status TcpConnection::start_tls(tls::TlsContext& context, const tls::ClientParams* client) {
  if (tls_) return make_error("TLS is already on for this connection");
  if (state_ != State::kOpen) return make_error("the connection is closing");
  if ((client != nullptr) != (context.role() == tls::Role::kClient))
    return make_error("start_tls: the parameters do not fit the context's role");
  auto session = std::make_unique<tls::TlsSession>(context);
  // Output queued so far is the last clear text (the server's 220); it goes out before any TLS record.
  wire_.swap(out_);
  out_.clear();
  Status started = client ? session->start_client(*client) : session->start_server();
  if (!started) {
    out_.swap(wire_);
    return started;
  }
  tls_ = std::move(session);
  tls_ready_reported_ = tls_failed_reported_ = false;
  flush();  // the clear bytes, then (client) the ClientHello
  return {};
}

void TcpConnection::on_tls_input(std::string_view ciphertext, bool eof) {
  if (tls_failed_reported_) return;
  plain_.clear();
  tls::TlsState st;
  if (eof) {
    tls_->feed_eof();
    st = tls_->read(plain_);
  } else {
    st = tls_->read_input(ciphertext, plain_);  // read in place from the ring's buffer
  }
  flush();  // handshake messages, alerts, or nothing
  if (st == tls::TlsState::kFailed) {
    tls_failed_reported_ = true;
    ignore_input_ = true;
    handler_.on_tls_failed(tls_->failure(), tls_->failure_text());
    return;
  }
  if (!tls_ready_reported_ && (st == tls::TlsState::kEstablished || st == tls::TlsState::kClosed)) {
    tls_ready_reported_ = true;
    handler_.on_tls_ready();
    if (state_ != State::kOpen) return;
  }
  if (!plain_.empty() && !ignore_input_ && state_ == State::kOpen) {
    delivering_plain_ = true;  // plain_ is the handler's view until it returns
    handler_.on_data(plain_);
    delivering_plain_ = false;
  }
  if (st == tls::TlsState::kClosed && state_ == State::kOpen) report_peer_closed(0);  // close_notify
}

void TcpConnection::release_idle_buffers() {
  if (state_ != State::kOpen) return;
  idle_since_ = loop_.now();
  loop_.timers().arm(idle_release_, idle_since_, kIdleRelease);
}

void TcpConnection::on_idle_release() {
  // Traffic after the owner went idle: it is busy again and will call release_idle_buffers() at
  // its next idle point.
  if (state_ != State::kOpen || last_activity_ > idle_since_) return;
  release_buffers_now();
}

void TcpConnection::release_buffers_now() {
  ++idle_releases_;
  if (tls_) tls_->release_buffers();
  if (out_.empty()) std::string().swap(out_);
  if (wire_.empty()) std::string().swap(wire_);
  if (!send_in_flight_ && sending_.empty()) std::string().swap(sending_);
  if (!delivering_plain_) std::string().swap(plain_);
}

void TcpConnection::submit_send() {
  io_uring_sqe* s = loop_.sqe_for(&send_op_);
  io_uring_prep_send(s, fd_, sending_.data() + send_offset_, sending_.size() - send_offset_, MSG_NOSIGNAL);
  send_in_flight_ = true;
}

void TcpConnection::on_send(const io_uring_cqe& cqe) {
  send_in_flight_ = false;
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybe_release();
    return;
  }
  if (cqe.res < 0) {
    report_peer_closed(cqe.res);
    abort();
    return;
  }
  send_offset_ += static_cast<size_t>(cqe.res);
  if (send_offset_ < sending_.size()) {  // short send: resend the rest, order preserved
    submit_send();
    return;
  }
  sending_.clear();
  send_offset_ = 0;
  if (!out_.empty() || !wire_.empty()) {
    flush();
    if (send_in_flight_) return;
  }
  if (state_ == State::kDraining) {
    begin_close();
    return;
  }
  handler_.on_output_drained();
}

void TcpConnection::close_after_flush() {
  if (state_ != State::kOpen) return;
  if (tls_) {
    flush();       // pending plaintext first
    tls_->close(); // then close_notify: keeps a client session resumable (platform-notes §2.2)
    flush();
  }
  state_ = State::kDraining;
  flush();
  // Nothing could be sent (all sent, or plaintext stuck before a handshake that never finished).
  if (!send_in_flight_) begin_close();
}

void TcpConnection::abort() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  out_.clear();
  begin_close();
}

void TcpConnection::begin_close() {
  state_ = State::kClosing;
  loop_.timers().cancel(idle_release_);
  if (recv_armed_) {
    io_uring_sqe* s = loop_.sqe_for(&cancel_op_);
    io_uring_prep_cancel(s, &recv_op_, 0);
    ++ops_in_flight_;
  }
  if (send_in_flight_) {  // a peer that stopped reading must not keep us alive
    io_uring_sqe* s = loop_.sqe_for(&cancel_op_);
    io_uring_prep_cancel(s, &send_op_, 0);
    ++ops_in_flight_;
  }
  maybe_release();
}

void TcpConnection::op_done(const io_uring_cqe&) {
  --ops_in_flight_;
  maybe_release();
}

void TcpConnection::maybe_release() {
  if (state_ == State::kClosing && !recv_armed_ && !send_in_flight_ && ops_in_flight_ == 0) {
    state_ = State::kClosed;
    io_uring_sqe* s = loop_.sqe_for(&close_op_);
    io_uring_prep_close(s, fd_);
    ++ops_in_flight_;
    return;
  }
  if (state_ == State::kClosed && ops_in_flight_ == 0 && !released_) {
    released_ = true;
    fd_ = -1;
    Handler* h = &handler_;
    loop_.defer([h] { h->on_released(); });
  }
}

void TcpConnection::on_close_cqe(const io_uring_cqe&) {
  --ops_in_flight_;
  maybe_release();
}

}  // namespace ringmail::engine
