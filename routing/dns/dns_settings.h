// Resolver settings the daemon fills from its flags (--dns-server, --ip-preference, --dns-ttl-min,
// ...), with parsers for the operator's text. Defaults follow Postfix and the resolver issue.
// Nothing here touches the network; the c-ares channel reads these in routing/dns/ares_transport.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/result.h"

namespace ringmail::routing::dns {

// Which address family of an MX host is tried first; the other family follows (Postfix's
// smtp_address_preference). kAny interleaves the two, IPv6 first (RFC 8305 §4).
enum class IpPreference : uint8_t { kIpv4, kIpv6, kAny };

struct CachePolicy {
  std::chrono::seconds min_ttl{30};             // positive TTLs below this are raised
  std::chrono::seconds max_ttl{86400};          // positive TTLs above this are lowered
  std::chrono::seconds max_negative_ttl{3600};  // cap on RFC 2308 negative TTLs
  std::chrono::seconds failure_ttl{2};          // first server failure is remembered this long
  std::chrono::seconds max_failure_ttl{60};     // back-off doubles up to this (RFC 2308 §7.1: <= 5 min)
  size_t capacity = 100'000;                    // entries per cache before LRU eviction
};

struct DnsSettings {
  std::vector<SocketAddress> servers;                 // empty: /etc/resolv.conf
  IpPreference ip_preference = IpPreference::kIpv4;   // family tried first
  CachePolicy cache;                                  // TTL clamps, failure back-off, size
  size_t address_cap = 5;                             // addresses per delivery attempt (>= 2 used)
  std::chrono::milliseconds query_timeout{2000};      // c-ares timeout of the first try
  int query_tries = 2;                                // c-ares tries per server
  std::chrono::milliseconds lookup_deadline{10000};   // a waiter gives up after this
  bool use_edns = true;                               // EDNS0 (fewer TCP fallbacks)
  size_t max_queries_in_flight = 100;                 // more wait in a queue (bursts overflow UDP buffers)
  int udp_receive_buffer = 1 << 20;                   // SO_RCVBUF of c-ares sockets (bytes; 0: system default)
};

// "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1" → an address (port 53 when none given).
Result<SocketAddress> parse_dns_server(std::string_view text);
// "ipv4" | "ipv6" | "any".
Result<IpPreference> parse_ip_preference(std::string_view text);
std::string_view ip_preference_name(IpPreference p);
// c-ares' server list form: "127.0.0.1:5353,[::1]:53".
std::string servers_csv(const std::vector<SocketAddress>& servers);

}  // namespace ringmail::routing::dns
