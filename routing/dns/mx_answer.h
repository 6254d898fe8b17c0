// MxAnswer: where mail for one domain goes, as the delivery code consumes it — the outcome
// (ok / permanent / temporary) with the SMTP reply and enhanced status for logs and DSNs, and
// the MX hosts by preference, each with its addresses and TTLs. attempt_order() turns it into
// the addresses of one delivery attempt (equal preferences shuffled now, RFC 5321 §5.1; cap).
// Built by routing/dns/mx_resolver; immutable once cached and shared by every reader.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/net.h"

namespace ringmail::routing::dns {

enum class DnsOutcome : uint8_t {
  kOk,         // hosts has at least one host with an address
  kPermanent,  // bounce: NXDOMAIN, null MX, no address anywhere for certain
  kTemporary,  // defer: SERVFAIL, timeout, refused, some lookups failed
};

struct HostAddress {
  SocketAddress address;  // port 0; attempt_order() sets the connector's port
  uint32_t ttl = 0;       // seconds, the A/AAAA RRset TTL as received
};

struct MxHost {
  std::string name;                  // exchange name, lower-case, no trailing dot
  uint16_t preference = 0;           // 0 for the implicit MX
  uint32_t ttl = 0;                  // seconds, the MX RRset TTL (implicit MX: the address TTL)
  std::vector<HostAddress> addresses;  // ordered by the ip preference; empty hosts are not kept
};

struct MxAnswer {
  DnsOutcome outcome = DnsOutcome::kTemporary;  // see DnsOutcome
  int smtp_code = 451;                 // 451 / 550 / 556, for DSNs and the tracking log
  std::string enhanced_status;         // "4.4.3", "5.1.2", "5.1.10", "5.4.4"
  std::string text;                    // human text: what DNS said
  std::string domain;                  // as asked, lower-case
  std::string canonical_domain;        // after CNAMEs (== domain when none)
  bool implicit_mx = false;            // no MX: the domain's own addresses (RFC 5321 §5.1)
  std::vector<MxHost> hosts;           // by preference, lowest first; equal ones in DNS order
  uint32_t ttl = 0;                    // seconds this answer is cached for (min of its parts, clamped)
  std::vector<std::string> skipped;    // MX hosts without an address, with why (for logs)

  bool ok() const { return outcome == DnsOutcome::kOk; }
};

// One address to try in a delivery attempt.
struct AttemptTarget {
  const MxHost* host = nullptr;  // into the MxAnswer, which must outlive this
  SocketAddress address;         // with the connector's port
};

// The host order for one attempt: by preference, hosts of equal preference shuffled with `rng`.
template <class Rng>
std::vector<const MxHost*> shuffled_hosts(const MxAnswer& answer, Rng& rng) {
  std::vector<const MxHost*> order;
  order.reserve(answer.hosts.size());
  for (const MxHost& h : answer.hosts) order.push_back(&h);
  for (size_t band = 0; band < order.size();) {
    size_t end = band;
    while (end < order.size() && order[end]->preference == order[band]->preference) ++end;
    std::shuffle(order.begin() + band, order.begin() + end, rng);
    band = end;
  }
  return order;
}

// The addresses of one attempt, host by host in `hosts` order, each host's addresses in order,
// at most max(cap, 2) of them (RFC 5321 §5.1: try at least two; Postfix caps at 5).
std::vector<AttemptTarget> attempt_addresses(const std::vector<const MxHost*>& hosts, size_t cap, uint16_t port);

template <class Rng>
std::vector<AttemptTarget> attempt_order(const MxAnswer& answer, Rng& rng, size_t cap, uint16_t port) {
  return attempt_addresses(shuffled_hosts(answer, rng), cap, port);
}

std::string_view outcome_name(DnsOutcome o);

}  // namespace ringmail::routing::dns
