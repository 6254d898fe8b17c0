// PollDnsLoop: a tiny poll(2) loop that drives an MxResolver outside the engine — for tests,
// benchmarks and ringmail-route. The daemon uses the io_uring implementation in
// engine/net/resolver instead. Level-triggered by nature, which is what c-ares needs.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "routing/dns/dns_io.h"

namespace ringmail::routing::dns {

class MxResolver;

class PollDnsLoop final : public DnsIoDriver {
 public:
  // Connects the resolver whose on_ready()/on_timer() this loop calls (set before run_until).
  void attach(MxResolver* resolver) { resolver_ = resolver; }

  void watch(int fd, bool readable, bool writable) override;
  void unwatch(int fd) override;
  void set_timer(std::chrono::nanoseconds after) override;
  void clear_timer() override { timer_.reset(); }

  // Polls and dispatches until `done()` is true or `limit` (real time) has passed. True if done.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

  size_t watched() const { return fds_.size(); }
  bool timer_armed() const { return timer_.has_value(); }

 private:
  struct Watched {
    int fd;          // c-ares socket
    bool readable;   // c-ares wants to read
    bool writable;   // c-ares wants to write
  };
  std::vector<Watched> fds_;          // few: one per DNS server and protocol
  std::optional<MonoTime> timer_;     // when on_timer() is due (steady clock)
  MxResolver* resolver_ = nullptr;    // not owned
};

}  // namespace ringmail::routing::dns
