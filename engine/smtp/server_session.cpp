// The SMTP server session state machine: command dispatch, transaction rules, replies, DATA and the
// commit hand-off. Parsing lives in command_parser, the DATA grammar in data_decoder, the trace
// header in received_header. See server_session.h and docs/smtp-listener.md.
#include "engine/smtp/server_session.h"

#include <fmt/format.h>

#include <array>
#include <iterator>

#include "common/log.h"
#include "common/strings.h"
#include "engine/smtp/command_parser.h"
#include "engine/smtp/received_header.h"

namespace ringmail::smtp {
namespace {

// The service extensions we announce after EHLO, in order. The SIZE line gets the limit appended.
// Later: "STARTTLS" (RFC 3207) once the transport offers TLS, "AUTH ..." (RFC 4954) after TLS,
// "DSN" (RFC 3461) once the queue stores NOTIFY/ORCPT/RET/ENVID. Each needs its MAIL/RCPT parameters
// accepted in cmd_mail/cmd_rcpt as well.
constexpr std::array<std::string_view, 5> kExtensions{
    "PIPELINING",           // RFC 2920
    "SIZE",                 // RFC 1870
    "8BITMIME",             // RFC 6152
    "ENHANCEDSTATUSCODES",  // RFC 2034
    "SMTPUTF8",             // RFC 6531
};

constexpr size_t kMaxErrorText = 200;  // octets of an engine error message shown in a 451 reply

void append_reply(std::string& out, std::string_view line) {
  out.append(line);
  out.append("\r\n");
}

template <typename... Args>
void append_reply_fmt(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
  out.append("\r\n");
}

}  // namespace

const ServerSession::StateFacts& ServerSession::facts(State s) {
  static constexpr std::array<StateFacts, static_cast<size_t>(State::kCount)> kFacts{{
      {"need-helo", false},
      {"ready", false},
      {"mail", false},
      {"rcpt", false},
      {"data", true},
      {"commit-wait", false},
      {"closed", false},
  }};
  static_assert(kFacts.size() == static_cast<size_t>(State::kCount), "one entry per state");
  return kFacts[static_cast<size_t>(s)];
}

ServerSession::CommandHandler ServerSession::handler_for(uint8_t verb) {
  // Indexed by Verb; the size check keeps it in step with the enum.
  static constexpr std::array<CommandHandler, static_cast<size_t>(Verb::kUnknown) + 1> kHandlers{
      &ServerSession::cmd_ehlo, &ServerSession::cmd_helo, &ServerSession::cmd_mail, &ServerSession::cmd_rcpt,
      &ServerSession::cmd_data, &ServerSession::cmd_rset, &ServerSession::cmd_noop, &ServerSession::cmd_quit,
      &ServerSession::cmd_vrfy, &ServerSession::cmd_expn, &ServerSession::cmd_help, &ServerSession::cmd_unknown,
  };
  static_assert(static_cast<size_t>(Verb::kEhlo) == 0 && static_cast<size_t>(Verb::kHelp) == 10,
                "handler table order follows Verb");
  return kHandlers[verb];
}

ServerSession::ServerSession(const ServerConfig& config, const PeerInfo& peer, ServerHooks& hooks)
    : config_(config), peer_(peer), hooks_(hooks), peer_literal_(peer_address_literal(peer.remote)) {
  fmt::format_to(std::back_inserter(ehlo_reply_), "250-{}\r\n", config_.hostname);
  for (size_t i = 0; i < kExtensions.size(); ++i) {
    ehlo_reply_ += i + 1 < kExtensions.size() ? "250-" : "250 ";
    ehlo_reply_ += kExtensions[i];
    if (kExtensions[i] == "SIZE") fmt::format_to(std::back_inserter(ehlo_reply_), " {}", config_.limits.max_message_size);
    ehlo_reply_ += "\r\n";
  }
}

void ServerSession::start(std::string& out) {
  // RFC 2034 §3: no enhanced code in the greeting; RFC 5321 §4.2: the first word is our name.
  append_reply_fmt(out, "220 {} ESMTP ringmail", config_.hostname);
}

std::chrono::seconds ServerSession::timeout() const {
  return facts(state_).data_timeout ? config_.limits.data_block_timeout : config_.limits.command_timeout;
}

bool ServerSession::in_data() const { return state_ == State::kData; }

std::string_view ServerSession::state_name() const { return facts(state_).name; }

Action ServerSession::current_action() const {
  if (state_ == State::kClosed) return Action::kClose;
  if (state_ == State::kCommitWait) return Action::kCommit;
  return Action::kNeedInput;
}

Action ServerSession::on_input(std::string_view bytes, std::string& out) {
  if (state_ == State::kClosed) return Action::kClose;
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
  if (state_ == State::kClosed) input_.clear();
  if (state_ == State::kCommitWait) pending_limit_ = input_.size() + kMaxPendingInput;
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
      if (decoder_.done()) finish_data(out);
      continue;
    }
    if (state_ == State::kCommitWait || state_ == State::kClosed) break;
    std::string_view rest = input.substr(pos);
    size_t lf = rest.find('\n');
    if (discarding_line_) {
      if (lf == std::string_view::npos) return input.size();
      pos += lf + 1;
      discarding_line_ = false;
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
  if (line.find('\0') != std::string_view::npos) return reply_error(out, "500 5.5.2 Error: NUL character in command");
  // A CR inside a command line would end up in the envelope or the Received: header.
  if (line.find('\r') != std::string_view::npos) return reply_error(out, "500 5.5.2 Error: bare <CR> in command");
  CommandLine cmd = split_command(line);
  (this->*handler_for(static_cast<uint8_t>(cmd.verb)))(cmd.argument, out);
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
  if (params.next(p)) {
    append_reply_fmt(out, "555 5.5.4 Unsupported option: {}", p.keyword);
    return count_error(out);
  }
  if (params.failed()) return reply_error(out, "501 5.5.4 Bad RCPT parameter syntax");
  if (path.non_ascii && !envelope_.smtputf8)
    return reply_error(out, "553 5.6.7 Recipient address rejected: non-ASCII address needs SMTPUTF8");
  if (envelope_.rcpt_to.size() >= config_.limits.max_recipients) return reply(out, "452 4.5.3 Error: too many recipients");
  // ringmail has no local domains: every recipient, postmaster included, is relayed, so only
  // clients the engine marked as relay clients may name one.
  if (!peer_.relay_allowed) {
    append_reply_fmt(out, "554 5.7.1 <{}>: Relay access denied", path.address);
    return count_error(out);
  }
  envelope_.rcpt_to.emplace_back(path.address);
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
  fields.protocol = !envelope_.esmtp ? "SMTP" : envelope_.smtputf8 ? "UTF8SMTP" : "ESMTP";
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
    // The engine's text goes to the client: keep it to one printable line.
    out.append("451 4.3.0 ");
    if (error.empty()) error = "Error: queue file write error";
    for (char c : error.substr(0, kMaxErrorText)) out += (c < 32 || c == 127) ? ' ' : c;
    out.append("\r\n");
  }
  reset_transaction();
  if (input_overflow_) {
    input_.clear();
    close_with(out, "421 4.7.0", "Error: too much pipelined input");
    return Action::kClose;
  }
  size_t used = process(input_, out);
  input_.erase(0, used);
  if (state_ == State::kClosed) input_.clear();
  if (state_ == State::kCommitWait) pending_limit_ = input_.size() + kMaxPendingInput;
  return current_action();
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

}  // namespace ringmail::smtp
