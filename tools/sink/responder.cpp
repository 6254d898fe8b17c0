// Responder implementation (see responder.h): command lines are split on LF (a preceding CR is
// dropped, bare LF tolerated for commands), DATA goes through DotDecoder, and every reply is
// appended to the caller's buffer in command order so pipelined groups are answered in order.
#include "tools/sink/responder.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

#include "common/strings.h"

namespace ringmail::sink {

namespace {

// The path inside "<...>" (or a bare token), and what follows it.
std::string_view take_path(std::string_view args, std::string_view* rest) {
  args = trim(args);
  size_t end;
  std::string_view path;
  if (!args.empty() && args.front() == '<') {
    end = args.find('>');
    if (end == std::string_view::npos) end = args.size();
    path = args.substr(1, end - 1);
    end = end < args.size() ? end + 1 : end;
  } else {
    end = args.find(' ');
    if (end == std::string_view::npos) end = args.size();
    path = args.substr(0, end);
  }
  *rest = trim(args.substr(end));
  return path;
}

// The value of SIZE=n among MAIL parameters, or 0.
uint64_t size_param(std::string_view params) {
  while (!params.empty()) {
    size_t sp = params.find(' ');
    std::string_view p = params.substr(0, sp);
    if (istarts_with(p, "SIZE=")) {
      uint64_t v = 0;
      std::from_chars(p.data() + 5, p.data() + p.size(), v);
      return v;
    }
    if (sp == std::string_view::npos) break;
    params.remove_prefix(sp + 1);
  }
  return 0;
}

}  // namespace

Verdict Responder::start(std::string& out) {
  if (config_.greeting_reply.empty()) {
    fmt::format_to(std::back_inserter(out), "220 {} ESMTP ringmail-sink\r\n", config_.hostname);
    return Verdict::kContinue;
  }
  out += config_.greeting_reply;
  if (config_.greeting_reply.compare(0, 3, "421") == 0) {  // 421 means "closing the channel"
    state_ = State::kDone;
    return Verdict::kClose;
  }
  state_ = State::kRefused;
  return Verdict::kContinue;
}

void Responder::reset_transaction() {
  in_transaction_ = false;
  drop_this_data_ = false;
  txn_.mail_from.clear();
  txn_.rcpts.clear();
  txn_.body.clear();
  txn_.size = 0;
}

Verdict Responder::feed(std::string_view in, std::string& out) {
  while (!in.empty() && state_ != State::kDone) {
    if (state_ == State::kData) {
      if (drop_this_data_) {  // part of the message has arrived: cut the connection, never reply
        state_ = State::kDone;
        hooks_.fault_injected(FaultKind::kDropMidData);
        return Verdict::kDrop;
      }
      bool done = false;
      bool over = config_.max_message_size && dot_.size() > config_.max_message_size;
      size_t used = dot_.feed(in, config_.keep_body && !over ? &txn_.body : nullptr, &done);
      in.remove_prefix(used);
      if (done) {
        Verdict v = end_of_data(out);
        if (v != Verdict::kContinue) return v;
      }
      continue;
    }
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) {  // a partial line: keep it (bounded) for the next call
      if (!line_too_long_) {
        line_.append(in);
        if (line_.size() > kMaxLine) {
          line_too_long_ = true;
          line_.clear();
        }
      }
      return Verdict::kContinue;
    }
    std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl + 1);
    if (line_too_long_ || line_.size() + line.size() > kMaxLine) {
      line_too_long_ = false;
      line_.clear();
      out += "500 5.5.2 Line too long\r\n";
      continue;
    }
    if (!line_.empty()) {
      line_.append(line);
      line = line_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Verdict v = command(line, out);
    line_.clear();
    if (v != Verdict::kContinue) return v;
  }
  return state_ == State::kDone ? Verdict::kClose : Verdict::kContinue;
}

Verdict Responder::command(std::string_view line, std::string& out) {
  std::string_view verb = line.substr(0, line.find(' '));
  std::string_view args = verb.size() < line.size() ? line.substr(verb.size() + 1) : std::string_view();
  if (iequals(verb, "QUIT")) {
    out += "221 2.0.0 Bye\r\n";
    state_ = State::kDone;
    return Verdict::kClose;
  }
  if (state_ == State::kRefused) {
    out += "503 5.5.1 No service, only QUIT is allowed\r\n";
    return Verdict::kContinue;
  }
  if (iequals(verb, "EHLO")) {
    ehlo(args, out);
  } else if (iequals(verb, "HELO")) {
    reset_transaction();
    fmt::format_to(std::back_inserter(out), "250 {}\r\n", config_.hostname);
  } else if (iequals(verb, "STARTTLS") && config_.starttls) {
    return starttls(args, out);
  } else if (iequals(verb, "MAIL")) {
    return mail(args, out);
  } else if (iequals(verb, "RCPT")) {
    rcpt(args, out);
  } else if (iequals(verb, "DATA")) {
    return data(out);
  } else if (iequals(verb, "RSET")) {
    reset_transaction();
    out += "250 2.0.0 Ok\r\n";
  } else if (iequals(verb, "NOOP")) {
    out += "250 2.0.0 Ok\r\n";
  } else if (iequals(verb, "VRFY")) {
    out += "252 2.0.0 Cannot verify, but will accept\r\n";
  } else if (iequals(verb, "HELP")) {
    out += "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT\r\n";
  } else {
    out += "500 5.5.2 Command not recognized\r\n";
  }
  return Verdict::kContinue;
}

void Responder::ehlo(std::string_view args, std::string& out) {
  reset_transaction();
  (void)args;  // the client's name is not checked: the sink accepts any
  auto add = [&out](bool last, std::string_view text) {
    out += last ? "250 " : "250-";
    out += text;
    out += "\r\n";
  };
  add(false, config_.hostname);
  if (config_.pipelining) add(false, "PIPELINING");
  if (config_.max_message_size) fmt::format_to(std::back_inserter(out), "250-SIZE {}\r\n", config_.max_message_size);
  else add(false, "SIZE");
  if (config_.eight_bit_mime) add(false, "8BITMIME");
  if (config_.smtputf8) add(false, "SMTPUTF8");
  if (config_.starttls && !tls_on_) add(false, "STARTTLS");
  add(true, "ENHANCEDSTATUSCODES");
}

Verdict Responder::starttls(std::string_view args, std::string& out) {
  if (tls_on_) {
    out += "503 5.5.1 TLS already active\r\n";
    return Verdict::kContinue;
  }
  if (!trim(args).empty()) {
    out += "501 5.5.4 Syntax: STARTTLS\r\n";
    return Verdict::kContinue;
  }
  if (in_transaction_) {  // RFC 3207 does not allow it mid-transaction; be strict here
    out += "503 5.5.1 STARTTLS not allowed during a mail transaction\r\n";
    return Verdict::kContinue;
  }
  out += "220 2.0.0 Ready to start TLS\r\n";
  return Verdict::kStartTls;
}

void Responder::tls_started() {
  tls_on_ = true;
  state_ = State::kCommand;
  line_.clear();
  line_too_long_ = false;
  reset_transaction();
}

Verdict Responder::mail(std::string_view args, std::string& out) {
  if (in_transaction_) {
    out += "503 5.5.1 Nested MAIL command\r\n";
    return Verdict::kContinue;
  }
  if (!istarts_with(args, "FROM:")) {
    out += "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
    return Verdict::kContinue;
  }
  std::string_view params;
  std::string_view path = take_path(args.substr(5), &params);
  uint64_t declared = size_param(params);
  if (config_.max_message_size && declared > config_.max_message_size) {
    out += "552 5.3.4 Message size exceeds fixed limit\r\n";
    hooks_.fault_injected(FaultKind::kOversize);
    return Verdict::kContinue;
  }
  reset_transaction();
  in_transaction_ = true;
  txn_.mail_from.assign(path);
  out += "250 2.1.0 Ok\r\n";
  return Verdict::kContinue;
}

void Responder::rcpt(std::string_view args, std::string& out) {
  if (!in_transaction_) {
    out += "503 5.5.1 Need MAIL command\r\n";
    return;
  }
  if (!istarts_with(args, "TO:")) {
    out += "501 5.5.4 Syntax: RCPT TO:<address>\r\n";
    return;
  }
  std::string_view params;
  std::string_view path = take_path(args.substr(3), &params);
  if (const std::string* fault = faults_.rcpt_fault(path)) {
    out += *fault;
    hooks_.fault_injected(FaultKind::kRcpt);
    return;
  }
  txn_.rcpts.emplace_back(path);
  out += "250 2.1.5 Ok\r\n";
}

Verdict Responder::data(std::string& out) {
  if (!in_transaction_) {
    out += "503 5.5.1 Need MAIL command\r\n";
    return Verdict::kContinue;
  }
  if (txn_.rcpts.empty()) {
    out += "554 5.5.1 No valid recipients\r\n";
    return Verdict::kContinue;
  }
  out += "354 End data with <CR><LF>.<CR><LF>\r\n";
  state_ = State::kData;
  dot_.reset();
  drop_this_data_ = faults_.drop_mid_data();
  return Verdict::kContinue;
}

Verdict Responder::end_of_data(std::string& out) {
  state_ = State::kCommand;
  txn_.size = dot_.size();
  if (config_.max_message_size && txn_.size > config_.max_message_size) {
    out += "552 5.3.4 Message size exceeds fixed limit\r\n";
    hooks_.fault_injected(FaultKind::kOversize);
  } else if (const std::string* fault = faults_.data_fault(txn_.mail_from, txn_.rcpts)) {
    out += *fault;
    hooks_.fault_injected(FaultKind::kData);
  } else {
    uint64_t number = hooks_.next_message_number();
    hooks_.message_accepted(txn_, number);
    fmt::format_to(std::back_inserter(out), "250 2.0.0 Ok: queued as SINK{}\r\n", number);
  }
  reset_transaction();
  return Verdict::kContinue;
}

}  // namespace ringmail::sink
