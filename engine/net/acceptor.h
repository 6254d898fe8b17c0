// Accepting connections on one listening socket with a multishot ACCEPT on the worker's ring:
// re-armed whenever the kernel ends it (EMFILE, errors), cancelled on stop, and reported to the
// owner only as "a connection from this peer" (TCP_NODELAY already set). What to do with the
// connection (limits, sessions) is the owner's business.
#pragma once

#include "common/net.h"
#include "engine/loop/loop.h"
#include "engine/loop/timer_wheel.h"

namespace ringmail::engine {

class Acceptor final : public Completion, private Timer {
 public:
  class Handler {
   public:
    // A new connection; the handler owns `fd` from now on.
    virtual void on_accepted(Acceptor& acceptor, int fd, const SocketAddress& peer) = 0;
    // After stop(): the last accept completion arrived; the listening socket may be closed.
    virtual void on_acceptor_stopped(Acceptor& acceptor) = 0;
   protected:
    ~Handler() = default;
  };

  Acceptor(Loop& loop, int listen_fd, Handler& handler, size_t index = 0)
      : loop_(loop), fd_(listen_fd), index_(index), handler_(handler) {}
  void start();               // arm the multishot accept
  void stop();                // cancel it; on_acceptor_stopped() follows (at once if not armed)
  bool armed() const { return armed_; }
  int fd() const { return fd_; }
  size_t index() const { return index_; }  // the owner's listener number (for logs)

 private:
  void on_complete(const io_uring_cqe& cqe) override;
  void fire() override { arm(); }  // re-arm after running out of descriptors
  void arm();

  Loop& loop_;
  int fd_;                    // listening socket (owned by the caller)
  size_t index_;              // see index()
  Handler& handler_;
  bool armed_ = false;        // the multishot accept may still deliver CQEs
  bool stopping_ = false;     // stop() was called
  bool stopped_reported_ = false;  // on_acceptor_stopped() delivered
};

}  // namespace ringmail::engine
