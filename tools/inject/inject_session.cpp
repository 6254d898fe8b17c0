// The SMTP client state machine of ringmail-inject (see inject_session.h).
//
// Lock-step mode sends one command and decides the next from its reply. Pipelined mode (RFC
// 2920) sends MAIL, every RCPT and DATA in one write; their replies come back in order, so MAIL
// and RCPT replies are only recorded and the decision waits for the DATA reply. A 354 after a
// failed envelope is answered with an empty body so the server leaves the data phase.
#include "tools/inject/inject_session.h"

#include <fmt/format.h>

#include <array>
#include <iterator>

namespace ringmail::inject {
namespace {

constexpr std::array<std::string_view, size_t(InjectSession::Step::kCount)> kStepNames = {
    "greeting", "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "end of data", "RSET", "QUIT"};
static_assert(kStepNames.size() == size_t(InjectSession::Step::kCount));

bool is_2xx(int code) { return code >= 200 && code < 300; }

// "554 go away" for failure reasons.
std::string reply_summary(const Reply& reply) { return fmt::format("{} {}", reply.code, reply.last_line); }

}  // namespace

std::string_view InjectSession::step_name(Step s) { return kStepNames[size_t(s)]; }

InjectSession::InjectSession(const SessionConfig& config, MessageBuilder& builder, SessionHost& host)
    : config_(config), builder_(builder), host_(host) {}

void InjectSession::on_connected() {
  reader_.clear();
  pending_.clear();
  head_ = 0;
  out_.clear();
  out_sent_ = 0;
  caps_ = Capabilities{};
  pipelining_ = false;
  quitting_ = false;
  tls_on_ = false;
  started_on_connection_ = 0;
  accepted_on_connection_ = 0;
  tx_ = Transaction{};
  expect(Step::kGreeting);
}

void InjectSession::consume_output(size_t n) {
  out_sent_ += n;
  if (out_sent_ >= out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
}

SessionStatus InjectSession::on_bytes(std::string_view bytes, int64_t now_ns) {
  reader_.feed(bytes);
  Reply reply;
  for (;;) {
    switch (reader_.next(&reply)) {
      case ReadStatus::kNeedMore:
        return SessionStatus::kRunning;
      case ReadStatus::kMalformed:
        return fail("malformed reply");
      case ReadStatus::kReply: {
        SessionStatus s = handle_reply(reply, now_ns);
        if (s == SessionStatus::kStartTls) reader_.clear();  // bytes pipelined before TLS: discarded
        if (s != SessionStatus::kRunning) return s;
        break;
      }
    }
  }
}

void InjectSession::on_tls_established() {
  tls_on_ = true;
  reader_.clear();
  caps_ = Capabilities{};
  send_line("EHLO ", config_.ehlo_name);
  expect(Step::kEhlo);
}

SessionStatus InjectSession::on_disconnected() {
  if (quitting_ && !tx_.active) return SessionStatus::kFinished;
  return fail("connection closed by the server");
}

SessionStatus InjectSession::on_timeout() {
  if (head_ < pending_.size()) return fail("timeout waiting for the reply to ", step_name(pending_[head_]));
  return fail("timeout");
}

SessionStatus InjectSession::fail(std::string_view what, std::string_view detail) {
  failure_reason_.assign(what);
  failure_reason_.append(detail);
  if (tx_.active) finish_message(kNoReplyCode, {}, -1);
  pending_.clear();
  head_ = 0;
  return SessionStatus::kFailed;
}

void InjectSession::send_line(std::string_view a, std::string_view b, std::string_view c) {
  out_.append(a);
  out_.append(b);
  out_.append(c);
  out_.append("\r\n");
}

void InjectSession::send_rcpt(int index) {
  scratch_.assign("RCPT TO:<");
  builder_.append_recipient(tx_.number, index, &scratch_);
  scratch_.push_back('>');
  send_line(scratch_);
  expect(Step::kRcpt);
}

void InjectSession::next_transaction() {
  std::optional<uint64_t> number;
  if (config_.per_connection <= 0 || started_on_connection_ < config_.per_connection)
    number = host_.claim_message();
  if (!number) {
    send_line("QUIT");
    expect(Step::kQuit);
    quitting_ = true;
    return;
  }
  begin_transaction(*number);
}

void InjectSession::begin_transaction(uint64_t number) {
  ++started_on_connection_;
  tx_ = Transaction{};
  tx_.active = true;
  tx_.number = number;
  tx_.pipelined = pipelining_;
  builder_.build(number, host_.date_header(), &raw_message_, &message_id_);
  scratch_.assign("MAIL FROM:<");
  scratch_.append(builder_.spec().from);
  scratch_.push_back('>');
  if (caps_.size) fmt::format_to(std::back_inserter(scratch_), " SIZE={}", raw_message_.size());
  if (builder_.spec().eightbit && caps_.eightbitmime) scratch_.append(" BODY=8BITMIME");
  send_line(scratch_);
  expect(Step::kMail);
  if (!tx_.pipelined) return;
  for (int r = 0; r < builder_.spec().rcpts; ++r) send_rcpt(r);
  tx_.next_rcpt = builder_.spec().rcpts;
  send_line("DATA");
  expect(Step::kData);
}

void InjectSession::finish_message(int code, std::string_view queue_id, int64_t latency_ns) {
  MessageOutcome outcome;
  outcome.number = tx_.number;
  outcome.code = code;
  outcome.message_id = message_id_;
  outcome.queue_id = queue_id;
  outcome.latency_ns = latency_ns;
  tx_.active = false;
  if (is_2xx(code)) ++accepted_on_connection_;
  host_.message_done(outcome);
}

// After a failed transaction RSET clears whatever state the server kept, then the next
// message starts from its reply.
void InjectSession::after_failed_transaction() {
  send_line("RSET");
  expect(Step::kRset);
}

SessionStatus InjectSession::handle_reply(const Reply& reply, int64_t now_ns) {
  if (head_ >= pending_.size()) return fail("unexpected reply ", reply.last_line);
  Step step = pending_[head_++];
  if (head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  }
  const int code = reply.code;
  // 421: the server is closing the connection; whatever is in flight has failed.
  if (code == 421 && step != Step::kQuit) {
    if (tx_.active) finish_message(code, {}, -1);
    return fail("421 ", reply.last_line);
  }
  switch (step) {
    case Step::kGreeting:
      if (!is_2xx(code)) return fail("greeting refused: ", reply_summary(reply));
      send_line("EHLO ", config_.ehlo_name);
      expect(Step::kEhlo);
      break;
    case Step::kEhlo:
      if (is_2xx(code)) {
        caps_ = parse_ehlo_capabilities(reply);
        pipelining_ = config_.want_pipelining && caps_.pipelining;
        if (config_.starttls && !tls_on_) {
          if (!caps_.starttls) return fail("STARTTLS not offered by the server");
          send_line("STARTTLS");
          expect(Step::kStartTls);
          break;
        }
        next_transaction();
      } else if (code >= 500 && !config_.starttls) {
        send_line("HELO ", config_.ehlo_name);
        expect(Step::kHelo);
      } else {
        return fail("EHLO refused: ", reply_summary(reply));
      }
      break;
    case Step::kStartTls:
      if (code != 220) return fail("STARTTLS refused: ", reply_summary(reply));
      return SessionStatus::kStartTls;
    case Step::kHelo:
      if (!is_2xx(code)) return fail("HELO refused: ", reply_summary(reply));
      caps_ = Capabilities{};
      next_transaction();
      break;
    case Step::kMail:
      if (!is_2xx(code)) {
        tx_.mail_failed = true;
        tx_.failure_code = code;
      }
      if (tx_.pipelined) break;
      if (!is_2xx(code)) {
        finish_message(code, {}, -1);
        after_failed_transaction();
      } else {
        send_rcpt(tx_.next_rcpt++);
      }
      break;
    case Step::kRcpt:
      if (is_2xx(code)) ++tx_.accepted_rcpts;
      else if (tx_.failure_code == 0) tx_.failure_code = code;
      if (tx_.pipelined) break;
      if (tx_.next_rcpt < builder_.spec().rcpts) {
        send_rcpt(tx_.next_rcpt++);
      } else if (tx_.accepted_rcpts > 0) {
        send_line("DATA");
        expect(Step::kData);
      } else {
        finish_message(tx_.failure_code, {}, -1);
        after_failed_transaction();
      }
      break;
    case Step::kData: {
      const bool envelope_failed = tx_.mail_failed || tx_.accepted_rcpts == 0;
      if (code == 354) {
        if (envelope_failed) {
          tx_.discard_data = true;
          out_.append(".\r\n");
        } else {
          append_dot_stuffed(raw_message_, &out_);
          tx_.data_sent_ns = now_ns;
        }
        expect(Step::kDot);
        break;
      }
      finish_message(envelope_failed ? tx_.failure_code : code, {}, -1);
      after_failed_transaction();
      break;
    }
    case Step::kDot:
      if (tx_.discard_data) {
        finish_message(tx_.failure_code, {}, -1);
        after_failed_transaction();
      } else if (is_2xx(code)) {
        finish_message(code, queued_as_id(reply.last_line), now_ns - tx_.data_sent_ns);
        next_transaction();
      } else {
        finish_message(code, {}, now_ns - tx_.data_sent_ns);
        after_failed_transaction();
      }
      break;
    case Step::kRset:
      next_transaction();
      break;
    case Step::kQuit:
      return SessionStatus::kFinished;
    case Step::kCount:
      return fail("internal error");
  }
  return SessionStatus::kRunning;
}

}  // namespace ringmail::inject
