// Fault injection for ringmail-sink: which RCPTs and DATAs get a chosen reply instead of 250, and
// which transactions lose their connection mid-DATA. Decisions are deterministic: a splitmix64
// stream seeded from --seed (and the worker id), drawn once per eligible event, so a test that
// sends the same commands in the same order sees the same faults. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ringmail::sink {

// One configurable reply, checked at start-up: "451 4.3.0 Try later" (code 2xx-5xx, text optional).
struct FaultReply {
  std::string line;           // the reply with its CRLF, ready to send; empty: no fault configured
  double rate = 0.0;          // fraction of eligible events that get it (0..1)
  std::string match;          // eligible only if the address contains this (empty: every event)
};

struct FaultConfig {
  FaultReply rcpt;            // instead of "250 2.1.5 Ok" for a RCPT (match: the recipient)
  FaultReply data;            // instead of "250 2.0.0 Ok: queued" (match: sender or any recipient)
  double drop_mid_data_rate = 0.0;  // fraction of DATAs after which the connection is cut, unanswered
  uint64_t seed = 1;          // --seed
};

// Validates and normalises "451 4.3.0 Try later" into "451 4.3.0 Try later\r\n".
Result<std::string> make_reply_line(std::string_view text);

class FaultInjector {
 public:
  FaultInjector(const FaultConfig& config, uint64_t stream);
  // The reply to use instead of 250 for this recipient, or null.
  const std::string* rcpt_fault(std::string_view recipient);
  // The reply to use instead of 250 at the end of DATA, or null.
  const std::string* data_fault(std::string_view mail_from, const std::vector<std::string>& rcpts);
  // True if this transaction's connection should be cut after part of its DATA.
  bool drop_mid_data();

 private:
  bool draw(double rate);     // next value of the stream below `rate`

  const FaultConfig& config_;
  uint64_t state_;            // splitmix64 state
};

}  // namespace ringmail::sink
