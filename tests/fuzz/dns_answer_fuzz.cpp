// Fuzz target: ringmail's own DNS answer parser (routing/dns/dns_records.h), which reads raw packets
// from whatever server answers. A malformed packet gives kTemporary with a reason, never a crash or
// a read outside the packet (AddressSanitizer). What it returns is safe to use: MX host names are
// host names (lower-case letters, digits, '-', '_', dots between non-empty labels, at most 253
// octets: no spaces, escapes or control octets, since they go into logs, TLS names and further
// queries); A answers give IPv4 addresses and AAAA answers IPv6 ones; a found answer has records.
//
// Input: 1 byte query type (MX, A or AAAA), 1 length byte and the query name, then the packet.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/dns/dns_records.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace dns = ringmail::routing::dns;

namespace {

void check_name(std::string_view n) {
  FUZZ_CHECK(n.size() <= 253);
  FUZZ_CHECK(n.empty() || (n.back() != '.' && n.front() != '.'));
  FUZZ_CHECK(n.find("..") == std::string_view::npos);
  for (char c : n) FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  static constexpr uint16_t kTypes[] = {dns::kTypeMx, dns::kTypeA, dns::kTypeAaaa};
  uint16_t qtype = kTypes[in.byte() % 3];
  std::string qname(in.piece());
  std::string_view packet = in.rest();
  dns::DnsRecords r = dns::parse_answer(reinterpret_cast<const unsigned char*>(packet.data()),
                                        static_cast<int>(packet.size()), qname, qtype);
  if (r.status == dns::LookupStatus::kFound) {
    if (qtype == dns::kTypeMx) FUZZ_CHECK(!r.mx.empty());
    else FUZZ_CHECK(!r.addresses.empty());
  }
  for (const auto& mx : r.mx) check_name(mx.host);
  for (const auto& a : r.addresses) FUZZ_CHECK(a.family() == (qtype == dns::kTypeA ? AF_INET : AF_INET6));
  if (qtype != dns::kTypeMx) FUZZ_CHECK(r.mx.empty());
  if (r.status == dns::LookupStatus::kTemporary) FUZZ_CHECK(!r.error.empty());
  return 0;
}
