// The SMTP server session of the ringmail listener (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
// ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS, AUTH PLAIN/LOGIN): takes the bytes a client sent,
// returns the replies and decisions (send, commit a message, start TLS, close). It knows no
// sockets, timers, threads, TLS library or spool: the engine feeds it input and events and carries
// out its Actions. What it answers to bad input is listed in docs/smtp-listener.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/net.h"
#include "engine/smtp/data_decoder.h"
#include "queue/dsn.h"

namespace ringmail::smtp {

struct ServerLimits {
  size_t max_command_line = 512;          // bytes including CRLF (RFC 5321 §4.5.3.1.4)
  size_t max_text_line = 1000;            // bytes including CRLF, in DATA
  size_t max_recipients = 1000;           // per transaction; beyond: 452 4.5.3
  uint64_t max_message_size = 36700160;   // bytes of message data after dot-unstuffing (35 MiB); SIZE advertised
  unsigned max_errors = 20;               // bad commands before 421 and close (as Postfix smtpd_hard_error_limit); 0 = no limit
  std::chrono::seconds command_timeout{300};   // waiting for a command (RFC 5321 §4.5.3.2.7: 5 min)
  std::chrono::seconds data_block_timeout{180};// waiting for the next DATA bytes (§4.5.3.2.6 client side 3 min; use 3 min)
  std::chrono::seconds tls_handshake_timeout{60};// from our 220 to STARTTLS until the handshake completes
};

// What the listener offers beyond plain SMTP; decided at start-up from the daemon's flags.
struct ServerSecurity {
  bool tls_available = false;  // a certificate is loaded: STARTTLS is offered until TLS is active
  bool require_tls = false;    // MAIL before STARTTLS gets 530 5.7.0 (--require-tls)
  bool auth_available = false; // credentials are loaded: AUTH PLAIN LOGIN is offered once TLS is active
};

struct ServerConfig {
  std::string hostname;                   // our name in the greeting, EHLO reply and Received:
  ServerLimits limits;
  ServerSecurity security;                // STARTTLS, --require-tls, AUTH
};

// The TLS session the engine established after STARTTLS, as shown in the Received: header.
struct TlsInfo {
  std::string_view version;               // "TLSv1.3"
  std::string_view cipher;                // "TLS_AES_256_GCM_SHA384"
};

struct PeerInfo {
  SocketAddress remote;                   // the client's address
  bool relay_allowed = false;             // remote is in --relay-networks (decided by the engine)
};

struct Envelope {
  std::string helo;                       // name given in EHLO/HELO
  bool esmtp = false;                     // EHLO (true) or HELO
  std::string mail_from;                  // reverse-path without <>; empty = null sender
  std::vector<std::string> rcpt_to;       // forward-paths without <>, in order accepted
  bool body_8bitmime = false;             // BODY=8BITMIME given
  bool smtputf8 = false;                  // SMTPUTF8 given
  uint64_t declared_size = 0;             // SIZE= value, 0 if absent
  queue::dsn::MailParams dsn;             // RET=, ENVID= (RFC 3461)
  std::vector<queue::dsn::RcptParams> rcpt_dsn;  // NOTIFY=, ORCPT= per accepted recipient (parallel to rcpt_to)
};

// Supplied by the engine; called by the session.
class ServerHooks {
 public:
  virtual ~ServerHooks() = default;
  // A new queue ID for the transaction that just started (called once per accepted MAIL).
  virtual std::string new_queue_id() = 0;
  // Wall-clock time for the Received: header date.
  virtual WallTime now() = 0;
  // AUTH: are these the credentials of a known user? Called on the loop thread once per AUTH attempt
  // (a password-hash check: a few milliseconds of CPU). The password must not be logged or kept.
  // The default knows nobody.
  virtual bool verify_credentials(std::string_view user, std::string_view password) {
    (void)user;
    (void)password;
    return false;
  }
  // A transaction command was refused (4xx/5xx to MAIL or RCPT, or to the message at its final
  // dot): `command` is "MAIL", "RCPT" or "DATA", `argument` the command's argument as the client sent
  // it (empty for DATA), `reply` the first reply line without CRLF. For the tracking log (Postfix's
  // "NOQUEUE: reject" lines). The default ignores it.
  virtual void on_reject(std::string_view command, std::string_view argument, std::string_view reply) {
    (void)command;
    (void)argument;
    (void)reply;
  }
};

enum class Action {
  kNeedInput,   // send `out` (if non-empty), then feed more input when it arrives
  kCommit,      // a message is complete: commit envelope()+message() durably, then call on_commit()
  kClose,       // send `out`, then close the connection (after QUIT's 221, a 421, or too many errors)
  kStartTls,    // send `out` (the 220 to STARTTLS) in clear, then run the TLS handshake on the connection;
                // every later byte is TLS. Report success with on_tls_established(); on failure just close.
};

class ServerSession {
 public:
  // config and hooks must outlive the session; peer is copied.
  ServerSession(const ServerConfig& config, const PeerInfo& peer, ServerHooks& hooks);
  // Appends the 220 greeting to out.
  void start(std::string& out);
  // Appends received bytes to the session's input and processes as many complete commands / data as possible,
  // appending every reply to `out` in order (pipelined commands are answered in order, in one batch).
  // Stops early and returns kCommit when a message is complete; the unprocessed input stays buffered inside.
  // Called again before on_commit(), it only buffers (at most kMaxPendingInput bytes; beyond that the
  // session answers the commit and then closes with 421) and returns kCommit again.
  Action on_input(std::string_view bytes, std::string& out);
  // Valid between kCommit and on_commit(): the envelope and the message as it must be stored:
  // the Received: header line(s) followed by the unstuffed message data with CRLF line ends, without the final ".".
  const Envelope& envelope() const { return envelope_; }
  std::string_view message() const { return message_; }
  const std::string& queue_id() const { return queue_id_; }  // the ID from new_queue_id() for this transaction
  // The engine reports the commit outcome: ok → "250 2.0.0 Ok: queued as <ID>"; failed → "451 4.3.0 ..." (text
  // from `error`). Then continues with buffered input exactly like on_input("") and returns the next action.
  Action on_commit(bool ok, std::string_view error, std::string& out);
  // The current timeout has expired: appends "421 4.4.2 <host> Error: timeout exceeded" and returns kClose.
  Action on_timeout(std::string& out);
  // The engine is shutting down: appends "421 4.3.2 <host> Service shutting down" and returns kClose.
  Action on_shutdown(std::string& out);
  // STARTTLS (RFC 3207): the handshake that followed kStartTls succeeded. The session forgets the
  // client's EHLO and any transaction, and waits for a new EHLO. Input pipelined after STARTTLS in
  // clear text was already discarded (the CVE-2011-0411 defence). Returns kNeedInput.
  Action on_tls_established(const TlsInfo& info, std::string& out);
  // How long to wait for input from now (command, data-block or TLS handshake timeout depending on state).
  std::chrono::seconds timeout() const;
  bool tls_handshake_pending() const { return state_ == State::kTlsHandshake; }  // between kStartTls and on_tls_established()
  bool tls_active() const { return tls_active_; }          // STARTTLS completed
  bool authenticated() const { return authenticated_; }    // AUTH succeeded (grants relaying)
  std::string_view auth_user() const { return auth_user_; }// the authenticated user name, or empty
  bool in_data() const;                   // between 354 and the end of data
  // Counters for logs/tests: messages accepted (on_commit ok) in this session.
  unsigned messages_committed() const { return messages_committed_; }

  // Additions for the engine, logs and tests.
  bool commit_pending() const { return state_ == State::kCommitWait; }  // between kCommit and on_commit()
  size_t buffered_input() const { return input_.size(); }  // unprocessed bytes held (bounded)
  unsigned error_count() const { return errors_; }          // bad commands since the last committed message
  std::string_view state_name() const;                      // "command", "data", ... for logs
  // Input accepted while a commit is pending, beyond what was already buffered with the message end.
  static constexpr size_t kMaxPendingInput = 64 * 1024;
  // A message buffer grown beyond this is released after its transaction instead of kept for reuse.
  static constexpr size_t kKeepMessageCapacity = 1024 * 1024;

 private:
  enum class State : uint8_t {
    kNeedHelo,    // greeted, waiting for EHLO/HELO
    kReady,       // EHLO/HELO done, no transaction
    kMail,        // MAIL accepted, no recipient accepted yet
    kRcpt,        // at least one recipient accepted
    kData,        // between 354 and the final dot
    kCommitWait,  // a complete message waits for on_commit()
    kClosed,      // the session ended (221 or 421 sent); input is ignored
    kTlsHandshake,// 220 to STARTTLS sent; the engine runs the handshake, then on_tls_established()
    kAuthPlain,   // "334 " sent after AUTH PLAIN; waiting for the base64 PLAIN message
    kAuthUser,    // "334 VXNlcm5hbWU6" sent after AUTH LOGIN; waiting for the user name
    kAuthPassword,// "334 UGFzc3dvcmQ6" sent; waiting for the password
    kCount,
  };
  enum class Wait : uint8_t { kCommand, kDataBlock, kHandshake };  // which timeout applies
  struct StateFacts {
    std::string_view name;  // for logs
    Wait wait;              // which limit timeout() returns
  };
  static const StateFacts& facts(State s);

  using CommandHandler = void (ServerSession::*)(std::string_view argument, std::string& out);
  static CommandHandler handler_for(uint8_t verb);

  size_t process(std::string_view input, std::string& out);
  void handle_line(std::string_view line, std::string& out);
  void finish_data(std::string& out);
  void reset_transaction();
  Action current_action() const;
  Action after_processing();
  void build_ehlo_reply();
  bool in_auth_exchange() const;
  void auth_response(std::string_view line, std::string& out);
  void auth_plain(std::string_view base64, std::string& out);
  void auth_finish(std::string_view user, std::string_view password, std::string& out);
  void auth_abort();  // back to kReady, secrets wiped

  void reply(std::string& out, std::string_view line);
  // Calls hooks_.on_reject when the reply appended to `out` since `mark` is a 4xx/5xx.
  void report_reject(std::string_view command, std::string_view argument, const std::string& out, size_t mark);
  void reply_error(std::string& out, std::string_view line);  // reply + count_error
  void count_error(std::string& out);  // counts a 5xx reply already written; 421 at the limit
  void close_with(std::string& out, std::string_view code_and_status, std::string_view text);

  void cmd_ehlo(std::string_view argument, std::string& out);
  void cmd_helo(std::string_view argument, std::string& out);
  void cmd_mail(std::string_view argument, std::string& out);
  void cmd_rcpt(std::string_view argument, std::string& out);
  void cmd_data(std::string_view argument, std::string& out);
  void cmd_rset(std::string_view argument, std::string& out);
  void cmd_noop(std::string_view argument, std::string& out);
  void cmd_quit(std::string_view argument, std::string& out);
  void cmd_vrfy(std::string_view argument, std::string& out);
  void cmd_expn(std::string_view argument, std::string& out);
  void cmd_help(std::string_view argument, std::string& out);
  void cmd_starttls(std::string_view argument, std::string& out);
  void cmd_auth(std::string_view argument, std::string& out);
  void cmd_unknown(std::string_view argument, std::string& out);

  const ServerConfig& config_;     // our name and limits
  PeerInfo peer_;                  // who is talking to us
  ServerHooks& hooks_;             // queue IDs and the time
  std::string peer_literal_;       // "[192.0.2.1]" for Received:
  std::string ehlo_reply_;         // the complete multi-line EHLO reply, built once
  State state_ = State::kNeedHelo; // where the dialogue is
  Envelope envelope_;              // the current transaction (helo kept across transactions)
  std::string queue_id_;           // ID of the current transaction, from hooks_.new_queue_id()
  std::string message_;            // Received: header + unstuffed data; reused across transactions
  DataDecoder decoder_;            // DATA phase state
  std::string input_;              // received bytes not processed yet
  size_t pending_limit_ = 0;       // cap on input_ while a commit is pending
  bool discarding_line_ = false;   // inside an over-long command line: drop bytes up to LF
  bool rcpt_attempted_ = false;    // a RCPT command was given in this transaction (even refused)
  bool input_overflow_ = false;    // input was dropped while a commit was pending: close after it
  unsigned errors_ = 0;            // 5xx replies to commands since the last committed message
  unsigned messages_committed_ = 0;// on_commit(true) count
  bool tls_active_ = false;        // STARTTLS completed
  std::string tls_version_;        // of the TLS session, for Received: (sanitised)
  std::string tls_cipher_;         // of the TLS session, for Received: (sanitised)
  bool authenticated_ = false;     // AUTH succeeded: the client may relay
  std::string auth_user_;          // LOGIN: the user name between the two steps; then the authenticated user
  std::string auth_scratch_;       // decoded AUTH responses (holds passwords: wiped after each use)
};

}  // namespace ringmail::smtp
