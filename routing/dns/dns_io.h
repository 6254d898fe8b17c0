// The seam between the resolver (routing, knows c-ares) and whoever owns the event loop (the
// engine's io_uring worker, or PollDnsLoop in tests and tools). The resolver asks the loop to
// watch sockets and keep one timer; the loop calls MxResolver::on_ready()/on_timer() back.
// Readiness must behave level-triggered: a one-shot poll re-armed after each event is right,
// an edge-triggered multishot poll stalls c-ares' TCP reads (platform-notes §3).
#pragma once

#include <chrono>

namespace ringmail::routing::dns {

class DnsIoDriver {
 public:
  // Start watching `fd`, or change what is watched. Called again after every change.
  virtual void watch(int fd, bool readable, bool writable) = 0;
  // Stop watching `fd`: c-ares closes it right after this returns.
  virtual void unwatch(int fd) = 0;
  // Call on_timer() once `after` has elapsed (replaces the previous timer). Zero: soon.
  virtual void set_timer(std::chrono::nanoseconds after) = 0;
  virtual void clear_timer() = 0;

 protected:
  ~DnsIoDriver() = default;
};

}  // namespace ringmail::routing::dns
