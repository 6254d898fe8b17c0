// Command-line options of ringmail-inject and their parsing with CLI11 (which throws; the
// exceptions stay inside parse_inject_options and become a usage error).
#pragma once

#include <optional>
#include <string>

#include "common/net.h"
#include "tools/inject/inject_session.h"
#include "tools/inject/message_builder.h"

namespace ringmail::inject {

struct InjectOptions {
  SocketAddress target;                // --target HOST:PORT
  std::optional<SocketAddress> source; // --source IP (port 0)
  uint64_t count = 1000;               // --count messages
  int connections = 20;                // --connections concurrent
  int threads = 1;                     // --threads event loops
  double timeout_s = 60;               // --timeout per reply (and per connect)
  double duration_s = 0;               // --duration wall-clock cap; 0 = none
  int max_retries = 10;                // --max-retries consecutive failed connections per slot
  std::string log_path;                // --log FILE; empty = none
  bool quiet = false;                  // --quiet: no progress line
  bool json = false;                   // --json: summary as one JSON object
  MessageSpec message;                 // --size, --rcpts, --from, --to, --domains, --8bit
  SessionConfig session;               // --ehlo, --pipelining, --per-connection
};

// Parses argv. Returns nullopt with *exit_code set when the program should exit now: 0 after
// --help, 2 on a usage error (the message is already printed).
std::optional<InjectOptions> parse_inject_options(int argc, char** argv, int* exit_code);

}  // namespace ringmail::inject
