// Parsing and matching of socket addresses and CIDR networks (see net.h).
#include "common/net.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ringmail {
namespace {

bool parse_port(std::string_view s, uint16_t* out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535 || s.empty()) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

Result<SocketAddress> SocketAddress::parse(std::string_view text, int default_port) {
  std::string host;
  std::string_view port_text;
  bool have_port = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return make_error("bad address '{}': missing ']'", text);
    host.assign(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return make_error("bad address '{}': expected ':' after ']'", text);
      port_text = rest.substr(1);
      have_port = true;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') == colon) {  // exactly one colon: v4:port
      host.assign(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      have_port = true;
    } else {
      host.assign(text);  // bare v4 or bare v6
    }
  }
  uint16_t port = 0;
  if (have_port) {
    if (!parse_port(port_text, &port)) return make_error("bad address '{}': bad port", text);
  } else if (default_port >= 0) {
    port = static_cast<uint16_t>(default_port);
  } else {
    return make_error("bad address '{}': a port is required (host:port or [v6]:port)", text);
  }
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    std::memset(&a.ss_, 0, sizeof(a.ss_));
    inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
  } else {
    return make_error("bad address '{}': '{}' is not an IPv4 or IPv6 address", text, host);
  }
  return a;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (len > sizeof(a.ss_)) len = sizeof(a.ss_);
  std::memcpy(&a.ss_, sa, len);
  a.len_ = len;
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&ss_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss_)->sin6_port = htons(port);
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
  else if (family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
  return buf;
}

std::string SocketAddress::to_string() const {
  if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return host() + ":" + std::to_string(port());
}

bool SocketAddress::operator==(const SocketAddress& o) const {
  return len_ == o.len_ && std::memcmp(&ss_, &o.ss_, len_) == 0;
}

bool SocketAddress::same_host(const SocketAddress& o) const {
  if (family() != o.family()) return false;
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&o.ss_)->sin_addr.s_addr;
  if (family() == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&o.ss_)->sin6_addr, 16) == 0;
  return false;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  std::string addr(text);
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr.assign(text.substr(0, slash));
    auto p = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty())
      return make_error("bad network '{}': bad prefix length", text);
    prefix = static_cast<int>(v);
  }
  if (inet_pton(AF_INET, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return make_error("bad network '{}': prefix over 32", text);
  } else if (inet_pton(AF_INET6, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET6;
    if (prefix < 0) prefix = 128;
    if (prefix > 128) return make_error("bad network '{}': prefix over 128", text);
  } else {
    return make_error("bad network '{}': not an IPv4 or IPv6 address", text);
  }
  c.prefix_ = prefix;
  int nbytes = c.family_ == AF_INET ? 4 : 16;
  for (int i = 0; i < nbytes; ++i) {
    int bits = prefix - i * 8;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    c.bytes_[i] &= mask;
  }
  return c;
}

bool Cidr::contains(const SocketAddress& a) const {
  const uint8_t* bytes = nullptr;
  if (a.family() == AF_INET) {
    if (family_ != AF_INET) return false;
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(a.sa())->sin_addr);
  } else if (a.family() == AF_INET6) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_addr);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family_ == AF_INET) {
      if (std::memcmp(bytes, kMapped, 12) != 0) return false;
      bytes += 12;  // IPv4-mapped peer on a dual-stack socket
    }
  } else {
    return false;
  }
  int nbytes = family_ == AF_INET ? 4 : 16;
  for (int i = 0; i < nbytes; ++i) {
    int bits = prefix_ - i * 8;
    if (bits <= 0) break;
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((bytes[i] & mask) != bytes_[i]) return false;
  }
  return true;
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family_, bytes_, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

Result<NetworkList> NetworkList::parse(std::string_view text) {
  NetworkList list;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ') ++j;
    if (j > i) {
      auto c = Cidr::parse(text.substr(i, j - i));
      if (!c) return c.error();
      list.add(*c);
    }
    i = j;
  }
  return list;
}

bool NetworkList::contains(const SocketAddress& a) const {
  for (const auto& n : nets_)
    if (n.contains(a)) return true;
  return false;
}

std::string NetworkList::to_string() const {
  std::string s;
  for (const auto& n : nets_) {
    if (!s.empty()) s += ',';
    s += n.to_string();
  }
  return s;
}

}  // namespace ringmail
