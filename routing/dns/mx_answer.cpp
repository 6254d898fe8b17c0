// Address order of one delivery attempt (see mx_answer.h).
#include "routing/dns/mx_answer.h"

namespace ringmail::routing::dns {

std::vector<AttemptTarget> attempt_addresses(const std::vector<const MxHost*>& hosts, size_t cap, uint16_t port) {
  size_t limit = std::max<size_t>(cap, 2);
  std::vector<AttemptTarget> out;
  for (const MxHost* h : hosts) {
    for (const HostAddress& a : h->addresses) {
      if (out.size() >= limit) return out;
      AttemptTarget t{h, a.address};
      t.address.set_port(port);
      out.push_back(t);
    }
  }
  return out;
}

std::string_view outcome_name(DnsOutcome o) {
  switch (o) {
    case DnsOutcome::kOk: return "ok";
    case DnsOutcome::kPermanent: return "permanent";
    case DnsOutcome::kTemporary: return "temporary";
  }
  return "?";
}

}  // namespace ringmail::routing::dns
