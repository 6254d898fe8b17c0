// c-ares on the worker's ring (see resolver.h).
#include "engine/net/resolver.h"

#include <netdb.h>
#include <poll.h>

#include <cstring>

#include "common/log.h"

namespace ringmail::engine {
namespace {
struct Pending {
  Resolver::Callback done;
  uint16_t port;
  size_t* in_flight;
  Loop* loop;
};
}  // namespace

Result<std::unique_ptr<Resolver>> Resolver::create(Loop& loop, const routing::dns::DnsSettings& settings) {
  std::unique_ptr<Resolver> r(new Resolver(loop));
  routing::dns::DnsIoDriver& io = *r;  // private base: converted here, where it is accessible
  auto t = routing::dns::AresTransport::create(io, settings);
  if (!t) return t.error();
  r->transport_ = std::move(*t);
  r->mx_ = std::make_unique<routing::dns::MxResolver>(*r->transport_, io, SystemClock::instance(), settings);
  return r;
}

Resolver::~Resolver() {
  mx_.reset();         // drops MX waiters without calling them
  loop_.timers().cancel(*this);
  transport_.reset();  // ares_destroy: smart-host lookups end with ARES_EDESTRUCTION
  loop_.timers().cancel(*this);
}

void Resolver::resolve(const std::string& name, uint16_t port, Callback done) {
  size_t before = in_flight_;
  ++in_flight_;
  auto* p = new Pending{std::move(done), port, &in_flight_, &loop_};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(
      transport_->channel(), name.c_str(), nullptr, &hints,
      [](void* arg, int status, int, ares_addrinfo* res) {
        std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
        --*p->in_flight;
        Result<std::vector<SocketAddress>> out = make_error("{}", ares_strerror(status));
        if (status == ARES_SUCCESS && res) {
          std::vector<SocketAddress> addrs;
          for (ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
            auto a = SocketAddress::from_sockaddr(n->ai_addr, n->ai_addrlen);
            a.set_port(p->port);
            bool dup = false;
            for (const auto& b : addrs) dup = dup || b == a;
            if (!dup) addrs.push_back(a);
          }
          out = std::move(addrs);
        }
        if (res) ares_freeaddrinfo(res);
        // Never inside resolve() (c-ares may answer from /etc/hosts at once): defer to the loop.
        Loop* loop = p->loop;
        loop->defer([done = std::move(p->done), out = std::move(out)]() mutable { done(std::move(out)); });
      },
      p);
  if (in_flight_ == before) {
    set_timer(std::chrono::nanoseconds::zero());  // answered at once (/etc/hosts): don't let the loop sleep on it
  } else {
    mx_->rearm_timer();  // the channel's timeout now covers this lookup too
  }
}

void Resolver::unwatch(int fd) {
  // c-ares is about to close fd: cancel our poll now (an armed poll keeps the socket alive).
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  Watch* w = it->second.get();
  w->wanted = false;
  retired_.push_back(std::move(it->second));
  watches_.erase(it);
  if (w->armed) {
    // Freed when the poll's final CQE arrives (on_poll).
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_poll_remove(s, reinterpret_cast<uint64_t>(w));
    io_uring_sqe_set_data(s, nullptr);
  } else {
    // We may be inside on_poll(*w) (c-ares closes sockets from ares_process_fd): free it later.
    loop_.defer([this, w] { drop_retired(w); });
  }
}

void Resolver::watch(int fd, bool readable, bool writable) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    auto w = std::make_unique<Watch>();
    w->r = this;
    w->fd = fd;
    it = watches_.emplace(fd, std::move(w)).first;
  }
  Watch& w = *it->second;
  bool changed = w.read != readable || w.write != writable;
  w.read = readable;
  w.write = writable;
  w.wanted = true;
  if (!w.armed) {
    arm(w);
  } else if (changed) {
    // The armed poll waits for the old events: a TCP socket armed for POLLIN that now also
    // wants POLLOUT (c-ares connecting to send the query) would wait forever. Update it in
    // place; if it already completed (-ENOENT on the null-data update), on_poll re-arms with
    // the new events anyway.
    io_uring_sqe* s = loop_.sqe();
    // new_user_data must be 0 unless IORING_POLL_UPDATE_USER_DATA is set (else -EINVAL).
    io_uring_prep_poll_update(s, reinterpret_cast<uint64_t>(&w), 0,
                              (readable ? POLLIN : 0) | (writable ? POLLOUT : 0), IORING_POLL_UPDATE_EVENTS);
    io_uring_sqe_set_data(s, nullptr);
  }
}

void Resolver::arm(Watch& w) {
  io_uring_sqe* s = loop_.sqe_for(&w);
  io_uring_prep_poll_add(s, w.fd, (w.read ? POLLIN : 0) | (w.write ? POLLOUT : 0));
  w.armed = true;
}

void Resolver::on_poll(Watch& w, int res) {
  w.armed = false;
  if (!w.wanted) {  // retired: drop it now that the kernel is done with it
    Watch* self = &w;
    loop_.defer([this, self] { drop_retired(self); });
    return;
  }
  bool readable = res > 0 && (res & (POLLIN | POLLERR | POLLHUP)) != 0;
  bool writable = res > 0 && (res & POLLOUT) != 0;
  mx_->on_ready(w.fd, readable, writable);  // runs ares_process_fd; may close (unwatch) the socket
  // One-shot polls: re-arm while c-ares still wants the socket.
  if (w.wanted && !w.armed) arm(w);  // still ours: w is freed only from a deferred task
}

void Resolver::drop_retired(Watch* w) {
  for (auto it = retired_.begin(); it != retired_.end(); ++it)
    if (it->get() == w) {
      retired_.erase(it);
      return;
    }
}

// The clock is read here, not loop_.now(): that is cached per iteration and still zero before
// the loop first runs, which would place the timer far in the future.
void Resolver::set_timer(std::chrono::nanoseconds after) { loop_.timers().arm(*this, MonoClock::now(), after); }

void Resolver::clear_timer() { loop_.timers().cancel(*this); }

void Resolver::fire() {
  if (mx_) mx_->on_timer();
}

}  // namespace ringmail::engine
