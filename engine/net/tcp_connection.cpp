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
    if (cqe.res > 0 && state_ == State::kOpen && !ignore_input_)
      handler_.on_data(std::string_view(loop_.buffer(bid), static_cast<size_t>(cqe.res)));
    loop_.recycle_buffer(bid);  // returned right away: buffers are held only during on_data
  }
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybe_release();
    return;
  }
  if (cqe.res == 0 || (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED)) {
    // EOF or a hard error: report once, let the owner decide (it usually closes).
    if (!peer_closed_reported_) {
      peer_closed_reported_ = true;
      handler_.on_peer_closed(cqe.res < 0 ? cqe.res : 0);
    }
    maybe_release();
    return;
  }
  if (cqe.res == -ENOBUFS) loop_.stats().enobufs++;
  // -ENOBUFS or a multishot that simply ended: re-arm (buffers were just recycled).
  if (!more && (state_ == State::kOpen || state_ == State::kDraining)) arm_recv();
}

void TcpConnection::flush() {
  if (send_in_flight_ || out_.empty() || state_ == State::kClosing || state_ == State::kClosed) return;
  sending_.swap(out_);
  out_.clear();
  send_offset_ = 0;
  submit_send();
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
    if (!peer_closed_reported_) {
      peer_closed_reported_ = true;
      handler_.on_peer_closed(cqe.res);
    }
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
  if (!out_.empty()) {
    flush();
    return;
  }
  if (state_ == State::kDraining) {
    begin_close();
    return;
  }
  handler_.on_output_drained();
}

void TcpConnection::close_after_flush() {
  if (state_ != State::kOpen) return;
  state_ = State::kDraining;
  if (!send_in_flight_ && out_.empty()) begin_close();
  else flush();
}

void TcpConnection::abort() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  out_.clear();
  begin_close();
}

void TcpConnection::begin_close() {
  state_ = State::kClosing;
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
