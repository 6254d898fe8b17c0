// The outbound SMTP client state machine: enter handlers send a state's command, reply handlers
// pick the next state, transport events end or advance the session. Reply framing lives in
// reply_parser, what a reply means in delivery_outcome, dot-stuffing in client_dot_stuffer.
// See client_session.h and docs/smtp-client.md.
#include "engine/smtp/client_session.h"

#include <fmt/format.h>

#include "engine/smtp/client_auth.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace ringmail::smtp {
namespace {

// Replaces every occurrence of each secret in `text` with a fixed mask.
void mask_secrets(const std::vector<std::string>& secrets, std::string& text) {
  constexpr std::string_view kMask = "********";
  for (const std::string& secret : secrets)
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kMask.size()))
      text.replace(at, secret.size(), kMask);
}

bool holds_secret(const std::vector<std::string>& secrets, std::string_view text) {
  for (const std::string& secret : secrets)
    if (text.find(secret) != std::string_view::npos) return true;
  return false;
}

}  // namespace

const ClientSession::StateFacts& ClientSession::facts(State s) {
  using T = ClientTimeouts;
  using S = ClientSession;
  static constexpr std::array<StateFacts, static_cast<size_t>(State::kCount)> kFacts{{
      {"connecting", ClientStage::kConnect, &T::connect, &S::on_greeting_reply},
      {"greeting", ClientStage::kGreeting, &T::greeting, &S::on_greeting_reply},
      {"ehlo", ClientStage::kEhlo, &T::helo, &S::on_ehlo_reply},
      {"helo", ClientStage::kHelo, &T::helo, &S::on_helo_reply},
      {"starttls", ClientStage::kEhlo, &T::helo, &S::on_starttls_reply},
      {"tls handshake", ClientStage::kEhlo, &T::helo, nullptr},
      {"auth", ClientStage::kEhlo, &T::helo, &S::on_auth_reply},
      {"mail", ClientStage::kMail, &T::mail, &S::on_mail_reply},
      {"rcpt", ClientStage::kRcpt, &T::rcpt, &S::on_rcpt_reply},
      {"data", ClientStage::kData, &T::data_init, &S::on_data_reply},
      {"body", ClientStage::kDataBlock, &T::data_block, nullptr},
      {"dot", ClientStage::kDot, &T::final_dot, &S::on_dot_reply},
      {"rset", ClientStage::kRset, &T::rset, &S::on_rset_reply},
      {"idle", ClientStage::kIdle, nullptr, &S::on_idle_reply},
      {"quit", ClientStage::kQuit, &T::quit, &S::on_quit_reply},
      {"closed", ClientStage::kQuit, nullptr, nullptr},
  }};
  static_assert(kFacts.size() == static_cast<size_t>(State::kCount), "one entry per state");
  return kFacts[static_cast<size_t>(s)];
}

ClientSession::ClientSession(const ClientConfig& config, ClientHooks& hooks) : config_(config), hooks_(hooks) {
  if (config_.auth.password.empty()) return;
  // The password as typed and as we send it (LOGIN's answer, PLAIN's blob): a server may echo any
  // of them, e.g. quoting a command line it did not understand.
  secrets_.push_back(config_.auth.password);
  append_base64(config_.auth.password, secrets_.emplace_back());
  std::string plain;
  append_auth_plain(config_.auth, plain);  // "AUTH PLAIN <blob>\r\n"
  secrets_.push_back(plain.substr(11, plain.size() - 13));
  wipe(plain);
  // Longest first: masking a shorter form inside a longer one first would leave the rest of the
  // longer one in the text.
  std::sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

ClientSession::~ClientSession() {
  for (std::string& s : secrets_) wipe(s);
  wipe(scrubbed_.reply.text);
}

std::string_view ClientSession::state_name() const { return facts(state_).name; }
ClientStage ClientSession::stage() const { return facts(state_).stage; }

std::chrono::seconds ClientSession::timeout() const {
  if (state_ == State::kIdle) return config_.idle_timeout;
  auto member = facts(state_).timeout;
  return member == nullptr ? std::chrono::seconds{0} : config_.timeouts.*member;
}

ClientAction ClientSession::current_action() const {
  switch (state_) {
    case State::kClosed: return ClientAction::kClose;
    case State::kBody: return ClientAction::kSendMore;
    default: return ClientAction::kNeedInput;
  }
}

// ---- transport events ----

ClientAction ClientSession::on_connected(std::string&) {
  if (state_ == State::kConnecting) state_ = State::kGreeting;
  return current_action();
}

ClientAction ClientSession::on_input(std::string_view bytes, std::string& out) {
  if (state_ == State::kClosed) return ClientAction::kClose;
  if (state_ == State::kBody) {
    // Servers do not speak during DATA; a reply now (an early 5xx, a 421) is kept and read as the
    // verdict on the message once the dot is out. Bounded, as everything read from the network.
    if (input_.size() + bytes.size() > config_.max_buffered_input) {
      end_session_quietly(classify_transport_failure(ClientStage::kDataBlock, TransportFailure::kProtocolError,
                                                     "server sent too much while we were sending message data"));
      return ClientAction::kClose;
    }
    input_.append(bytes);
    return current_action();
  }
  const State before = state_;
  process(bytes, out);
  // kStartTls is said once, on the input that carried the 220; afterwards the session just waits.
  if (state_ == State::kHandshake && before != State::kHandshake) return ClientAction::kStartTls;
  return current_action();
}

// Parses replies from `input` and hands each to the current state's handler until the input is used
// up, the session ends, or message data starts (the rest is kept in input_).
void ClientSession::process(std::string_view input, std::string& out) {
  while (!input.empty()) {
    ReplyHandler handler = facts(state_).on_reply;
    if (handler == nullptr) {
      if (state_ == State::kBody) input_.append(input);
      return;
    }
    switch (parser_.parse(input)) {
      case ReplyParser::Status::kNeedMore: return;
      case ReplyParser::Status::kError:
        end_session_quietly(
            classify_transport_failure(stage(), TransportFailure::kProtocolError, reply_error_name(parser_.error())));
        return;
      case ReplyParser::Status::kReply:
        if (config_.transcript) received(parser_.reply());
        (this->*handler)(parser_.reply(), out);
        break;
    }
    // RFC 3207 §4.2 and CVE-2011-0411: whatever the server sent after its 220 in clear text is not
    // trusted; it is dropped, and TLS starts from a clean parser.
    if (state_ == State::kHandshake) {
      parser_.reset();
      return;
    }
  }
}

ClientAction ClientSession::on_tls_ready(std::string& out) {
  if (state_ != State::kHandshake) return current_action();
  tls_active_ = true;
  caps_ = ServerCapabilities{};
  enter_ehlo(out);
  return current_action();
}

ClientAction ClientSession::on_tls_failed(std::string_view why) {
  if (state_ == State::kClosed) return ClientAction::kClose;
  if (state_ != State::kHandshake) {
    // TLS broke in the middle of the dialogue: the same as a lost connection at this stage (which
    // knows, for instance, that after the final dot the message may have arrived).
    on_connection_lost(why);
    return ClientAction::kClose;
  }
  end_session_quietly(tls_failure_outcome(ClientStage::kEhlo, fmt::format("STARTTLS failed: {}", why)));
  return ClientAction::kClose;
}

ClientAction ClientSession::on_output_drained(std::string& out) {
  if (state_ != State::kBody) return current_action();
  if (!stuffer_.produce(out, config_.max_output_chunk)) return ClientAction::kSendMore;
  // The final dot is in `out`: from here on a lost connection may mean the message arrived.
  state_ = State::kDot;
  data_sent();
  if (!input_.empty()) {
    std::string early;
    early.swap(input_);
    process(early, out);
    if (input_.empty()) {  // keep the buffer's capacity
      early.clear();
      input_.swap(early);
    }
  }
  return current_action();
}

ClientAction ClientSession::on_timeout(std::string& out) {
  switch (state_) {
    case State::kClosed: return ClientAction::kClose;
    case State::kIdle: enter_quit(out); return current_action();
    case State::kQuit: {
      DeliveryOutcome done = classify_reply(ClientStage::kQuit, Reply{221, "", "no reply to QUIT"});
      end_session_quietly(done);
      return ClientAction::kClose;
    }
    case State::kConnecting:
      end_session_quietly(classify_transport_failure(ClientStage::kConnect, TransportFailure::kConnectFailed, "timeout"));
      return ClientAction::kClose;
    default:
      end_session_quietly(classify_transport_failure(stage(), TransportFailure::kTimeout, {}));
      return ClientAction::kClose;
  }
}

void ClientSession::on_connection_lost(std::string_view error) {
  switch (state_) {
    case State::kClosed: return;
    case State::kQuit:
      // The server may close without answering QUIT; all work was finished before QUIT was sent.
      end_session_quietly(classify_reply(ClientStage::kQuit, Reply{221, "", "connection closed after QUIT"}));
      return;
    case State::kConnecting:
      end_session_quietly(classify_transport_failure(ClientStage::kConnect, TransportFailure::kConnectFailed, error));
      return;
    default: {
      std::string detail(error);
      if (parser_.partial()) detail = detail.empty() ? "closed in the middle of a reply" : detail + " (in the middle of a reply)";
      end_session_quietly(classify_transport_failure(stage(), TransportFailure::kLost, detail));
      return;
    }
  }
}

ClientAction ClientSession::offer(std::string& out) {
  if (state_ == State::kIdle) start_next_transaction(out);
  return current_action();
}

bool ClientSession::in_transaction() const {
  switch (state_) {
    case State::kMail:
    case State::kRcpt:
    case State::kData:
    case State::kBody:
    case State::kDot:
    case State::kRset:
      return true;
    default:
      return false;
  }
}

ClientAction ClientSession::shutdown(std::string& out, bool now) {
  if (state_ == State::kIdle) {
    enter_quit(out);
  } else if (!now && in_transaction()) {
    draining_ = true;  // start_next_transaction() says QUIT
  } else if (state_ != State::kClosed && state_ != State::kQuit) {
    end_session_quietly(classify_transport_failure(stage(), TransportFailure::kLost, "ringmail is shutting down"));
  }
  return current_action();
}

// ---- enter handlers ----

void ClientSession::enter_ehlo(std::string& out) {
  const size_t from = out.size();
  fmt::format_to(std::back_inserter(out), "EHLO {}\r\n", config_.helo_name);
  sent(out, from);
  state_ = State::kEhlo;
}

void ClientSession::enter_helo(std::string& out) {
  const size_t from = out.size();
  fmt::format_to(std::back_inserter(out), "HELO {}\r\n", config_.helo_name);
  sent(out, from);
  state_ = State::kHelo;
}

void ClientSession::enter_starttls(std::string& out) {
  command(out, "STARTTLS");
  state_ = State::kStartTls;
}

void ClientSession::enter_auth(std::string& out) {
  std::string_view mech = choose_auth_mechanism(config_.auth, caps_.auth_mechanisms);
  auth_login_ = mech == "LOGIN";
  auth_step_ = 0;
  if (auth_login_) {
    command(out, "AUTH LOGIN");
  } else {
    append_auth_plain(config_.auth, out);
    sent_secret("AUTH PLAIN ****");
  }
  state_ = State::kAuth;
}

void ClientSession::after_greeting_exchange(std::string& out) {
  if (!tls_active_ && !starttls_refused_ && config_.starttls != StartTls::kNever) {
    if (caps_.starttls) return enter_starttls(out);
    if (config_.starttls == StartTls::kRequired)
      return end_session(tls_failure_outcome(ClientStage::kEhlo, "TLS is required but the server does not offer STARTTLS"),
                         true, out);
  }
  if (config_.auth.enabled() && !authenticated_) {
    if (config_.auth.password.empty())
      return end_session(auth_failure_outcome(ClientStage::kEhlo, "AUTH credentials are not loaded (no password)"),
                         true, out);
    if (!tls_active_ && !config_.auth.allow_plaintext)
      return end_session(auth_failure_outcome(ClientStage::kEhlo, "AUTH needs TLS and this session is not encrypted"),
                         true, out);
    if (choose_auth_mechanism(config_.auth, caps_.auth_mechanisms).empty())
      return end_session(
          auth_failure_outcome(ClientStage::kEhlo,
                               fmt::format("the server offers no usable AUTH mechanism (announced: \"{}\", wanted: {})",
                                           caps_.auth_mechanisms,
                                           config_.auth.mechanism.empty() ? "PLAIN or LOGIN" : config_.auth.mechanism)),
          true, out);
    return enter_auth(out);
  }
  start_next_transaction(out);
}

void ClientSession::enter_mail(std::string& out) {
  const OutboundTransaction& t = *txn_;
  const size_t from = out.size();
  fmt::format_to(std::back_inserter(out), "MAIL FROM:<{}>", t.mail_from);
  if (caps_.size) fmt::format_to(std::back_inserter(out), " SIZE={}", t.size);
  if (t.body_8bit) out += " BODY=8BITMIME";  // refuse_locally() made sure 8BITMIME is there
  if (t.smtputf8) out += " SMTPUTF8";
  if (caps_.dsn && !t.dsn_mail_params.empty()) {
    out += ' ';
    out += t.dsn_mail_params;
  }
  out += "\r\n";
  sent(out, from);
  ++transactions_sent_;
  state_ = State::kMail;
  if (pipelined_) {
    // RFC 2920 §3.1: MAIL and RCPT may be grouped; DATA must be the last command of the group. The
    // replies come back in order and are matched by count (on_mail_reply, on_rcpt_reply, on_data_reply).
    for (size_t i = 0; i < rcpt_count_; ++i) send_rcpt(i, out);
    command(out, "DATA");
  }
}

void ClientSession::send_rcpt(size_t index, std::string& out) {
  const OutboundRecipient& r = txn_->recipients[index];
  const size_t from = out.size();
  fmt::format_to(std::back_inserter(out), "RCPT TO:<{}>", r.address);
  if (caps_.dsn && !r.dsn_params.empty()) {
    out += ' ';
    out += r.dsn_params;
  }
  out += "\r\n";
  sent(out, from);
}

void ClientSession::enter_data(std::string& out) {
  command(out, "DATA");
  state_ = State::kData;
}

void ClientSession::enter_body(std::string& out) {
  stuffer_.start(txn_->body);
  state_ = State::kBody;
  if (stuffer_.produce(out, config_.max_output_chunk)) {
    // Small message: data and dot went out in one piece.
    state_ = State::kDot;
    data_sent();
  }
}

void ClientSession::enter_rset(std::string& out) {
  command(out, "RSET");
  state_ = State::kRset;
}

void ClientSession::enter_quit(std::string& out) {
  command(out, "QUIT");
  state_ = State::kQuit;
}

// ---- transactions ----

bool ClientSession::refuse_locally(const OutboundTransaction& t) {
  if (t.smtputf8 && !caps_.smtputf8) {
    report_all(RcptState::kPending, classify_local_refusal(LocalRefusal::kNeedsSmtpUtf8, 0));
    return true;
  }
  if (t.body_8bit && !caps_.eight_bit_mime) {
    // RFC 6152 §3: no 8-bit data to a server without 8BITMIME. We do not down-convert to 7 bit.
    report_all(RcptState::kPending, classify_local_refusal(LocalRefusal::kNeeds8BitMime, 0));
    return true;
  }
  if (caps_.max_size != 0 && t.size > caps_.max_size) {
    // RFC 1870 §6: do not send a message larger than the announced fixed maximum.
    report_all(RcptState::kPending, classify_local_refusal(LocalRefusal::kTooBig, caps_.max_size));
    return true;
  }
  return false;
}

void ClientSession::start_next_transaction(std::string& out) {
  // A loop rather than chained calls: transactions refused by the local checks are finished here
  // and the next one is taken at once, without a round trip.
  for (;;) {
    if (draining_) return enter_quit(out);
    if (config_.max_messages_per_connection != 0 && transactions_sent_ >= config_.max_messages_per_connection)
      return enter_quit(out);
    const OutboundTransaction* t = hooks_.next_transaction();
    if (t == nullptr) {
      if (config_.idle_timeout.count() > 0) {
        state_ = State::kIdle;
        return;
      }
      return enter_quit(out);
    }
    txn_ = t;
    rcpt_state_.assign(t->recipients.size(), RcptState::kPending);
    rcpt_count_ = std::min(t->recipients.size(), config_.max_recipients_per_transaction);
    rcpt_replies_ = 0;
    accepted_ = 0;
    mail_accepted_ = false;
    pipelined_ = config_.use_pipelining && caps_.pipelining;
    if (rcpt_count_ < t->recipients.size()) {
      // The engine groups at most the cap; if it sent more, the rest waits for another transaction.
      DeliveryOutcome over = classify_local_refusal(LocalRefusal::kTooManyRecipients, config_.max_recipients_per_transaction);
      for (size_t i = rcpt_count_; i < t->recipients.size(); ++i) report(i, over);
    }
    if (rcpt_count_ == 0 || refuse_locally(*t)) {
      end_transaction();
      continue;
    }
    return enter_mail(out);
  }
}

void ClientSession::report(size_t index, const DeliveryOutcome& outcome) {
  if (rcpt_state_[index] == RcptState::kDone) return;
  rcpt_state_[index] = RcptState::kDone;
  hooks_.on_recipient_result(*txn_, index, without_secret(outcome));
}

// Outcomes reach logs and DSNs (which go to senders): the smart-host password never leaves in one,
// even when a server echoes it in a reply. Masked wherever it appears; other outcomes pass as they are.
const DeliveryOutcome& ClientSession::without_secret(const DeliveryOutcome& outcome) {
  if (secrets_.empty() || !holds_secret(secrets_, outcome.reply.text)) return outcome;
  scrubbed_ = outcome;
  mask_secrets(secrets_, scrubbed_.reply.text);
  return scrubbed_;
}

// ---- protocol log ----

void ClientSession::sent(const std::string& out, size_t from) {
  if (!config_.transcript) return;
  std::string_view rest = std::string_view(out).substr(from);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    if (end == std::string_view::npos) end = rest.size();
    hooks_.on_transcript(TranscriptKind::kSent, rest.substr(0, end));
    rest.remove_prefix(std::min(rest.size(), end + 2));
  }
}

void ClientSession::command(std::string& out, std::string_view line) {
  out.append(line);
  out += "\r\n";
  if (config_.transcript) hooks_.on_transcript(TranscriptKind::kSent, line);
}

void ClientSession::sent_secret(std::string_view shown) {
  if (config_.transcript) hooks_.on_transcript(TranscriptKind::kSent, shown);
}

void ClientSession::received(const Reply& reply) {
  // The parser keeps the text without codes (the enhanced code stripped from every line): put
  // them back in front of each line, as the server sent them.
  std::string line;
  std::string_view text = reply.text;
  for (;;) {
    const size_t nl = text.find('\n');
    const bool last = nl == std::string_view::npos;
    line.clear();
    fmt::format_to(std::back_inserter(line), "{}{}{}{}", reply.code, last ? ' ' : '-', reply.enhanced,
                   reply.enhanced.empty() ? "" : " ");
    line.append(text.substr(0, nl));
    if (!secrets_.empty()) mask_secrets(secrets_, line);
    hooks_.on_transcript(TranscriptKind::kReceived, line);
    if (last) break;
    text.remove_prefix(nl + 1);
  }
}

void ClientSession::data_sent() {
  if (config_.transcript)
    hooks_.on_transcript(TranscriptKind::kNote, fmt::format("message data: {} octets, then \".\"", txn_->body.size()));
}

void ClientSession::report_all(RcptState which, const DeliveryOutcome& outcome) {
  for (size_t i = 0; i < rcpt_state_.size(); ++i)
    if (rcpt_state_[i] == which) report(i, outcome);
}

void ClientSession::end_transaction() {
  const OutboundTransaction* t = txn_;
  txn_ = nullptr;
  hooks_.on_transaction_done(*t);
}

void ClientSession::end_session(const DeliveryOutcome& why, bool quit, std::string& out) {
  if (quit) command(out, "QUIT");
  end_session_quietly(why);
}

void ClientSession::end_session_quietly(const DeliveryOutcome& why) {
  if (txn_ != nullptr) {
    report_all(RcptState::kAccepted, why);
    report_all(RcptState::kPending, why);
    end_transaction();
  }
  state_ = State::kClosed;
  input_.clear();
  if (!session_reported_) {
    session_reported_ = true;
    hooks_.on_session_result(without_secret(why));
  }
}

// ---- reply handlers ----

void ClientSession::on_greeting_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kGreeting, reply, o);
  if (!o.ok()) return end_session(o, reply.code != 421 && !o.local, out);
  enter_ehlo(out);
}

void ClientSession::on_ehlo_reply(const Reply& reply, std::string& out) {
  if (reply.klass() == 5) return enter_helo(out);  // 500/502 "command not recognized": an old server (RFC 5321 §3.2)
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kEhlo, reply, o);
  if (!o.ok()) return end_session(o, reply.code != 421 && !o.local, out);
  caps_ = parse_ehlo_capabilities(reply);
  after_greeting_exchange(out);
}

void ClientSession::on_helo_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kHelo, reply, o);
  if (!o.ok()) return end_session(o, reply.code != 421 && !o.local, out);
  caps_ = ServerCapabilities{};  // HELO: no service extensions at all (so no STARTTLS, no AUTH)
  after_greeting_exchange(out);
}

void ClientSession::on_starttls_reply(const Reply& reply, std::string& out) {
  if (reply.code == 220) {
    state_ = State::kHandshake;  // process() drops the rest of the clear-text input
    return;
  }
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kEhlo, reply, o);
  if (reply.code == 421) return end_session(o, false, out);
  if (config_.starttls == StartTls::kRequired || reply.klass() == 2) {
    // A positive reply other than 220 is not an invitation to TLS either.
    return end_session(tls_failure_outcome(ClientStage::kEhlo, fmt::format("STARTTLS refused: host said {} {}{}{}",
                                                                           reply.code, reply.enhanced,
                                                                           reply.enhanced.empty() ? "" : " ", reply.text)),
                       true, out);
  }
  starttls_refused_ = true;  // opportunistic: carry on in plain text with what EHLO announced
  after_greeting_exchange(out);
}

void ClientSession::on_auth_reply(const Reply& reply, std::string& out) {
  if (reply.code == 334 && auth_login_ && auth_step_ < 2) {
    // LOGIN: the first challenge asks for the username, the second for the password.
    append_base64(auth_step_ == 0 ? config_.auth.username : config_.auth.password, out);
    out += "\r\n";
    sent_secret("****");
    ++auth_step_;
    return;
  }
  if (reply.klass() == 2) {
    authenticated_ = true;
    return start_next_transaction(out);
  }
  if (reply.code == 421) {
    DeliveryOutcome& o = outcome_;
    classify_reply(ClientStage::kEhlo, reply, o);
    return end_session(o, false, out);
  }
  // A 334 we did not expect means the server wants another round: cancel it ("*", RFC 4954 §4)
  // rather than send anything else, and give up this host. The reply text of a refusal is the
  // server's; our credentials are never part of it.
  if (reply.code == 334) command(out, "*");
  end_session(auth_failure_outcome(ClientStage::kEhlo, fmt::format("AUTH {} refused: host said {} {}{}{}",
                                                                   auth_login_ ? "LOGIN" : "PLAIN", reply.code,
                                                                   reply.enhanced, reply.enhanced.empty() ? "" : " ",
                                                                   reply.text)),
              reply.code != 334, out);
}

void ClientSession::on_mail_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kMail, reply, o);
  if (o.local || o.scope == FailureScope::kConnection) return end_session(o, false, out);
  mail_accepted_ = o.ok();
  // A refused MAIL decides for every recipient. Pipelined RCPT/DATA replies still arrive (503s) and
  // are read and ignored by the handlers below.
  if (!mail_accepted_) report_all(RcptState::kPending, o);
  if (pipelined_) {
    state_ = State::kRcpt;
    return;
  }
  if (!mail_accepted_) {
    end_transaction();
    return enter_rset(out);
  }
  send_rcpt(0, out);
  state_ = State::kRcpt;
}

void ClientSession::on_rcpt_reply(const Reply& reply, std::string& out) {
  const size_t index = rcpt_replies_++;
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kRcpt, reply, o);
  if (o.local || o.scope == FailureScope::kConnection) return end_session(o, false, out);
  if (mail_accepted_) {
    if (o.ok()) {
      rcpt_state_[index] = RcptState::kAccepted;
      ++accepted_;
    } else {
      report(index, o);
    }
  }
  if (rcpt_replies_ < rcpt_count_) {
    if (!pipelined_) send_rcpt(rcpt_replies_, out);
    return;
  }
  if (pipelined_) {
    state_ = State::kData;  // DATA went out with the group
    return;
  }
  if (accepted_ > 0) return enter_data(out);
  // Lock-step and nobody accepted: DATA is not sent at all.
  end_transaction();
  enter_rset(out);
}

void ClientSession::on_data_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kData, reply, o);
  if (o.ok() && accepted_ == 0) {
    // Pipelined, every RCPT (or MAIL) refused, yet 354 to DATA: the server breaks RFC 2920 §3.1 and is
    // now reading message text. Neither RSET nor QUIT would be read as commands, and an empty "."
    // could deliver an empty message if we and the server disagree about a recipient. Every
    // recipient already has its result, so the safe way out is to close without sending anything.
    return end_session_quietly(classify_transport_failure(ClientStage::kData, TransportFailure::kProtocolError,
                                                          "354 to DATA although no recipient was accepted"));
  }
  if (o.ok()) return enter_body(out);
  if (o.local || o.scope == FailureScope::kConnection) return end_session(o, false, out);
  report_all(RcptState::kAccepted, o);
  end_transaction();
  enter_rset(out);
}

void ClientSession::on_dot_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kDot, reply, o);
  if (o.local || o.scope == FailureScope::kConnection) return end_session(o, false, out);
  // The verdict on the message applies to every recipient accepted in this transaction.
  report_all(RcptState::kAccepted, o);
  end_transaction();
  // The transaction is over whatever the verdict (RFC 5321 §4.1.1.4): the next MAIL needs no RSET.
  start_next_transaction(out);
}

void ClientSession::on_rset_reply(const Reply& reply, std::string& out) {
  DeliveryOutcome& o = outcome_;
  classify_reply(ClientStage::kRset, reply, o);
  if (!o.ok()) return end_session(o, reply.code != 421 && !o.local, out);
  start_next_transaction(out);
}

void ClientSession::on_idle_reply(const Reply& reply, std::string&) {
  // Unasked-for while idle: usually "421 timeout" before the server closes. Nothing is pending.
  end_session_quietly(classify_transport_failure(ClientStage::kIdle, TransportFailure::kLost,
                                                 fmt::format("server sent {} {}", reply.code, reply.text)));
}

void ClientSession::on_quit_reply(const Reply& reply, std::string&) {
  end_session_quietly(classify_reply(ClientStage::kQuit, reply));
}

}  // namespace ringmail::smtp
