// Multishot accept (see acceptor.h).
#include "engine/net/acceptor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ringmail::engine {

void Acceptor::start() {
  if (!armed_ && !stopping_) arm();
}

void Acceptor::arm() {
  if (stopping_) return;
  io_uring_sqe* s = loop_.sqe_for(this);
  io_uring_prep_multishot_accept(s, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  armed_ = true;
}

void Acceptor::stop() {
  if (stopping_) return;
  stopping_ = true;
  loop_.timers().cancel(*this);
  if (armed_) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel(s, this, 0);
    io_uring_sqe_set_data(s, nullptr);  // the cancel's own CQE needs no handler
    return;  // the accept's final CQE reports the stop
  }
  stopped_reported_ = true;
  handler_.on_acceptor_stopped(*this);
}

void Acceptor::on_complete(const io_uring_cqe& cqe) {
  if (!(cqe.flags & IORING_CQE_F_MORE)) armed_ = false;
  if (cqe.res >= 0) {
    int fd = cqe.res;
    if (stopping_) {
      ::close(fd);
    } else {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // replies are batched already
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      SocketAddress peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      handler_.on_accepted(*this, fd, peer);
    }
  } else if (cqe.res == -EMFILE || cqe.res == -ENFILE) {
    // Out of descriptors: the multishot ends; the client waits in the backlog while we pause
    // (re-arming at once would spin on the same error).
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) log::warn("accept: {} (raise the open-files limit)", std::strerror(-cqe.res));
    if (!armed_ && !stopping_) {
      loop_.timers().arm(*this, loop_.now(), std::chrono::milliseconds(100));
      return;
    }
  } else if (cqe.res != -ECANCELED && !stopping_) {
    log::warn("accept failed: {}", std::strerror(-cqe.res));
  }
  if (armed_) return;
  if (!stopping_) {
    arm();
  } else if (!stopped_reported_) {
    stopped_reported_ = true;
    handler_.on_acceptor_stopped(*this);
  }
}

}  // namespace ringmail::engine
