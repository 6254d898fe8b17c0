// Socket addresses and CIDR networks: parsing operator input ("127.0.0.1:2525", "[::1]:25",
// "10.0.0.0/8") and formatting for logs. No sockets are opened here.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ringmail {

// An IPv4 or IPv6 address with a port.
class SocketAddress {
 public:
  SocketAddress() = default;
  // "1.2.3.4:25", "[::1]:25"; with default_port, a bare "1.2.3.4" or "::1" / "[::1]" is accepted.
  static Result<SocketAddress> parse(std::string_view text, int default_port = -1);
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss_); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss_); }
  socklen_t len() const { return len_; }
  int family() const { return ss_.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  std::string host() const;        // "127.0.0.1" or "::1"
  std::string to_string() const;   // "127.0.0.1:25" or "[::1]:25"
  bool operator==(const SocketAddress& o) const;
  bool same_host(const SocketAddress& o) const;  // same family and address; ports may differ

 private:
  sockaddr_storage ss_{};  // the address, family set
  socklen_t len_ = 0;      // bytes of ss_ in use
};

// An address prefix such as 127.0.0.0/8 or ::1/128. IPv4-mapped IPv6 peers match IPv4 networks.
class Cidr {
 public:
  static Result<Cidr> parse(std::string_view text);  // "a.b.c.d/n", "a.b.c.d", "x::y/n"
  bool contains(const SocketAddress& addr) const;
  std::string to_string() const;

 private:
  int family_ = AF_INET;   // AF_INET or AF_INET6
  uint8_t bytes_[16]{};    // network address, host bits zero
  int prefix_ = 0;         // prefix length in bits
};

// A list of networks; contains() is true if any member contains the address.
class NetworkList {
 public:
  static Result<NetworkList> parse(std::string_view comma_or_space_separated);
  void add(Cidr c) { nets_.push_back(c); }
  bool contains(const SocketAddress& addr) const;
  std::string to_string() const;
  bool empty() const { return nets_.empty(); }

 private:
  std::vector<Cidr> nets_;  // in the order given
};

}  // namespace ringmail
