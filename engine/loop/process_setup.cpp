// Start-up steps shared by the daemon and the tools (see process_setup.h).
#include "engine/loop/process_setup.h"

#include <pthread.h>
#include <sys/resource.h>

#include "engine/loop/loop.h"

namespace ringmail::engine {

Status prepare_process(std::initializer_list<int> signals, sigset_t* set) {
  if (auto st = probe_io_uring(); !st) return st;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  sigemptyset(set);
  for (int s : signals) sigaddset(set, s);
  pthread_sigmask(SIG_BLOCK, set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return {};
}

}  // namespace ringmail::engine
