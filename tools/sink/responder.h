// The SMTP receiving side of ringmail-sink as a pure state machine: bytes in, replies out. It is
// deliberately permissive (it accepts what any client sends, in any order that makes sense) and it
// injects the faults chosen by a FaultInjector. Replies to pipelined commands come out in order.
// No sockets, timers or files here: the connection glue and the recorder live elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/sink/dot_decoder.h"
#include "tools/sink/fault_injector.h"

namespace ringmail::sink {

struct ResponderConfig {
  std::string hostname = "ringmail-sink";  // in the greeting and the EHLO reply
  std::string greeting_reply;        // a refusal ("554 5.3.2 No service\r\n"); empty: 220 greeting
  bool pipelining = true;            // advertise PIPELINING
  bool eight_bit_mime = true;        // advertise 8BITMIME
  bool smtputf8 = true;              // advertise SMTPUTF8
  uint64_t max_message_size = 0;     // SIZE limit in bytes; 0: unlimited
  bool keep_body = false;            // collect message bytes (for --record / --save-dir)
  bool starttls = false;             // advertise and accept STARTTLS (--tls-cert/--tls-key given)
};

// One accepted (or about to be accepted) transaction.
struct Transaction {
  std::string mail_from;             // reverse-path without <>, "" for the null sender
  std::vector<std::string> rcpts;    // accepted recipients, without <>
  std::string body;                  // unstuffed message bytes, if ResponderConfig::keep_body
  uint64_t size = 0;                 // unstuffed message size in bytes
};

enum class FaultKind { kRcpt, kData, kDropMidData, kOversize };

// What the responder tells its owner. Called synchronously from feed().
class ResponderHooks {
 public:
  virtual uint64_t next_message_number() = 0;                        // n in "queued as SINK<n>"
  virtual void message_accepted(const Transaction& t, uint64_t number) = 0;  // before its 250
  virtual void fault_injected(FaultKind kind) = 0;
 protected:
  ~ResponderHooks() = default;
};

enum class Verdict {
  kContinue,        // keep reading
  kClose,           // send the replies produced so far, then close (QUIT, 421)
  kDrop,            // close now without replying (injected mid-DATA drop)
  kStartTls,        // send the replies so far in clear (the 220), then start the TLS handshake; the
                    // rest of this input was discarded (RFC 3207 §4.2); call tls_started() next
};

class Responder {
 public:
  static constexpr size_t kMaxLine = 4096;  // longer command lines are answered 500 and discarded

  Responder(const ResponderConfig& config, FaultInjector& faults, ResponderHooks& hooks)
      : config_(config), faults_(faults), hooks_(hooks) {}

  // The greeting (or the configured refusal).
  Verdict start(std::string& out);
  // Consumes every byte of `in`, appending replies to `out`. After kClose or kDrop the rest of the
  // input is ignored and feed() must not be called again. After kStartTls the rest of the input is
  // ignored too; feed() continues with the plaintext once the handshake is under way.
  Verdict feed(std::string_view in, std::string& out);
  // The connection switched to TLS: forget every command and partial line from before (the client
  // starts again with EHLO) and stop advertising STARTTLS.
  void tls_started();
  bool in_data() const { return state_ == State::kData; }
  bool tls_on() const { return tls_on_; }

 private:
  enum class State : uint8_t {
    kCommand,         // reading command lines
    kData,            // reading message bytes after 354
    kRefused,         // greeting refused: only QUIT is useful (RFC 5321 §3.1)
    kDone,            // closed or dropped
  };
  Verdict command(std::string_view line, std::string& out);
  Verdict starttls(std::string_view args, std::string& out);
  Verdict mail(std::string_view args, std::string& out);
  void rcpt(std::string_view args, std::string& out);
  Verdict data(std::string& out);
  Verdict end_of_data(std::string& out);
  void ehlo(std::string_view args, std::string& out);
  void reset_transaction();

  const ResponderConfig& config_;
  FaultInjector& faults_;
  ResponderHooks& hooks_;
  State state_ = State::kCommand;   // see the enum
  bool in_transaction_ = false;     // MAIL accepted, not yet ended
  bool drop_this_data_ = false;     // an injected drop is due once DATA bytes arrive
  bool line_too_long_ = false;      // discarding the rest of an over-long command line
  bool tls_on_ = false;             // STARTTLS done on this connection
  std::string line_;                // a partial command line carried between feed() calls
  Transaction txn_;                 // the current transaction
  DotDecoder dot_;                  // DATA decoding
};

}  // namespace ringmail::sink
