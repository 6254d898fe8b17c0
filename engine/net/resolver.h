// Host-name resolution on a worker's ring: one c-ares channel per worker, its sockets watched with
// one-shot io_uring polls re-armed after every event (c-ares needs level-triggered readiness,
// platform-notes §3), its timeouts folded into the loop's timer wheel. No thread ever blocks on
// DNS. This first cut resolves host names to addresses (smart hosts); the MX resolver and its
// cache (the resolver issue) will build on the same channel plumbing.
#pragma once

#include <ares.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "engine/loop/loop.h"
#include "engine/loop/timer_wheel.h"

namespace ringmail::engine {

class Resolver final : private Timer {
 public:
  using Callback = std::function<void(Result<std::vector<SocketAddress>>)>;

  // Creates the channel (servers from /etc/resolv.conf, /etc/hosts consulted first). Loop thread.
  static Result<std::unique_ptr<Resolver>> create(Loop& loop);
  ~Resolver() override;

  // Resolves `name` to its IPv4 and IPv6 addresses (port set to `port`); `done` runs later on the
  // loop thread, never inside this call.
  void resolve(const std::string& name, uint16_t port, Callback done);
  size_t in_flight() const { return in_flight_; }

 private:
  explicit Resolver(Loop& loop) : loop_(loop) {}
  struct Watch final : Completion {
    Resolver* r = nullptr;
    int fd = -1;
    bool read = false, write = false;  // what c-ares wants now
    bool armed = false;                // a poll is in flight
    bool wanted = true;                // c-ares still uses this socket
    void on_complete(const io_uring_cqe& cqe) override { r->on_poll(*this, cqe.res); }
  };
  static void sock_state(void* data, ares_socket_t fd, int readable, int writable);
  void arm(Watch& w);
  void on_poll(Watch& w, int res);
  void fire() override;  // c-ares timeout
  void rearm_timer();
  void drop_retired(Watch* w);

  Loop& loop_;
  ares_channel channel_ = nullptr;
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;  // by socket
  std::vector<std::unique_ptr<Watch>> retired_;             // polls still in flight for closed sockets
  size_t in_flight_ = 0;                                    // lookups not yet answered
};

}  // namespace ringmail::engine
