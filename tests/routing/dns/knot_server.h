// KnotServer: a real Knot DNS server (Debian `knot`, knotd 3.2) for the resolver tests and the
// load benchmark — config and zones in a temporary directory, a free loopback port, started in
// the foreground and stopped by PID. Query counts come from Knot's mod-stats via knotc.
// tests/integration/knot.py is the same helper for the Python end-to-end tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/net.h"
#include "common/result.h"

namespace ringmail::testing {

class KnotServer {
 public:
  struct Zone {
    std::string name;  // "test" (no trailing dot)
    std::string text;  // zone file contents; text Knot cannot load makes it answer SERVFAIL
  };
  // Starts knotd and waits (on its log, no sleeps) until it listens and every zone is settled.
  static Result<std::unique_ptr<KnotServer>> start(const std::vector<Zone>& zones);
  ~KnotServer();  // SIGTERM to the PID, wait for it, remove the directory

  uint16_t port() const { return port_; }
  SocketAddress address() const;  // 127.0.0.1:port
  // A mod-stats counter such as "query-type[MX]" or "request-protocol[tcp4]"; 0 if not seen yet.
  uint64_t counter(const std::string& name) const;

 private:
  KnotServer() = default;
  std::string dir_;       // temporary directory with knot.conf, zones, rundir, db
  pid_t pid_ = -1;        // knotd
  int log_fd_ = -1;       // read end of knotd's stderr
  uint16_t port_ = 0;     // UDP and TCP
};

// Reads a file of tests/integration/dns/ (the shared zone fixtures).
std::string read_fixture(const std::string& name);

}  // namespace ringmail::testing
