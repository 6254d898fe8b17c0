// The client side of one SMTP connection of ringmail-inject, as a state machine over bytes:
// feed it replies, it appends commands and message data to its output and reports each
// message's outcome to its host. It never sees a socket, a clock or a thread (the load loop
// in load_loop.cpp does the I/O), so it can be tested from transcripts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/inject/message_builder.h"
#include "tools/inject/smtp_reply.h"

namespace ringmail::inject {

// Reply code logged for a message whose connection broke before its final reply.
inline constexpr int kNoReplyCode = 0;

// The final outcome of one message, reported once per claimed message.
struct MessageOutcome {
  uint64_t number = 0;         // message number from SessionHost::claim_message
  int code = kNoReplyCode;     // final reply code, or 0 when the connection broke first
  std::string_view message_id; // "<...@inject.local>"
  std::string_view queue_id;   // from "queued as ID", or empty
  int64_t latency_ns = -1;     // end-of-data to final reply; -1 when DATA was never sent
};

// What a session needs from the load loop that runs it.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual std::optional<uint64_t> claim_message() = 0;  // next message to send, or none left
  virtual std::string_view date_header() = 0;           // current RFC 5322 date
  virtual void message_done(const MessageOutcome& outcome) = 0;
};

// Settings shared by every session of a run.
struct SessionConfig {
  std::string ehlo_name = "inject.local";  // EHLO/HELO argument
  bool want_pipelining = false;            // pipeline MAIL+RCPT+DATA when PIPELINING is offered
  int per_connection = 100;                // messages per connection before QUIT; 0 = unlimited
  bool starttls = false;                   // STARTTLS after EHLO, EHLO again; fail if not offered
};

// What the connection should do after an event.
enum class SessionStatus {
  kRunning,   // keep the connection; send output() if non-empty
  kFinished,  // the session ended cleanly (QUIT answered or closed after QUIT)
  kFailed,    // the connection failed (refused greeting, 421, broken, timeout, garbage)
  kStartTls,  // STARTTLS got its 220: start the TLS handshake now; the rest of the received bytes
              // were discarded; call on_tls_established() when the handshake is done
};

class InjectSession {
 public:
  // The reply each queued command waits for. Order matters only for kStepNames.
  enum class Step : uint8_t { kGreeting, kEhlo, kHelo, kStartTls, kMail, kRcpt, kData, kDot, kRset, kQuit, kCount };

  InjectSession(const SessionConfig& config, MessageBuilder& builder, SessionHost& host);

  // A new TCP connection is up; the server speaks first.
  void on_connected();
  // Bytes arrived at time now_ns (any monotonic nanosecond clock).
  SessionStatus on_bytes(std::string_view bytes, int64_t now_ns);
  // The TLS handshake after kStartTls completed: sends EHLO again.
  void on_tls_established();
  // The peer closed or the socket failed. Fails any message in flight with code 0.
  SessionStatus on_disconnected();
  // No reply within the timeout. Fails any message in flight with code 0.
  SessionStatus on_timeout();

  // Bytes waiting to be sent; the caller sends a prefix and calls consume_output.
  std::string_view output() const { return std::string_view(out_).substr(out_sent_); }
  void consume_output(size_t n);
  // Whether a reply is outstanding (the connection timeout applies only then).
  bool awaiting_reply() const { return head_ < pending_.size(); }
  // Messages finished with a 2xx reply on this connection.
  int accepted_on_connection() const { return accepted_on_connection_; }
  // Why the last kFailed status happened ("421 4.3.2 shutting down", "timeout ...").
  const std::string& failure_reason() const { return failure_reason_; }
  static std::string_view step_name(Step s);

 private:
  // One message transaction.
  struct Transaction {
    bool active = false;        // a message is claimed and not yet reported
    bool pipelined = false;     // MAIL, RCPTs and DATA went out together
    bool mail_failed = false;   // MAIL FROM was refused
    bool discard_data = false;  // 354 came although the envelope failed: sent an empty body
    uint64_t number = 0;        // message number
    int next_rcpt = 0;          // lock-step: next RCPT index to send
    int accepted_rcpts = 0;     // RCPTs answered 2xx
    int failure_code = 0;       // first failing MAIL/RCPT code, 0 if none
    int64_t data_sent_ns = -1;  // when the body and final dot were queued
  };

  SessionStatus handle_reply(const Reply& reply, int64_t now_ns);
  void expect(Step s) { pending_.push_back(s); }
  void send_line(std::string_view a, std::string_view b = {}, std::string_view c = {});
  void send_rcpt(int index);
  void next_transaction();
  void begin_transaction(uint64_t number);
  void finish_message(int code, std::string_view queue_id, int64_t latency_ns);
  void after_failed_transaction();
  SessionStatus fail(std::string_view what, std::string_view detail = {});

  const SessionConfig& config_;  // run-wide settings
  MessageBuilder& builder_;      // this thread's message generator
  SessionHost& host_;            // message source and outcome sink
  ReplyReader reader_;           // reply assembly from received bytes
  std::vector<Step> pending_;    // replies expected, oldest at head_
  size_t head_ = 0;              // first pending reply not yet received
  std::string out_;              // commands and data not yet fully sent
  size_t out_sent_ = 0;          // prefix of out_ already sent
  std::string raw_message_;      // the current message before dot-stuffing
  std::string message_id_;       // its Message-ID
  std::string scratch_;          // reused for building command lines
  Capabilities caps_;            // from EHLO
  bool pipelining_ = false;      // pipeline this connection's transactions
  bool quitting_ = false;        // QUIT sent; a close is now clean
  bool tls_on_ = false;          // STARTTLS succeeded on this connection
  int started_on_connection_ = 0;   // messages claimed on this connection
  int accepted_on_connection_ = 0;  // of those, finished with 2xx
  Transaction tx_;               // the message in flight
  std::string failure_reason_;   // set by fail()
};

}  // namespace ringmail::inject
