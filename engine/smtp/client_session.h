// The outbound SMTP client session (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
// ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN): a state machine on bytes and events for one
// connection to one next hop. STARTTLS is an ordinary state: the session asks the engine to start
// the handshake (kStartTls) and hears back through on_tls_ready()/on_tls_failed().
// It takes the server's bytes and transport events from the engine and returns the bytes to send
// and what to do next; work and results go through ClientHooks. It knows no sockets, timers,
// threads or spool, and never throws. Behaviour and the outcome policy: docs/smtp-client.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/smtp/client_capabilities.h"
#include "engine/smtp/client_config.h"
#include "engine/smtp/client_dot_stuffer.h"
#include "engine/smtp/client_transaction.h"
#include "engine/smtp/delivery_outcome.h"
#include "engine/smtp/reply_parser.h"

namespace ringmail::smtp {

// What one protocol-log line (ClientHooks::on_transcript) is.
enum class TranscriptKind : uint8_t {
  kSent,      // a command line as sent, without its CRLF; AUTH credentials replaced by "****"
  kReceived,  // one line of a server reply, "250-text" or "250 2.0.0 text" (the password masked as in outcomes)
  kNote,      // something sent without its lines: the message data ("message data: N octets")
};

// Implemented by the engine; called by the session from inside its event methods. A hook must not
// destroy the session or call back into it: act on the returned ClientAction afterwards instead.
class ClientHooks {
 public:
  virtual ~ClientHooks() = default;
  // The next message for this connection's next hop, or null when there is none now. The
  // transaction must stay valid (and unchanged) until on_transaction_done() for it.
  virtual const OutboundTransaction* next_transaction() = 0;
  // The result of this attempt for txn.recipients[rcpt_index]; called exactly once per recipient of
  // every transaction taken, in no guaranteed order. See disposition() for what to do with it.
  virtual void on_recipient_result(const OutboundTransaction& txn, size_t rcpt_index, const DeliveryOutcome& outcome) = 0;
  // Every recipient of txn has its result; the session no longer refers to txn.
  virtual void on_transaction_done(const OutboundTransaction& txn) = 0;
  // Why the session ended; called exactly once, just before an event method returns kClose (or from
  // on_connection_lost). kSuccess: it ended normally (QUIT). kTryNextHost: this host could not be
  // used (connect failure, greeting/EHLO refused, 421) — connect to the next host for the recipients
  // that got kTryNextHost, or defer them if none is left.
  virtual void on_session_result(const DeliveryOutcome& outcome) = 0;
  // The dialogue, line by line in wire order, for a protocol log; called only when
  // ClientConfig::transcript is set. Message data is never passed, only its size (kNote), and
  // neither are the AUTH credentials. A kReceived line holds the server's bytes as they came (any
  // octet but LF, a bare CR included): escape it before writing it anywhere.
  virtual void on_transcript(TranscriptKind kind, std::string_view line) {
    (void)kind;
    (void)line;
  }
};

enum class ClientAction : uint8_t {
  kNeedInput,  // send `out` (if non-empty), then wait for server bytes, timeout() or offer()
  kSendMore,   // send `out`, then call on_output_drained() once it is written (message data is streaming)
  kClose,      // send `out` (if non-empty), then close; the session is finished
  kStartTls,   // the server said 220 to STARTTLS: start the TLS handshake now (nothing to send; the
               // rest of the server's clear-text input is discarded), then on_tls_ready()/on_tls_failed().
               // Returned once; until the handshake ends every other event returns kNeedInput.
};

class ClientSession {
 public:
  // config and hooks must outlive the session.
  ClientSession(const ClientConfig& config, ClientHooks& hooks);
  ~ClientSession();  // wipes the copies of the credentials it made
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The TCP (and later TLS) connection is up: wait for the greeting. Sends nothing.
  ClientAction on_connected(std::string& out);
  // Bytes from the server, in chunks split anywhere. Appends whatever must be sent next to `out`.
  ClientAction on_input(std::string_view bytes, std::string& out);
  // The previous kSendMore output was written: appends the next chunk of message data (at most
  // about config.max_output_chunk octets), or the end of data and then waits for the reply.
  ClientAction on_output_drained(std::string& out);
  // timeout() has passed without progress. While idle this sends QUIT; otherwise the session ends
  // (outcomes by stage) and returns kClose without sending anything.
  ClientAction on_timeout(std::string& out);
  // The connection failed, was closed by the server, or could not be made (before on_connected).
  // Pending recipients get their outcomes; the session is finished. `error` is for the log text.
  void on_connection_lost(std::string_view error);
  // The TLS handshake after kStartTls finished: EHLO again (RFC 3207 §4.2: forget what was learnt).
  ClientAction on_tls_ready(std::string& out);
  // The TLS handshake failed (or the engine could not start it); `why` says which check failed.
  // The session ends (kClose; nothing can be sent on a broken TLS stream).
  ClientAction on_tls_failed(std::string_view why);
  // The engine has new work for this idle session: asks next_transaction() again. Ignored (returns
  // the current action) when the session is not idle.
  ClientAction offer(std::string& out);
  // The engine is stopping. Idle: QUIT. Inside a transaction (MAIL sent, up to the end-of-data
  // reply, or the RSET after it): finish it, then QUIT instead of taking more work — the message
  // may already be at the server, and cutting now would deliver it again after the restart.
  // Before any transaction, or with `now` (the grace period is over): end at once as if the
  // connection were lost.
  ClientAction shutdown(std::string& out, bool now = false);
  bool draining() const { return draining_; }

  // How long to wait from now for the current stage (RFC 5321 §4.5.3.2 values from ClientConfig).
  std::chrono::seconds timeout() const;
  bool finished() const { return state_ == State::kClosed; }
  bool idle() const { return state_ == State::kIdle; }
  std::string_view state_name() const;
  ClientStage stage() const;
  const ServerCapabilities& capabilities() const { return caps_; }
  unsigned transactions_sent() const { return transactions_sent_; }  // MAIL commands sent on this connection
  bool tls_active() const { return tls_active_; }                    // the handshake completed
  bool authenticated() const { return authenticated_; }              // AUTH got 235
  // STARTTLS was offered and the policy wanted it, but the server refused it (4xx/5xx), so the
  // session went on in plain text (opportunistic only).
  bool starttls_refused() const { return starttls_refused_; }

 private:
  enum class State : uint8_t {
    kConnecting,  // before on_connected (a greeting arriving now is taken all the same)
    kGreeting,    // waiting for 220
    kEhlo,        // EHLO sent
    kHelo,        // HELO sent after EHLO got 5xx
    kStartTls,    // STARTTLS sent, waiting for 220
    kHandshake,   // 220 received; the engine runs the TLS handshake (server bytes are not ours)
    kAuth,        // AUTH sent (LOGIN: also the username/password answers), waiting for 235 or 334
    kMail,        // MAIL sent (pipelined: with all RCPTs and DATA)
    kRcpt,        // waiting for the reply to RCPT number rcpt_replies_
    kData,        // waiting for 354
    kBody,        // streaming message data (kSendMore)
    kDot,         // final dot sent, waiting for the verdict
    kRset,        // RSET sent after a failed transaction
    kIdle,        // out of work, waiting for offer() up to config.idle_timeout
    kQuit,        // QUIT sent: nothing more is ever sent
    kClosed,      // finished
    kCount,
  };
  enum class RcptState : uint8_t {
    kPending,   // no final result yet, not accepted
    kAccepted,  // RCPT got 2xx; the end-of-data reply decides
    kDone,      // result reported
  };
  using ReplyHandler = void (ClientSession::*)(const Reply& reply, std::string& out);
  struct StateFacts {
    std::string_view name;                        // for logs
    ClientStage stage;                            // for classification
    std::chrono::seconds ClientTimeouts::*timeout;  // which timeout applies; null: idle or none
    ReplyHandler on_reply;                        // null: a reply is not expected (buffered or ignored)
  };
  static const StateFacts& facts(State s);

  // Reply handlers, one per state that waits for a reply.
  void on_greeting_reply(const Reply& reply, std::string& out);
  void on_ehlo_reply(const Reply& reply, std::string& out);
  void on_helo_reply(const Reply& reply, std::string& out);
  void on_starttls_reply(const Reply& reply, std::string& out);
  void on_auth_reply(const Reply& reply, std::string& out);
  void on_mail_reply(const Reply& reply, std::string& out);
  void on_rcpt_reply(const Reply& reply, std::string& out);
  void on_data_reply(const Reply& reply, std::string& out);
  void on_dot_reply(const Reply& reply, std::string& out);
  void on_rset_reply(const Reply& reply, std::string& out);
  void on_idle_reply(const Reply& reply, std::string& out);
  void on_quit_reply(const Reply& reply, std::string& out);

  // Enter handlers: send the state's command(s) and switch to it.
  void enter_ehlo(std::string& out);
  void enter_helo(std::string& out);
  void enter_starttls(std::string& out);
  void enter_auth(std::string& out);
  // After EHLO/HELO: STARTTLS, AUTH or the first transaction, as the policy and capabilities say.
  void after_greeting_exchange(std::string& out);
  void enter_mail(std::string& out);
  void send_rcpt(size_t index, std::string& out);
  void enter_data(std::string& out);
  void enter_body(std::string& out);
  void enter_rset(std::string& out);
  void enter_quit(std::string& out);
  // Takes transactions until one is sent, none is left (idle or QUIT) or the message limit is hit.
  void start_next_transaction(std::string& out);
  bool in_transaction() const;
  // Local checks against the capabilities; true if txn was refused (all its recipients reported).
  bool refuse_locally(const OutboundTransaction& txn);

  void process(std::string_view input, std::string& out);
  // Protocol log (config_.transcript): the command lines appended to `out` since `from`; a reply.
  void sent(const std::string& out, size_t from);
  void command(std::string& out, std::string_view line);  // a fixed command line: appended and reported
  void sent_secret(std::string_view shown);
  void received(const Reply& reply);
  void data_sent();
  void report(size_t index, const DeliveryOutcome& outcome);
  const DeliveryOutcome& without_secret(const DeliveryOutcome& outcome);
  void report_all(RcptState which, const DeliveryOutcome& outcome);
  void end_transaction();
  // Ends the session: pending recipients get `why`, then on_session_result(why). `quit`: the server
  // is still in command mode and talking, so say QUIT (without waiting for its reply).
  void end_session(const DeliveryOutcome& why, bool quit, std::string& out);
  void end_session_quietly(const DeliveryOutcome& why);
  ClientAction current_action() const;

  const ClientConfig& config_;         // timeouts and limits
  ClientHooks& hooks_;                 // work in, results out
  State state_ = State::kConnecting;   // where the dialogue is
  ReplyParser parser_;                 // server bytes → replies
  ServerCapabilities caps_;            // from the EHLO reply (all false after HELO)
  DotStuffer stuffer_;                 // message data being sent
  std::string input_;                  // server bytes received while sending message data (bounded)
  const OutboundTransaction* txn_ = nullptr;  // the transaction in progress, null between transactions
  std::vector<RcptState> rcpt_state_;  // per recipient of txn_; reused
  size_t rcpt_count_ = 0;              // recipients of txn_ sent in this transaction (≤ cap)
  size_t rcpt_replies_ = 0;            // RCPT replies received so far
  size_t accepted_ = 0;                // recipients accepted by RCPT
  bool mail_accepted_ = false;         // MAIL got 2xx
  bool pipelined_ = false;             // this transaction's MAIL/RCPT/DATA went out as one group
  DeliveryOutcome outcome_;            // the last reply's classification; reused so replies allocate nothing
  DeliveryOutcome scrubbed_;           // an outcome whose reply echoed the AUTH password, with it masked
  std::vector<std::string> secrets_;   // the password, its base64 and PLAIN's blob: masked wherever echoed
  bool session_reported_ = false;      // on_session_result was called
  unsigned transactions_sent_ = 0;     // MAIL commands sent on this connection
  bool draining_ = false;  // shutdown() came during a transaction: QUIT after it
  bool tls_active_ = false;            // TLS handshake completed
  bool starttls_refused_ = false;      // the server refused STARTTLS (opportunistic: go on in clear)
  bool authenticated_ = false;         // AUTH succeeded
  bool auth_login_ = false;            // the AUTH in progress is LOGIN (username/password steps)
  uint8_t auth_step_ = 0;              // LOGIN: 334 challenges answered so far
};

}  // namespace ringmail::smtp
