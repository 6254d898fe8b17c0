// SO_REUSEPORT listener sockets (see listener.h).
#include "engine/net/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringmail::engine {
namespace {

Result<int> open_one(const SocketAddress& addr) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("socket: {}", std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, addr.sa(), addr.len()) < 0 || ::listen(fd, 4096) < 0) {
    int e = errno;
    ::close(fd);
    return make_error("cannot listen on {}: {}", addr.to_string(), std::strerror(e));
  }
  return fd;
}

SocketAddress local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace

Result<std::vector<int>> open_listeners(const SocketAddress& addr, unsigned copies, SocketAddress* bound) {
  std::vector<int> fds;
  SocketAddress target = addr;
  for (unsigned i = 0; i < copies; ++i) {
    auto fd = open_one(target);
    if (!fd) {
      for (int f : fds) ::close(f);
      return fd.error();
    }
    if (i == 0) target = local_address(*fd);  // port 0 → the port the kernel chose
    fds.push_back(*fd);
  }
  *bound = target;
  return fds;
}

}  // namespace ringmail::engine
