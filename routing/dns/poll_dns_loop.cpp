// poll(2) driver for MxResolver (see poll_dns_loop.h).
#include "routing/dns/poll_dns_loop.h"

#include <poll.h>

#include <algorithm>

#include "routing/dns/mx_resolver.h"

namespace ringmail::routing::dns {

void PollDnsLoop::watch(int fd, bool readable, bool writable) {
  for (Watched& w : fds_) {
    if (w.fd == fd) {
      w.readable = readable;
      w.writable = writable;
      return;
    }
  }
  fds_.push_back({fd, readable, writable});
}

void PollDnsLoop::unwatch(int fd) {
  fds_.erase(std::remove_if(fds_.begin(), fds_.end(), [fd](const Watched& w) { return w.fd == fd; }), fds_.end());
}

void PollDnsLoop::set_timer(std::chrono::nanoseconds after) { timer_ = MonoClock::now() + after; }

bool PollDnsLoop::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  using namespace std::chrono;
  MonoTime give_up = MonoClock::now() + limit;
  std::vector<pollfd> pfds;
  while (!done()) {
    MonoTime now = MonoClock::now();
    if (now >= give_up) return false;
    if (timer_ && *timer_ <= now) {
      timer_.reset();
      resolver_->on_timer();
      continue;
    }
    MonoTime wake = timer_ ? std::min(*timer_, give_up) : give_up;
    int wait_ms = static_cast<int>(duration_cast<milliseconds>(wake - now).count()) + 1;
    pfds.clear();
    for (const Watched& w : fds_)
      pfds.push_back({w.fd, static_cast<short>((w.readable ? POLLIN : 0) | (w.writable ? POLLOUT : 0)), 0});
    int n = ::poll(pfds.data(), pfds.size(), wait_ms);
    if (n <= 0) continue;  // timeout (the timer check above runs it) or EINTR
    for (const pollfd& p : pfds) {
      if (p.revents == 0) continue;
      bool readable = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      bool writable = (p.revents & POLLOUT) != 0;
      resolver_->on_ready(p.fd, readable, writable);  // may change fds_; pfds is a copy
    }
  }
  return true;
}

}  // namespace ringmail::routing::dns
