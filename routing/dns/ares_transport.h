// AresTransport: one c-ares 1.18 channel per worker thread behind DnsTransport. Sockets are
// reported to the loop through DnsIoDriver (sock_state_cb); answers are parsed from the raw
// packet (dns_records.h). ARES_FLAG_NOCHECKRESP makes SERVFAIL/REFUSED visible as such instead
// of "could not contact DNS servers" (platform-notes §3). Not thread-safe (c-ares 1.18 isn't).
#pragma once

#include <ares.h>

#include <deque>
#include <memory>
#include <string>

#include "common/result.h"
#include "routing/dns/dns_io.h"
#include "routing/dns/dns_settings.h"
#include "routing/dns/dns_transport.h"

namespace ringmail::routing::dns {

class AresTransport final : public DnsTransport {
 public:
  struct Stats {
    uint64_t queries = 0;      // ares_query calls (CNAME follow-ups included)
    uint64_t udp_sockets = 0;  // sockets c-ares opened, by kind
    uint64_t tcp_sockets = 0;  // (a truncated UDP answer makes c-ares retry over TCP)
    uint64_t queued = 0;       // queries that waited for a free slot (max_queries_in_flight)
  };

  // Servers from settings.servers, or /etc/resolv.conf when empty. Start-up only.
  static Result<std::unique_ptr<AresTransport>> create(DnsIoDriver& io, const DnsSettings& settings);
  ~AresTransport() override;

  void query(std::string_view name, uint16_t type, Done done) override;
  void process(int fd, bool readable, bool writable) override;
  std::optional<std::chrono::nanoseconds> next_timeout() override;
  void cancel_all() override;

  // The channel, for other c-ares calls on the same loop (the engine's smart-host getaddrinfo).
  ares_channel channel() { return channel_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Waiting {
    std::string name;  // as asked
    uint16_t type;     // asked type
    Done done;         // the caller's completion
  };
  explicit AresTransport(DnsIoDriver& io) : io_(io) {}
  void send(std::string name, uint16_t type, Done done);
  void start_waiting();
  static void on_sock_state(void* self, ares_socket_t fd, int readable, int writable);
  static int on_socket_created(ares_socket_t fd, int type, void* self);

  DnsIoDriver& io_;                 // the loop watching our sockets
  ares_channel channel_ = nullptr;  // owned
  size_t max_in_flight_ = 100;      // from settings (at least 1)
  size_t in_flight_ = 0;            // queries c-ares holds
  std::deque<Waiting> waiting_;     // queries beyond max_in_flight_, FIFO
  bool draining_ = false;           // start_waiting() is running (no recursion)
  Stats stats_;
};

}  // namespace ringmail::routing::dns
