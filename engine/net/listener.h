// Listening sockets for the SMTP listeners (the daemon's and the test sink's): one socket per
// worker per address with SO_REUSEPORT, so the kernel spreads connections over the workers'
// rings. Opening happens on the main thread at start-up; accepting is the worker's job.
#pragma once

#include <vector>

#include "common/net.h"
#include "common/result.h"

namespace ringmail::engine {

// Opens `copies` SO_REUSEPORT listeners on `addr`. Port 0 is resolved by the first bind and the
// rest bind the same port; *bound receives the resulting address. IPv6 sockets are v6-only.
Result<std::vector<int>> open_listeners(const SocketAddress& addr, unsigned copies, SocketAddress* bound);

}  // namespace ringmail::engine
