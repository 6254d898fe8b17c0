// Command-line flags of ringmail-sink (CLI11; `--help` documents each one) and their checks.
// Parsing may throw inside CLI11; parse_sink_options() catches and turns that into an exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/net.h"
#include "tools/sink/fault_injector.h"
#include "tools/sink/responder.h"

namespace ringmail::sink {

struct SinkOptions {
  std::vector<SocketAddress> listen;   // --listen (repeatable)
  unsigned workers = 1;                // --workers: threads, each with its own ring
  std::string ready_file;              // --ready-file: bound addresses, one per line
  std::string record_path;             // --record: JSON line per accepted message
  std::string save_dir;                // --save-dir: DIR/<n>.eml per accepted message
  std::string stats_file;              // --stats-file: counters, rewritten every second
  double stats_interval_s = 0;         // --stats-interval: counters line to stdout; 0 = off
  uint64_t exit_after = 0;             // --exit-after: exit 0 after N accepted messages; 0 = never
  unsigned delay_ms = 0;               // --delay-ms before every reply (batch)
  bool quiet = false;                  // --quiet: no start-up/summary chatter on stderr
  std::string tls_cert;                // --tls-cert: PEM chain; with --tls-key, STARTTLS is offered
  std::string tls_key;                 // --tls-key: PEM private key of --tls-cert
  ResponderConfig responder;           // protocol settings (EHLO keywords, size, greeting)
  FaultConfig faults;                  // injected faults
};

// Returns the options, or nullopt with *exit_code set (0 after --help, 2 on a bad flag).
std::optional<SinkOptions> parse_sink_options(int argc, char** argv, int* exit_code);

}  // namespace ringmail::sink
