// One TCP connection on a worker's ring: a multishot receive into the loop's provided buffers,
// at most one send in flight (platform-notes §1.5), and an orderly teardown that cancels every
// operation and frees nothing until the last CQE has arrived. The owner (an inbound or outbound
// SMTP session, the sink) sees only transport events; it never sees a CQE or a buffer id.
//
// Optional TLS (STARTTLS, both roles): start_tls() switches the connection. Output already queued
// in out() at that moment goes out in clear (the server's "220 Ready to start TLS"); bytes received
// after the call are handshake ciphertext (the rest of the chunk being delivered when start_tls() is
// called is the owner's to discard: the CVE-2011-0411 defence). When the handshake completes,
// Handler::on_tls_ready() runs; from then on on_data() delivers plaintext and out()/flush() encrypt.
// A failed handshake calls Handler::on_tls_failed() once and input is ignored after it (the owner
// usually abort()s). close_after_flush() sends close_notify (keeps a client session resumable);
// abort() does not. The handshake timeout is the owner's protocol timer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "engine/loop/loop.h"
#include "engine/tls/tls_session.h"

namespace ringmail::engine {

class TcpConnection {
 public:
  // Transport events, delivered on the loop thread. Handlers may call any method of the connection
  // (send, close) but must not destroy it; on_released() is the only place the owner may free it.
  class Handler {
   public:
    virtual void on_data(std::string_view bytes) = 0;  // bytes received (valid only during the call)
    virtual void on_peer_closed(int error) = 0;        // EOF (error 0) or a receive/send error (-errno)
    virtual void on_output_drained() {}                // everything queued has been sent
    virtual void on_tls_ready() {}                     // TLS handshake done: out() is now encrypted
    // The TLS handshake failed (or TLS broke later): `kind` says which check, `text` the whole reason.
    virtual void on_tls_failed(tls::FailureKind kind, std::string_view text) { (void)kind, (void)text; }
    virtual void on_released() = 0;                    // closed and no operation in flight: free now
   protected:
    ~Handler() = default;
  };

  TcpConnection(Loop& loop, int fd, Handler& handler);
  ~TcpConnection();
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  // Arms the multishot receive. Call once.
  void start();
  // Output buffer: append, then flush() to send (one send in flight; the rest waits).
  std::string& out() { return out_; }
  void flush();
  // Sends what is queued, then closes. Idempotent.
  void close_after_flush();
  // Closes now, dropping unsent output. Idempotent.
  void abort();
  bool closing() const { return state_ != State::kOpen; }

  // Starts TLS in the context's role (client: `client` gives SNI, verification and the resumption
  // key; server: pass null). See the file comment for the ordering rules. Fails (nothing changed)
  // when TLS is already on, the connection is closing, or OpenSSL refuses the parameters.
  Status start_tls(tls::TlsContext& context, const tls::ClientParams* client);
  // The TLS session (null before start_tls): version(), cipher(), peer facts, resumed().
  const tls::TlsSession* tls() const { return tls_.get(); }
  bool tls_active() const { return tls_ != nullptr && tls_->established(); }
  // The owner went idle: if no byte moves for kIdleRelease, give the buffers back to the allocator
  // (OpenSSL's record buffers, the TLS session's strings and ours). Call at every idle point;
  // nothing is lost (only empty buffers are released). Deferred because a busy pipelining client
  // goes "idle" between every two messages, and freeing and re-allocating the TLS buffers each time
  // cost more CPU than the encryption did.
  void release_idle_buffers();
  static constexpr std::chrono::milliseconds kIdleRelease{500};
  unsigned idle_releases() const { return idle_releases_; }  // times the buffers were released
  int fd() const { return fd_; }
  size_t queued_bytes() const { return out_.size() + wire_.size() + (sending_.size() - send_offset_); }
  // Stops delivering on_data (input is still drained from the socket but discarded) — used after
  // a protocol decision to close, so a flooding peer cannot make us buffer.
  void ignore_input() { ignore_input_ = true; }

 private:
  enum class State { kOpen, kDraining, kClosing, kClosed };
  // One completion object per kind of operation, calling the member function that handles it.
  template <void (TcpConnection::*Handle)(const io_uring_cqe&)>
  struct Op final : Completion {
    TcpConnection* conn;
    explicit Op(TcpConnection* c) : conn(c) {}
    void on_complete(const io_uring_cqe& cqe) override { (conn->*Handle)(cqe); }
  };

  void arm_recv();
  void on_recv(const io_uring_cqe& cqe);
  void submit_send();
  void on_send(const io_uring_cqe& cqe);
  void begin_close();
  void on_close_cqe(const io_uring_cqe& cqe);
  void op_done(const io_uring_cqe&);
  void maybe_release();
  void on_tls_input(std::string_view ciphertext, bool eof);
  void report_peer_closed(int error);
  void release_buffers_now();
  void on_idle_release();  // kIdleRelease after the owner's last release_idle_buffers() call

  Loop& loop_;
  int fd_;                          // the socket; closed via IORING_OP_CLOSE at the end
  Handler& handler_;
  State state_ = State::kOpen;      // see the enum
  bool recv_armed_ = false;         // a multishot receive may still produce CQEs
  bool send_in_flight_ = false;     // one send at a time
  bool released_ = false;           // on_released() has been scheduled
  bool ignore_input_ = false;       // discard received bytes
  bool peer_closed_reported_ = false;  // on_peer_closed() already delivered
  unsigned ops_in_flight_ = 0;      // cancel/close operations not yet completed
  std::string out_;                 // queued output (plaintext under TLS), not yet handed to the kernel
  std::string wire_;                // TLS only: bytes for the wire (clear bytes queued before start_tls, then ciphertext)
  std::string plain_;               // TLS only: decrypted input handed to on_data; reused
  std::unique_ptr<tls::TlsSession> tls_;  // after start_tls()
  bool tls_ready_reported_ = false;       // on_tls_ready() delivered
  bool tls_failed_reported_ = false;      // on_tls_failed() delivered
  bool delivering_plain_ = false;         // on_data() is reading plain_ right now
  std::string sending_;             // the buffer of the send in flight
  size_t send_offset_ = 0;          // bytes of sending_ already sent (short sends)
  Op<&TcpConnection::on_recv> recv_op_{this};
  Op<&TcpConnection::on_send> send_op_{this};
  Op<&TcpConnection::on_close_cqe> close_op_{this};
  Op<&TcpConnection::op_done> cancel_op_{this};  // cancellations: only counted
  MemberTimer<TcpConnection, &TcpConnection::on_idle_release> idle_release_{this};  // armed by release_idle_buffers()
  MonoTime idle_since_{};           // when the owner last said it is idle
  MonoTime last_activity_{};        // the loop time of the last byte received or queued for sending
  unsigned idle_releases_ = 0;      // release_buffers_now() calls (tests, diagnostics)
};

}  // namespace ringmail::engine
