// Parsing of resolver flags (see dns_settings.h).
#include "routing/dns/dns_settings.h"

namespace ringmail::routing::dns {

Result<SocketAddress> parse_dns_server(std::string_view text) {
  auto a = SocketAddress::parse(text, 53);
  if (!a) return make_error("--dns-server {}: expected IP or IP:PORT ({})", text, a.error().message());
  return *a;
}

Result<IpPreference> parse_ip_preference(std::string_view text) {
  if (text == "ipv4") return IpPreference::kIpv4;
  if (text == "ipv6") return IpPreference::kIpv6;
  if (text == "any") return IpPreference::kAny;
  return make_error("--ip-preference {}: expected ipv4, ipv6 or any", text);
}

std::string_view ip_preference_name(IpPreference p) {
  switch (p) {
    case IpPreference::kIpv4: return "ipv4";
    case IpPreference::kIpv6: return "ipv6";
    case IpPreference::kAny: return "any";
  }
  return "?";
}

std::string servers_csv(const std::vector<SocketAddress>& servers) {
  std::string out;
  for (const SocketAddress& s : servers) {
    if (!out.empty()) out += ',';
    out += s.to_string();
  }
  return out;
}

}  // namespace ringmail::routing::dns
