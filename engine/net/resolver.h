// DNS on a worker's ring: one c-ares channel per worker (routing/dns/AresTransport), its sockets
// watched with one-shot io_uring polls re-armed after every event (c-ares needs level-triggered
// readiness, platform-notes §3), its timeouts and the MX waiters' deadlines in the loop's timer
// wheel. This is the engine's implementation of routing::dns::DnsIoDriver; the MX rules and the
// cache live in routing/dns/mx_resolver. No thread ever blocks on DNS.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "engine/loop/loop.h"
#include "engine/loop/timer_wheel.h"
#include "routing/dns/ares_transport.h"
#include "routing/dns/dns_settings.h"
#include "routing/dns/mx_resolver.h"

namespace ringmail::engine {

class Resolver final : private Timer, private routing::dns::DnsIoDriver {
 public:
  using Callback = std::function<void(Result<std::vector<SocketAddress>>)>;
  using MxAnswerPtr = routing::dns::MxResolver::AnswerPtr;
  using MxCallback = routing::dns::MxResolver::Done;

  // Creates the channel (settings.servers, else /etc/resolv.conf) and the MX cache. Loop thread.
  static Result<std::unique_ptr<Resolver>> create(Loop& loop, const routing::dns::DnsSettings& settings = {});
  ~Resolver() override;

  // Smart hosts: resolves `name` to its IPv4 and IPv6 addresses (/etc/hosts first; port set to
  // `port`); `done` runs later on the loop thread, never inside this call.
  void resolve(const std::string& name, uint16_t port, Callback done);

  // DNS-routed delivery: the cached MxAnswer for `domain` (then `done` is not used), or null and
  // `done` runs later on the loop thread with the answer (a timeout is a temporary answer).
  // Use routing::dns::attempt_order(*answer, rng, settings().address_cap, connector_port).
  MxAnswerPtr resolve_mx(std::string_view domain, MxCallback done) { return mx_->resolve(domain, std::move(done)); }

  const routing::dns::DnsSettings& settings() const { return mx_->settings(); }
  const routing::dns::MxResolver& mx() const { return *mx_; }
  size_t in_flight() const { return in_flight_; }  // smart-host lookups not yet answered

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
  // routing::dns::DnsIoDriver
  void watch(int fd, bool readable, bool writable) override;
  void unwatch(int fd) override;
  void set_timer(std::chrono::nanoseconds after) override;
  void clear_timer() override;

  void arm(Watch& w);
  void on_poll(Watch& w, int res);
  void fire() override;  // Timer: c-ares timeouts, MX waiter deadlines, deferred answers
  void drop_retired(Watch* w);

  Loop& loop_;
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;  // by socket
  std::vector<std::unique_ptr<Watch>> retired_;             // polls still in flight for closed sockets
  size_t in_flight_ = 0;                                    // smart-host lookups not yet answered
  std::unique_ptr<routing::dns::AresTransport> transport_;  // the channel
  std::unique_ptr<routing::dns::MxResolver> mx_;            // MX rules + caches; destroyed first
};

}  // namespace ringmail::engine
