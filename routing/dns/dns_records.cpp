// Raw DNS answer parsing (see dns_records.h). Names are expanded with ares_expand_name, which
// follows compression pointers and rejects loops.
#include "routing/dns/dns_records.h"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "common/domain_name.h"
#include "common/strings.h"

namespace ringmail::routing::dns {
namespace {

struct Rr {
  std::string owner;           // canonical owner name
  uint16_t type = 0;
  uint32_t ttl = 0;
  const unsigned char* rdata = nullptr;
  uint16_t rdlength = 0;
};

uint16_t get16(const unsigned char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// Expands the name at `at`; advances `at` past it. False on a malformed name.
bool read_name(const unsigned char* packet, int length, const unsigned char*& at, std::string& out) {
  char* name = nullptr;
  long used = 0;
  if (ares_expand_name(at, packet, length, &name, &used) != ARES_SUCCESS) return false;
  out = canonical_name(name);
  ares_free_string(name);
  at += used;
  return true;
}

// A host name that can be looked up and connected to (after canonical_name: lower-case, no
// trailing dot), by the rule routing applies to domains; "" is the null MX. ares_expand_name writes
// a dot or an unprintable octet inside a label as a backslash escape, which the rule refuses.
bool valid_host_name(std::string_view name) { return name.empty() || domain_syntax_error(name).empty(); }

DnsRecords temporary(std::string why) {
  DnsRecords r;
  r.status = LookupStatus::kTemporary;
  r.error = std::move(why);
  return r;
}

}  // namespace

std::string canonical_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return to_lower_ascii(name);
}

std::string_view status_name(LookupStatus s) {
  switch (s) {
    case LookupStatus::kFound: return "found";
    case LookupStatus::kNoData: return "no data";
    case LookupStatus::kNxDomain: return "no such domain";
    case LookupStatus::kCnameDangling: return "CNAME to be followed";
    case LookupStatus::kTemporary: return "temporary failure";
  }
  return "?";
}

DnsRecords parse_answer(const unsigned char* packet, int length, std::string_view qname, uint16_t qtype) {
  if (packet == nullptr || length < 12) return temporary("short DNS answer");
  const unsigned char* end = packet + length;
  unsigned rcode = packet[3] & 0x0f;
  unsigned qdcount = get16(packet + 4), ancount = get16(packet + 6), nscount = get16(packet + 8);
  if (rcode == 2) return temporary("SERVFAIL");
  if (rcode == 5) return temporary("REFUSED");
  if (rcode != 0 && rcode != 3) return temporary(fmt::format("DNS RCODE {}", rcode));

  const unsigned char* at = packet + 12;
  std::string name;
  for (unsigned i = 0; i < qdcount; ++i) {
    if (!read_name(packet, length, at, name) || end - at < 4) return temporary("malformed question");
    at += 4;
  }
  std::vector<Rr> answers, authority;
  for (unsigned i = 0; i < ancount + nscount; ++i) {
    Rr rr;
    if (!read_name(packet, length, at, rr.owner) || end - at < 10) return temporary("malformed record");
    rr.type = get16(at);
    rr.ttl = get32(at + 4) & 0x7fffffffu;  // RFC 2181 §8: the top bit set means zero
    rr.rdlength = get16(at + 8);
    at += 10;
    if (end - at < rr.rdlength) return temporary("truncated record data");
    rr.rdata = at;
    at += rr.rdlength;
    (i < ancount ? answers : authority).push_back(std::move(rr));
  }

  DnsRecords out;
  out.final_name = canonical_name(qname);
  // Follow the CNAME chain inside the answer (bounded: a loop cannot grow it beyond the records).
  uint32_t ttl = UINT32_MAX;
  bool followed = false;
  size_t malformed_mx = 0;  // MX records whose exchange is not a usable host name
  for (size_t hops = 0; hops <= answers.size(); ++hops) {
    auto it = std::find_if(answers.begin(), answers.end(),
                           [&](const Rr& r) { return r.type == kTypeCname && r.owner == out.final_name; });
    if (it == answers.end()) break;
    const unsigned char* p = it->rdata;
    if (!read_name(packet, length, p, name)) return temporary("malformed CNAME");
    out.final_name = name;
    ttl = std::min(ttl, it->ttl);
    followed = true;
  }
  for (const Rr& r : answers) {
    if (r.type != qtype || r.owner != out.final_name) continue;
    if (qtype == kTypeMx) {
      if (r.rdlength < 3) return temporary("malformed MX");
      const unsigned char* p = r.rdata + 2;
      MxRecord mx;
      mx.preference = get16(r.rdata);
      if (!read_name(packet, length, p, mx.host)) return temporary("malformed MX exchange");
      if (!valid_host_name(mx.host)) {
        // As Postfix does: a record naming no usable host is skipped (logged by the resolver if
        // nothing usable is left); the others still count.
        ++malformed_mx;
        continue;
      }
      out.mx.push_back(std::move(mx));
    } else if (qtype == kTypeA && r.rdlength == 4) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      std::memcpy(&sin.sin_addr, r.rdata, 4);
      out.addresses.push_back(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin));
    } else if (qtype == kTypeAaaa && r.rdlength == 16) {
      sockaddr_in6 sin6{};
      sin6.sin6_family = AF_INET6;
      std::memcpy(&sin6.sin6_addr, r.rdata, 16);
      out.addresses.push_back(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6));
    } else {
      continue;
    }
    ttl = std::min(ttl, r.ttl);
  }
  for (const Rr& r : authority) {
    if (r.type != kTypeSoa) continue;
    // RDATA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
    const unsigned char* p = r.rdata;
    if (!read_name(packet, length, p, name) || !read_name(packet, length, p, name) ||
        r.rdata + r.rdlength - p < 20)
      return temporary("malformed SOA");
    out.has_soa = true;
    out.ttl = std::min(r.ttl, get32(p + 16));  // RFC 2308 §5
    break;
  }
  if (rcode != 3 && out.mx.empty() && malformed_mx > 0) {
    // The domain has MX records, none usable: not a reason to fall back to its address records
    // (RFC 5321 §5.1 applies only when there are no MX records). Defer, as Postfix does.
    return temporary(fmt::format("{} MX record{} naming no valid host name", malformed_mx,
                                 malformed_mx == 1 ? "" : "s"));
  }
  if (rcode == 3) {
    out.status = LookupStatus::kNxDomain;
  } else if (!out.mx.empty() || !out.addresses.empty()) {
    out.status = LookupStatus::kFound;
    out.ttl = ttl;
  } else if (followed && !out.has_soa) {
    out.status = LookupStatus::kCnameDangling;  // e.g. an authoritative server for another zone
    out.ttl = ttl;
  } else {
    out.status = LookupStatus::kNoData;
  }
  return out;
}

}  // namespace ringmail::routing::dns
