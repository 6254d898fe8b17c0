// The SMTP server session state machine: command dispatch, transaction rules, replies, DATA and the
// commit hand-off, STARTTLS and the AUTH exchange. Parsing lives in command_parser, the DATA grammar
// in data_decoder, base64/PLAIN in sasl, the trace header in received_header. See server_session.h
// and docs/smtp-listener.md.
#include "engine/smtp/server_session.h"

#include <fmt/format.h>

#include <array>
#include <iterator>

#include "common/log.h"
#include "common/strings.h"
#include "engine/smtp/command_parser.h"
#include "engine/smtp/received_header.h"
#include "engine/smtp/sasl.h"

namespace ringmail::smtp {
namespace {

// The service extensions we always announce after EHLO, in order. The SIZE line gets the limit
// appended. "STARTTLS" (before TLS, with a certificate) and "AUTH PLAIN LOGIN" (over TLS, with
// credentials) follow them.
constexpr std::array<std::string_view, 6> kExtensions{
    "PIPELINING",           // RFC 2920
    "SIZE",                 // RFC 1870
    "8BITMIME",             // RFC 6152
    "ENHANCEDSTATUSCODES",  // RFC 2034
    "SMTPUTF8",             // RFC 6531
    "DSN",                  // RFC 3461: RET/ENVID on MAIL, NOTIFY/ORCPT on RCPT, kept in the spool
};

constexpr size_t kMaxErrorText = 200;  // octets of an engine error message shown in a 451 reply
constexpr size_t kMaxLoggedName = 64;  // octets of a client-supplied user name shown in logs
constexpr size_t kMaxTlsName = 64;     // octets of a TLS version or cipher name kept for Received:

// RFC 4954 §4: the LOGIN mechanism's challenges are "Username:" and "Password:" in base64.
constexpr std::string_view kLoginUserChallenge = "334 VXNlcm5hbWU6";
constexpr std::string_view kLoginPasswordChallenge = "334 UGFzc3dvcmQ6";

// A TLS version or cipher name from the engine, reduced to the characters such names use, so it
// cannot break the Received: header.
std::string tls_name(std::string_view text) {
  std::string s;
  for (char c : text.substr(0, kMaxTlsName)) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '/';
    if (ok) s += c;
  }
  return s.empty() ? std::string("unknown") : s;
}

// A client-chosen user name as it may appear in a log line: printable ASCII only, bounded.
std::string loggable_name(std::string_view name) {
  std::string s;
  for (char c : name.substr(0, kMaxLoggedName)) s += (c > 32 && c < 127) ? c : '?';
  if (name.size() > kMaxLoggedName) s += "...";
  return s;
}

// Ends the reply line that starts at out[start]. Every line is printable ASCII and at most 512
// octets with its CRLF (RFC 5321 §4.5.3.1.5), whatever text it echoes (a client's bad parameter
// value, the engine's error): longer text is cut with "...", control octets become spaces and
// 8-bit ones '?'. Found by tests/fuzz/server_session_fuzz (a 571-octet 501 reply with 8-bit octets).
void end_reply_line(std::string& out, size_t start) {
  constexpr size_t kMaxText = 510;  // 512 with the CRLF
  if (out.size() - start > kMaxText) {
    out.resize(start + kMaxText - 3);
    out.append("...");
  }
  for (size_t i = start; i < out.size(); ++i) {
    auto c = static_cast<unsigned char>(out[i]);
    if (c < 0x20 || c == 0x7f) out[i] = ' ';
    else if (c > 0x7f) out[i] = '?';
  }
  out.append("\r\n");
}

void append_reply(std::string& out, std::string_view line) {
  size_t start = out.size();
  out.append(line);
  end_reply_line(out, start);
}

template <typename... Args>
void append_reply_fmt(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  size_t start = out.size();
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
  end_reply_line(out, start);
}

}  // namespace

const ServerSession::StateFacts& ServerSession::facts(State s) {
  static constexpr std::array<StateFacts, static_cast<size_t>(State::kCount)> kFacts{{
      {"need-helo", Wait::kCommand},
      {"ready", Wait::kCommand},
      {"mail", Wait::kCommand},
      {"rcpt", Wait::kCommand},
      {"data", Wait::kDataBlock},
      {"commit-wait", Wait::kCommand},
      {"closed", Wait::kCommand},
      {"tls-handshake", Wait::kHandshake},
      {"auth-plain", Wait::kCommand},
      {"auth-login-user", Wait::kCommand},
      {"auth-login-password", Wait::kCommand},
  }};
  static_assert(kFacts.size() == static_cast<size_t>(State::kCount), "one entry per state");
  return kFacts[static_cast<size_t>(s)];
}

ServerSession::CommandHandler ServerSession::handler_for(uint8_t verb) {
  // Indexed by Verb; the size check keeps it in step with the enum.
  static constexpr std::array<CommandHandler, static_cast<size_t>(Verb::kUnknown) + 1> kHandlers{
      &ServerSession::cmd_ehlo, &ServerSession::cmd_helo, &ServerSession::cmd_mail, &ServerSession::cmd_rcpt,
      &ServerSession::cmd_data, &ServerSession::cmd_rset, &ServerSession::cmd_noop, &ServerSession::cmd_quit,
      &ServerSession::cmd_vrfy, &ServerSession::cmd_expn, &ServerSession::cmd_help, &ServerSession::cmd_starttls,
      &ServerSession::cmd_auth, &ServerSession::cmd_unknown,
  };
  static_assert(static_cast<size_t>(Verb::kEhlo) == 0 && static_cast<size_t>(Verb::kHelp) == 10 &&
                    static_cast<size_t>(Verb::kStarttls) == 11 && static_cast<size_t>(Verb::kAuth) == 12,
                "handler table order follows Verb");
  return kHandlers[verb];
}

ServerSession::ServerSession(const ServerConfig& config, const PeerInfo& peer, ServerHooks& hooks)
    : config_(config), peer_(peer), hooks_(hooks), peer_literal_(peer_address_literal(peer.remote)) {
  build_ehlo_reply();
}

// Built at the start and again after STARTTLS (RFC 3207 §4.2: the extensions may differ over TLS).
void ServerSession::build_ehlo_reply() {
  std::array<std::string_view, kExtensions.size() + 2> lines{};
  size_t n = 0;
  for (auto e : kExtensions) lines[n++] = e;
  const ServerSecurity& sec = config_.security;
  if (sec.tls_available && !tls_active_) lines[n++] = "STARTTLS";  // RFC 3207
  if (sec.auth_available && tls_active_) lines[n++] = "AUTH PLAIN LOGIN";  // RFC 4954, only over TLS
  ehlo_reply_.clear();
  fmt::format_to(std::back_inserter(ehlo_reply_), "250-{}\r\n", config_.hostname);
  for (size_t i = 0; i < n; ++i) {
    ehlo_reply_ += i + 1 < n ? "250-" : "250 ";
    ehlo_reply_ += lines[i];
    if (lines[i] == "SIZE") fmt::format_to(std::back_inserter(ehlo_reply_), " {}", config_.limits.max_message_size);
    ehlo_reply_ += "\r\n";
  }
}

void ServerSession::start(std::string& out) {
  // RFC 2034 §3: no enhanced code in the greeting; RFC 5321 §4.2: the first word is our name.
  append_reply_fmt(out, "220 {} ESMTP ringmail", config_.hostname);
}

std::chrono::seconds ServerSession::timeout() const {
  switch (facts(state_).wait) {
    case Wait::kCommand: break;
    case Wait::kDataBlock: return config_.limits.data_block_timeout;
    case Wait::kHandshake: return config_.limits.tls_handshake_timeout;
  }
  return config_.limits.command_timeout;
}

bool ServerSession::in_data() const { return state_ == State::kData; }

std::string_view ServerSession::state_name() const { return facts(state_).name; }

Action ServerSession::current_action() const {
  if (state_ == State::kClosed) return Action::kClose;
  if (state_ == State::kCommitWait) return Action::kCommit;
  if (state_ == State::kTlsHandshake) return Action::kStartTls;
  return Action::kNeedInput;
}

Action ServerSession::on_input(std::string_view bytes, std::string& out) {
  if (state_ == State::kClosed) return Action::kClose;
  // Clear text during the handshake is not ours to read (the engine gives such bytes to TLS).
  if (state_ == State::kTlsHandshake) return Action::kNeedInput;
  if (state_ == State::kCommitWait) {
    // The engine should stop reading while a commit is pending; if it does not, the buffer still
    // stays bounded: what does not fit is dropped and the session closes after the commit reply.
    if (input_.size() + bytes.size() > pending_limit_) {
      input_overflow_ = true;
    } else {
      input_.append(bytes);
    }
    return Action::kCommit;
  }
  if (input_.empty()) {
    // Common case: nothing left over, so work straight from the caller's bytes and keep only the tail.
    size_t used = process(bytes, out);
    if (state_ != State::kClosed) input_.append(bytes.substr(used));
  } else {
    input_.append(bytes);
    size_t used = process(input_, out);
    input_.erase(0, used);
  }
  return after_processing();
}

// What is left in input_ after processing depends on where the dialogue stopped.
Action ServerSession::after_processing() {
  if (state_ == State::kTlsHandshake && !input_.empty()) {
    // The CVE-2011-0411 defence: whatever was pipelined after STARTTLS arrived in clear text and
    // could have been injected by a man in the middle; it must never be read as if it came over TLS.
    log::warn("smtp: {}: {} octets sent after STARTTLS before the handshake were discarded", peer_literal_,
              input_.size());
    input_.clear();
  }
  if (state_ == State::kClosed) input_.clear();
  if (state_ == State::kCommitWait) pending_limit_ = input_.size() + kMaxPendingInput;
  return current_action();
}

Action ServerSession::on_tls_established(const TlsInfo& info, std::string&) {
  if (state_ != State::kTlsHandshake) return current_action();
  tls_active_ = true;
  tls_version_ = tls_name(info.version);
  tls_cipher_ = tls_name(info.cipher);
  // RFC 3207 §4.2: forget everything learnt from the client in clear text; it must EHLO again.
  envelope_.helo.clear();
  envelope_.esmtp = false;
  authenticated_ = false;
  wipe(auth_user_);
  input_.clear();
  reset_transaction();
  build_ehlo_reply();
  return current_action();
}

// Processes commands and data from `input` until it is used up, a message is complete or the session
// closes. Returns the number of bytes consumed; an incomplete command line is left unconsumed unless
// it is already too long, in which case it is consumed and the rest of it discarded as it arrives.
size_t ServerSession::process(std::string_view input, std::string& out) {
  const size_t max_line = config_.limits.max_command_line;
  size_t pos = 0;
  while (pos < input.size()) {
    if (state_ == State::kData) {
      pos += decoder_.feed(input.substr(pos), message_);
      if (decoder_.done()) {
        const size_t mark = out.size();
        finish_data(out);
        report_reject("DATA", {}, out, mark);
      }
      continue;
    }
    if (state_ == State::kCommitWait || state_ == State::kClosed || state_ == State::kTlsHandshake) break;
    std::string_view rest = input.substr(pos);
    size_t lf = rest.find('\n');
    if (discarding_line_) {
      if (lf == std::string_view::npos) return input.size();
      pos += lf + 1;
      discarding_line_ = false;
      if (in_auth_exchange()) auth_abort();
      reply_error(out, "500 5.5.2 Line too long");
      continue;
    }
    if (lf == std::string_view::npos) {
      // With max_line bytes and no LF yet the line cannot end within the limit.
      if (rest.size() >= max_line) {
        discarding_line_ = true;
        return input.size();
      }
      break;
    }
    pos += lf + 1;
    if (lf + 1 > max_line) {
      if (in_auth_exchange()) auth_abort();
      reply_error(out, "500 5.5.2 Line too long");
      continue;
    }
    std::string_view line = rest.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    handle_line(line, out);
  }
  return pos;
}

void ServerSession::handle_line(std::string_view line, std::string& out) {
  bool nul = line.find('\0') != std::string_view::npos;
  // A CR inside a command line would end up in the envelope or the Received: header.
  bool cr = line.find('\r') != std::string_view::npos;
  if ((nul || cr) && in_auth_exchange()) auth_abort();  // a refused response ends the AUTH exchange
  if (nul) return reply_error(out, "500 5.5.2 Error: NUL character in command");
  if (cr) return reply_error(out, "500 5.5.2 Error: bare <CR> in command");
  if (in_auth_exchange()) return auth_response(line, out);
  CommandLine cmd = split_command(line);
  const size_t mark = out.size();
  (this->*handler_for(static_cast<uint8_t>(cmd.verb)))(cmd.argument, out);
  if (cmd.verb == Verb::kMail) report_reject("MAIL", cmd.argument, out, mark);
  if (cmd.verb == Verb::kRcpt) report_reject("RCPT", cmd.argument, out, mark);
}

void ServerSession::report_reject(std::string_view command, std::string_view argument, const std::string& out,
                                  size_t mark) {
  if (out.size() <= mark || (out[mark] != '4' && out[mark] != '5')) return;
  std::string_view reply = std::string_view(out).substr(mark);
  hooks_.on_reject(command, argument, reply.substr(0, reply.find("\r\n")));
}

void ServerSession::reply(std::string& out, std::string_view line) { append_reply(out, line); }

// Every 5xx answer to the client counts as an error; at the limit the session ends with 421, like
// Postfix's smtpd_hard_error_limit. The count restarts after each committed message.
void ServerSession::reply_error(std::string& out, std::string_view line) {
  append_reply(out, line);
  count_error(out);
}

void ServerSession::count_error(std::string& out) {
  ++errors_;
  if (config_.limits.max_errors != 0 && errors_ >= config_.limits.max_errors)
    close_with(out, "421 4.7.0", "Error: too many errors");
}

void ServerSession::close_with(std::string& out, std::string_view code_and_status, std::string_view text) {
  append_reply_fmt(out, "{} {} {}", code_and_status, config_.hostname, text);
  state_ = State::kClosed;
  discarding_line_ = false;
}

void ServerSession::reset_transaction() {
  envelope_.mail_from.clear();
  envelope_.rcpt_to.clear();
  envelope_.body_8bitmime = false;
  envelope_.smtputf8 = false;
  envelope_.declared_size = 0;
  envelope_.dsn = {};
  envelope_.rcpt_dsn.clear();
  queue_id_.clear();
  rcpt_attempted_ = false;
  if (message_.capacity() > kKeepMessageCapacity) {
    std::string().swap(message_);
  } else {
    message_.clear();
  }
  state_ = envelope_.helo.empty() ? State::kNeedHelo : State::kReady;
}

void ServerSession::cmd_ehlo(std::string_view argument, std::string& out) {
  if (!valid_helo_name(argument)) return reply_error(out, "501 5.5.4 Syntax: EHLO hostname");
  envelope_.helo.assign(argument);
  envelope_.esmtp = true;
  reset_transaction();  // EHLO implies RSET (RFC 5321 §4.1.4)
  out += ehlo_reply_;
}

void ServerSession::cmd_helo(std::string_view argument, std::string& out) {
  if (!valid_helo_name(argument)) return reply_error(out, "501 5.5.4 Syntax: HELO hostname");
  envelope_.helo.assign(argument);
  envelope_.esmtp = false;
  reset_transaction();
  append_reply_fmt(out, "250 {}", config_.hostname);
}

void ServerSession::cmd_mail(std::string_view argument, std::string& out) {
  if (state_ == State::kNeedHelo) return reply_error(out, "503 5.5.1 Error: send HELO/EHLO first");
  if (state_ != State::kReady) return reply_error(out, "503 5.5.1 Error: nested MAIL command");
  if (config_.security.require_tls && !tls_active_)
    return reply_error(out, "530 5.7.0 Must issue a STARTTLS command first");
  ParsedPath path;
  switch (parse_path(argument, "FROM:", path)) {
    case PathError::kNone: break;
    case PathError::kMissingKeyword: return reply_error(out, "501 5.5.4 Syntax: MAIL FROM:<address>");
    case PathError::kMissingBrackets:
      return reply_error(out, "501 5.1.7 Bad sender address syntax: the address must be enclosed in <>");
    case PathError::kBadAddress: return reply_error(out, "501 5.1.7 Bad sender address syntax");
    case PathError::kBadParameters: return reply_error(out, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
    case PathError::kLocalTooLong:
      return reply_error(out, "553 5.1.7 Sender address rejected: local part longer than 64 octets");
    case PathError::kDomainTooLong:
      return reply_error(out, "553 5.1.7 Sender address rejected: domain longer than 255 octets");
    case PathError::kPathTooLong:
      return reply_error(out, "553 5.1.7 Sender address rejected: address longer than 256 octets");
  }
  if (path.postmaster) return reply_error(out, "501 5.1.7 Bad sender address syntax");

  uint64_t size = 0;
  bool body_8bit = false, smtputf8 = false;
  queue::dsn::MailParams dsn;
  ParamReader params(path.params);
  ParamReader::Param p;
  while (params.next(p)) {
    if (!envelope_.esmtp) {
      append_reply_fmt(out, "555 5.5.4 Unsupported option: {} (parameters need EHLO)", p.keyword);
      return count_error(out);
    }
    if (iequals(p.keyword, "SIZE")) {
      if (!parse_size_value(p.value, size)) return reply_error(out, "501 5.5.4 Bad SIZE parameter syntax");
    } else if (iequals(p.keyword, "BODY")) {
      if (iequals(p.value, "8BITMIME")) {
        body_8bit = true;
      } else if (iequals(p.value, "7BIT")) {
        body_8bit = false;
      } else {
        return reply_error(out, "501 5.5.4 Bad BODY parameter value (7BIT or 8BITMIME)");
      }
    } else if (iequals(p.keyword, "SMTPUTF8")) {
      if (p.has_value) return reply_error(out, "501 5.5.4 Bad SMTPUTF8 parameter syntax");
      smtputf8 = true;
    } else if (iequals(p.keyword, "AUTH") && config_.security.auth_available && tls_active_) {
      // RFC 4954 §5: the submitter's identity as the client asserts it; accepted and not used.
      if (!p.has_value) return reply_error(out, "501 5.5.4 Bad AUTH parameter syntax");
    } else if (queue::dsn::is_mail_keyword(p.keyword)) {
      if (auto st = dsn.apply(p.keyword, p.has_value ? p.value : std::string_view()); !st) {
        append_reply_fmt(out, "501 5.5.4 {}", st.error().message());
        return count_error(out);
      }
    } else {
      append_reply_fmt(out, "555 5.5.4 Unsupported option: {}", p.keyword);
      return count_error(out);
    }
  }
  if (params.failed()) return reply_error(out, "501 5.5.4 Bad MAIL parameter syntax");
  if (path.non_ascii && !smtputf8)
    return reply_error(out, "553 5.6.7 Sender address rejected: non-ASCII address needs SMTPUTF8");
  // RFC 1870: refuse a declared size over the fixed limit now, before any data is sent.
  if (size > config_.limits.max_message_size) return reply_error(out, "552 5.3.4 Message size exceeds fixed limit");

  envelope_.mail_from.assign(path.address);
  envelope_.declared_size = size;
  envelope_.body_8bitmime = body_8bit;
  envelope_.smtputf8 = smtputf8;
  envelope_.dsn = std::move(dsn);
  envelope_.rcpt_dsn.clear();
  queue_id_ = hooks_.new_queue_id();
  state_ = State::kMail;
  reply(out, "250 2.1.0 Ok");
}

void ServerSession::cmd_rcpt(std::string_view argument, std::string& out) {
  if (state_ != State::kMail && state_ != State::kRcpt) return reply_error(out, "503 5.5.1 Error: need MAIL command");
  rcpt_attempted_ = true;
  ParsedPath path;
  switch (parse_path(argument, "TO:", path)) {
    case PathError::kNone: break;
    case PathError::kMissingKeyword: return reply_error(out, "501 5.5.4 Syntax: RCPT TO:<address>");
    case PathError::kMissingBrackets:
      return reply_error(out, "501 5.1.3 Bad recipient address syntax: the address must be enclosed in <>");
    case PathError::kBadAddress: return reply_error(out, "501 5.1.3 Bad recipient address syntax");
    case PathError::kBadParameters: return reply_error(out, "501 5.5.4 Syntax: RCPT TO:<address> [parameters]");
    case PathError::kLocalTooLong:
      return reply_error(out, "553 5.1.3 Recipient address rejected: local part longer than 64 octets");
    case PathError::kDomainTooLong:
      return reply_error(out, "553 5.1.3 Recipient address rejected: domain longer than 255 octets");
    case PathError::kPathTooLong:
      return reply_error(out, "553 5.1.3 Recipient address rejected: address longer than 256 octets");
  }
  if (path.address.empty()) return reply_error(out, "501 5.1.3 Bad recipient address syntax: <> is not a recipient");
  ParamReader params(path.params);
  ParamReader::Param p;
  queue::dsn::RcptParams dsn;
  while (params.next(p)) {
    if (!queue::dsn::is_rcpt_keyword(p.keyword)) {
      append_reply_fmt(out, "555 5.5.4 Unsupported option: {}", p.keyword);
      return count_error(out);
    }
    if (auto st = dsn.apply(p.keyword, p.has_value ? p.value : std::string_view()); !st) {
      append_reply_fmt(out, "501 5.5.4 {}", st.error().message());
      return count_error(out);
    }
  }
  if (params.failed()) return reply_error(out, "501 5.5.4 Bad RCPT parameter syntax");
  if (path.non_ascii && !envelope_.smtputf8)
    return reply_error(out, "553 5.6.7 Recipient address rejected: non-ASCII address needs SMTPUTF8");
  if (envelope_.rcpt_to.size() >= config_.limits.max_recipients) return reply(out, "452 4.5.3 Error: too many recipients");
  // ringmail has no local domains: every recipient, postmaster included, is relayed, so only
  // clients the engine marked as relay clients may name one.
  if (!peer_.relay_allowed && !authenticated_) {
    append_reply_fmt(out, "554 5.7.1 <{}>: Relay access denied", path.address);
    return count_error(out);
  }
  envelope_.rcpt_to.emplace_back(path.address);
  envelope_.rcpt_dsn.push_back(std::move(dsn));
  state_ = State::kRcpt;
  reply(out, "250 2.1.5 Ok");
}

void ServerSession::cmd_data(std::string_view argument, std::string& out) {
  if (state_ == State::kNeedHelo || state_ == State::kReady) return reply_error(out, "503 5.5.1 Error: need MAIL command");
  if (state_ == State::kMail) {
    // Pipelined message data after this refusal is read as commands (RFC 2920 §3.1): the client
    // must not send data before it sees 354.
    if (rcpt_attempted_) return reply_error(out, "554 5.5.1 Error: no valid recipients");
    return reply_error(out, "503 5.5.1 Error: need RCPT command");
  }
  if (!argument.empty()) return reply_error(out, "501 5.5.4 Syntax: DATA");

  message_.clear();
  ReceivedFields fields;
  fields.helo = envelope_.helo;
  fields.peer = peer_literal_;
  fields.hostname = config_.hostname;
  // RFC 3848 / RFC 6531 §4.3: "S" for TLS, "A" for an authenticated client.
  static constexpr std::array<std::string_view, 4> kEsmtp{"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"};
  static constexpr std::array<std::string_view, 4> kUtf8{"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"};
  size_t variant = (tls_active_ ? 1u : 0u) + (authenticated_ ? 2u : 0u);
  fields.protocol = !envelope_.esmtp ? "SMTP" : envelope_.smtputf8 ? kUtf8[variant] : kEsmtp[variant];
  if (tls_active_) {
    fields.tls_version = tls_version_;
    fields.tls_cipher = tls_cipher_;
  }
  fields.queue_id = queue_id_;
  if (envelope_.rcpt_to.size() == 1) fields.recipient = envelope_.rcpt_to.front();
  fields.date = hooks_.now();
  append_received_header(fields, message_);
  decoder_.reset(config_.limits.max_message_size, config_.limits.max_text_line);
  state_ = State::kData;
  reply(out, "354 2.0.0 End data with <CR><LF>.<CR><LF>");
}

void ServerSession::finish_data(std::string& out) {
  DataVerdict verdict = decoder_.verdict();
  if (verdict == DataVerdict::kAccept) {
    state_ = State::kCommitWait;
    return;
  }
  reset_transaction();  // before the reply: reply_error may close the session
  switch (verdict) {
    case DataVerdict::kAccept: break;
    case DataVerdict::kBareLineEnd:
      log::warn("smtp: {} helo={}: message refused: bare CR or LF in DATA (SMTP smuggling defence)",
                peer_literal_, envelope_.helo);
      return reply_error(out, "550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)");
    case DataVerdict::kNul: return reply_error(out, "554 5.6.0 Message contains NUL characters");
    case DataVerdict::kLongLine:
      append_reply_fmt(out, "554 5.6.0 Message contains a line longer than {} octets", config_.limits.max_text_line);
      return count_error(out);
    case DataVerdict::kTooBig: return reply_error(out, "552 5.3.4 Message size exceeds fixed limit");
  }
}

Action ServerSession::on_commit(bool ok, std::string_view error, std::string& out) {
  if (state_ != State::kCommitWait) return current_action();  // not waiting: nothing to report
  if (ok) {
    append_reply_fmt(out, "250 2.0.0 Ok: queued as {}", queue_id_);
    ++messages_committed_;
    errors_ = 0;
  } else {
    // The engine's text goes to the client: one printable line (end_reply_line).
    if (error.empty()) error = "Error: queue file write error";
    append_reply_fmt(out, "451 4.3.0 {}", error.substr(0, kMaxErrorText));
  }
  reset_transaction();
  if (input_overflow_) {
    input_.clear();
    close_with(out, "421 4.7.0", "Error: too much pipelined input");
    return Action::kClose;
  }
  size_t used = process(input_, out);
  input_.erase(0, used);
  return after_processing();
}

Action ServerSession::on_timeout(std::string& out) {
  if (state_ != State::kClosed) close_with(out, "421 4.4.2", "Error: timeout exceeded");
  input_.clear();
  return Action::kClose;
}

Action ServerSession::on_shutdown(std::string& out) {
  if (state_ != State::kClosed) close_with(out, "421 4.3.2", "Service shutting down");
  input_.clear();
  return Action::kClose;
}

void ServerSession::cmd_rset(std::string_view argument, std::string& out) {
  if (!argument.empty()) return reply_error(out, "501 5.5.4 Syntax: RSET");
  reset_transaction();
  reply(out, "250 2.0.0 Ok");
}

void ServerSession::cmd_noop(std::string_view, std::string& out) { reply(out, "250 2.0.0 Ok"); }

void ServerSession::cmd_quit(std::string_view, std::string& out) {
  reply(out, "221 2.0.0 Bye");
  state_ = State::kClosed;
}

void ServerSession::cmd_vrfy(std::string_view argument, std::string& out) {
  if (argument.empty()) return reply_error(out, "501 5.5.4 Syntax: VRFY address");
  reply(out, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

void ServerSession::cmd_expn(std::string_view, std::string& out) {
  reply_error(out, "502 5.5.1 Error: EXPN not supported");
}

void ServerSession::cmd_help(std::string_view, std::string& out) {
  reply(out, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

void ServerSession::cmd_unknown(std::string_view, std::string& out) {
  reply_error(out, "500 5.5.2 Error: command not recognized");
}

// RFC 3207. After the 220 nothing more is read in clear text: process() stops here and
// after_processing() drops whatever the client pipelined behind the command.
void ServerSession::cmd_starttls(std::string_view argument, std::string& out) {
  if (tls_active_) return reply_error(out, "554 5.5.1 Error: TLS already active");
  if (!config_.security.tls_available) return reply_error(out, "502 5.5.1 Error: command not implemented");
  if (!argument.empty()) return reply_error(out, "501 5.5.4 Syntax: STARTTLS");
  if (state_ == State::kMail || state_ == State::kRcpt)
    return reply_error(out, "503 5.5.1 Error: MAIL transaction in progress");
  reply(out, "220 2.0.0 Ready to start TLS");
  state_ = State::kTlsHandshake;
}

// RFC 4954: AUTH <mechanism> [initial-response], PLAIN (RFC 4616) or LOGIN, only over TLS, once per
// session and outside a transaction.
void ServerSession::cmd_auth(std::string_view argument, std::string& out) {
  if (!config_.security.auth_available) return reply_error(out, "503 5.5.1 Error: authentication not enabled");
  if (!tls_active_)
    return reply_error(out, "538 5.7.11 Encryption required for requested authentication mechanism");
  if (state_ == State::kNeedHelo || !envelope_.esmtp) return reply_error(out, "503 5.5.1 Error: send EHLO first");
  if (authenticated_) return reply_error(out, "503 5.5.1 Error: already authenticated");
  if (state_ != State::kReady) return reply_error(out, "503 5.5.1 Error: MAIL transaction in progress");
  size_t sp = argument.find(' ');
  std::string_view mechanism = argument.substr(0, sp);
  std::string_view initial = sp == std::string_view::npos ? std::string_view{} : argument.substr(sp + 1);
  bool has_initial = sp != std::string_view::npos;
  if (mechanism.empty() || initial.find(' ') != std::string_view::npos || (has_initial && initial.empty()))
    return reply_error(out, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
  if (initial == "=") initial = {};  // RFC 4954 §4: "=" is an empty initial response
  if (iequals(mechanism, "PLAIN")) {
    if (!has_initial) {
      state_ = State::kAuthPlain;
      return reply(out, "334 ");
    }
    return auth_plain(initial, out);
  }
  if (iequals(mechanism, "LOGIN")) {
    if (!has_initial) {
      state_ = State::kAuthUser;
      return reply(out, kLoginUserChallenge);
    }
    state_ = State::kAuthUser;
    return auth_response(initial, out);
  }
  reply_error(out, "504 5.5.4 Unrecognized authentication type");
}

bool ServerSession::in_auth_exchange() const {
  return state_ == State::kAuthPlain || state_ == State::kAuthUser || state_ == State::kAuthPassword;
}

void ServerSession::auth_abort() {
  wipe(auth_user_);
  wipe(auth_scratch_);
  state_ = State::kReady;
}

// One client line during an AUTH exchange: "*" cancels, anything else must be base64.
void ServerSession::auth_response(std::string_view line, std::string& out) {
  if (line == "*") {
    auth_abort();
    return reply_error(out, "501 5.7.0 Authentication aborted");
  }
  switch (state_) {
    case State::kAuthPlain: return auth_plain(line, out);
    case State::kAuthUser:
      if (!decode_base64(line, auth_user_) || auth_user_.empty()) {
        auth_abort();
        return reply_error(out, "501 5.5.2 Cannot decode response");
      }
      state_ = State::kAuthPassword;
      return reply(out, kLoginPasswordChallenge);
    case State::kAuthPassword: {
      if (!decode_base64(line, auth_scratch_) || auth_scratch_.empty()) {
        auth_abort();
        return reply_error(out, "501 5.5.2 Cannot decode response");
      }
      std::string user = std::move(auth_user_);
      auth_user_.clear();
      auth_finish(user, auth_scratch_, out);
      return;
    }
    default: return;
  }
}

void ServerSession::auth_plain(std::string_view base64, std::string& out) {
  SaslPlain plain;
  if (!decode_base64(base64, auth_scratch_) || !parse_sasl_plain(auth_scratch_, plain)) {
    auth_abort();
    return reply_error(out, "501 5.5.2 Cannot decode response");
  }
  // We do not let one user act as another: an authorization identity must name the user itself.
  if (!plain.authzid.empty() && plain.authzid != plain.authcid) {
    log::warn("smtp: {}: AUTH PLAIN refused: user {} asked to act as {}", peer_literal_,
              loggable_name(plain.authcid), loggable_name(plain.authzid));
    auth_abort();
    return reply_error(out, "535 5.7.8 Authentication credentials invalid");
  }
  std::string user(plain.authcid);
  auth_finish(user, plain.password, out);
}

// Checks the credentials with the engine, answers 235 or 535, and wipes the decoded password.
void ServerSession::auth_finish(std::string_view user, std::string_view password, std::string& out) {
  bool ok = hooks_.verify_credentials(user, password);
  std::string name(user);
  auth_abort();  // wipes auth_scratch_, which holds the password; back to kReady
  if (!ok) {
    log::warn("smtp: {}: authentication failed for user {}", peer_literal_, loggable_name(name));
    return reply_error(out, "535 5.7.8 Authentication credentials invalid");
  }
  authenticated_ = true;
  auth_user_ = std::move(name);
  log::info("smtp: {}: authenticated as {}", peer_literal_, loggable_name(auth_user_));
  reply(out, "235 2.7.0 Authentication successful");
}

}  // namespace ringmail::smtp
