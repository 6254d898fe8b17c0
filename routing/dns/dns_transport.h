// DnsTransport: "send this question, call me with the parsed answer". AresTransport is the real
// one (c-ares); tests and benchmarks substitute scripted ones to measure the cache and the MX
// logic without a network. Answers arrive on the loop thread, possibly inside query() itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "routing/dns/dns_records.h"

namespace ringmail::routing::dns {

class DnsTransport {
 public:
  using Done = std::function<void(DnsRecords)>;
  virtual ~DnsTransport() = default;

  // Asks the servers `name` (as given: no search list) of `type`; `done` runs exactly once.
  virtual void query(std::string_view name, uint16_t type, Done done) = 0;
  // The loop saw `fd` ready (or the timer fired: fd -1). Runs the callbacks of finished queries.
  virtual void process(int fd, bool readable, bool writable) = 0;
  // When process(-1, ...) must run next for retries and timeouts; none when idle.
  virtual std::optional<std::chrono::nanoseconds> next_timeout() = 0;
  // Ends every query in flight (their callbacks run with a temporary failure).
  virtual void cancel_all() = 0;
};

}  // namespace ringmail::routing::dns
