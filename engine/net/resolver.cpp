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

Result<std::unique_ptr<Resolver>> Resolver::create(Loop& loop) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return make_error("c-ares: {}", ares_strerror(init));
  std::unique_ptr<Resolver> r(new Resolver(loop));
  ares_options o{};
  o.sock_state_cb = &Resolver::sock_state;
  o.sock_state_cb_data = r.get();
  o.timeout = 2000;  // ms per try
  o.tries = 3;
  o.flags = ARES_FLAG_NOSEARCH;  // a smart host is written as the operator means it
  char lookups[] = "fb";         // /etc/hosts, then DNS
  o.lookups = lookups;
  int rc = ares_init_options(&r->channel_, &o,
                             ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                                 ARES_OPT_LOOKUPS);
  if (rc != ARES_SUCCESS) return make_error("c-ares channel: {}", ares_strerror(rc));
  return r;
}

Resolver::~Resolver() {
  loop_.timers().cancel(*this);
  if (channel_) ares_destroy(channel_);  // answers pending lookups with ARES_EDESTRUCTION
}

void Resolver::resolve(const std::string& name, uint16_t port, Callback done) {
  ++in_flight_;
  auto* p = new Pending{std::move(done), port, &in_flight_, &loop_};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(
      channel_, name.c_str(), nullptr, &hints,
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
  rearm_timer();
}

void Resolver::sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* r = static_cast<Resolver*>(data);
  auto it = r->watches_.find(fd);
  if (!readable && !writable) {
    // c-ares is about to close fd: cancel our poll now (an armed poll keeps the socket alive).
    if (it == r->watches_.end()) return;
    Watch* w = it->second.get();
    w->wanted = false;
    r->retired_.push_back(std::move(it->second));
    r->watches_.erase(it);
    if (w->armed) {
      // Freed when the poll's final CQE arrives (on_poll).
      io_uring_sqe* s = r->loop_.sqe();
      io_uring_prep_poll_remove(s, reinterpret_cast<uint64_t>(w));
      io_uring_sqe_set_data(s, nullptr);
    } else {
      // We may be inside on_poll(*w) (c-ares closes sockets from ares_process_fd): free it later.
      r->loop_.defer([r, w] { r->drop_retired(w); });
    }
    return;
  }
  if (it == r->watches_.end()) {
    auto w = std::make_unique<Watch>();
    w->r = r;
    w->fd = fd;
    it = r->watches_.emplace(fd, std::move(w)).first;
  }
  Watch& w = *it->second;
  w.read = readable;
  w.write = writable;
  w.wanted = true;
  if (!w.armed) r->arm(w);
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
  int fd = w.fd;
  ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
  if (res > 0) {
    if (res & (POLLIN | POLLERR | POLLHUP)) rfd = fd;
    if (res & POLLOUT) wfd = fd;
  }
  ares_process_fd(channel_, rfd, wfd);
  // One-shot polls: re-arm while c-ares still wants the socket (it may have closed it above).
  if (w.wanted && !w.armed) arm(w);  // still ours: w is freed only from a deferred task
  rearm_timer();
}

void Resolver::drop_retired(Watch* w) {
  for (auto it = retired_.begin(); it != retired_.end(); ++it)
    if (it->get() == w) {
      retired_.erase(it);
      return;
    }
}

void Resolver::fire() {
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm_timer();
}

void Resolver::rearm_timer() {
  timeval max{1, 0}, tv{};
  timeval* t = ares_timeout(channel_, &max, &tv);
  if (in_flight_ == 0) {
    loop_.timers().cancel(*this);
    return;
  }
  auto after = std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec);
  loop_.timers().arm(*this, loop_.now(), after);
}

}  // namespace ringmail::engine
