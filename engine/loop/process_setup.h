// What every io_uring program of ringmail (the daemon, the test sink) does once at start-up,
// before any worker thread exists: check the kernel's io_uring, raise the open-files limit to its
// hard maximum (a relay holds thousands of sockets), and route signals to the main thread.
#pragma once

#include <signal.h>

#include <initializer_list>

#include "common/result.h"

namespace ringmail::engine {

// Probes io_uring (a clear error if unusable), raises RLIMIT_NOFILE, ignores SIGPIPE and blocks
// `signals` in this thread — threads started afterwards inherit the mask — filling *set with them
// for sigwait()/sigtimedwait() on the main thread.
Status prepare_process(std::initializer_list<int> signals, sigset_t* set);

}  // namespace ringmail::engine
