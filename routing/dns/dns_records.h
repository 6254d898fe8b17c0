// One DNS answer reduced to what the MX resolver needs: the status (found, no data, no such
// domain, temporary), the records of the asked type at the end of the CNAME chain with the
// RRset TTL, or the RFC 2308 negative TTL from the SOA. Parsed from the raw packet because
// c-ares' MX parser returns neither TTLs nor the SOA (platform-notes §3). No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/net.h"

namespace ringmail::routing::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeSoa = 6;
inline constexpr uint16_t kTypeMx = 15;
inline constexpr uint16_t kTypeAaaa = 28;

enum class LookupStatus : uint8_t {
  kFound,          // records of the asked type exist
  kNoData,         // the name exists, no records of the type (RFC 2308 NODATA)
  kNxDomain,       // the name does not exist (RCODE 3)
  kCnameDangling,  // the answer ends in a CNAME whose target the server did not answer for: ask it
  kTemporary,      // SERVFAIL, REFUSED, timeout, network error, malformed answer
};

struct MxRecord {
  uint16_t preference = 0;  // lower is tried first
  std::string host;         // lower-case, no trailing dot; "" is the null MX (".")
};

struct DnsRecords {
  LookupStatus status = LookupStatus::kTemporary;  // what the answer says
  std::string final_name;                 // the name the records belong to (after CNAMEs), lower-case
  std::vector<MxRecord> mx;               // for MX queries, in answer order
  std::vector<SocketAddress> addresses;   // for A/AAAA queries (port 0), in answer order
  uint32_t ttl = 0;                       // found: min TTL of RRset and CNAMEs; negative: SOA-derived
  bool has_soa = false;                   // negative answer carried an SOA (cacheable per RFC 2308)
  std::string error;                      // temporary: why ("SERVFAIL", "timeout", ...)
  bool from_server = true;                // false: no answer came back (timeout, network error)
};

// Parses `packet` (a whole DNS message answering `qname`/`qtype`). Never throws; a malformed
// packet gives kTemporary with the reason.
DnsRecords parse_answer(const unsigned char* packet, int length, std::string_view qname, uint16_t qtype);

// Lower-cases and drops one trailing dot.
std::string canonical_name(std::string_view name);

std::string_view status_name(LookupStatus s);

}  // namespace ringmail::routing::dns
