// Fuzz target: the outbound SMTP client session (engine/smtp/client_session.h) against a broken or
// hostile server. The input scripts the server side: replies (any bytes), timeouts, a lost
// connection, new work, shutdown, TLS outcomes. Whatever it does:
//   - every recipient the session took (next_transaction) gets exactly one outcome, and each
//     transaction is done only after all of its recipients have one; nothing is reported after the
//     session result, which comes exactly once — so delivery never loses or double-counts a
//     recipient, whatever the server sends;
//   - the smart-host password never appears in an outcome (outcomes go to logs and DSNs) in any
//     form we send it, even when the server echoes it;
//   - the protocol log (ClientConfig::transcript) holds single lines, never the credentials in any
//     form we send them (raw, PLAIN's blob, LOGIN's answers);
//   - server bytes fed whole or in chunks give the same output, outcomes and protocol log.
//
// Input: 1 byte of settings (pipelining, STARTTLS policy, AUTH, one message per connection),
// 1 byte chunk seed, 1 byte of transactions and recipients, then events: one byte each (low 3 bits
// the kind), server input carrying a length byte and its bytes.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/smtp/client_auth.h"
#include "engine/smtp/client_session.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace smtp = ringmail::smtp;

namespace {

constexpr std::string_view kPassword = "s3cr3t-Pa55";

class Hooks final : public smtp::ClientHooks {
 public:
  explicit Hooks(const std::vector<smtp::OutboundTransaction>& txns) : txns_(txns) {
    for (const auto& t : txns) work.push_back(&t);
  }
  const smtp::OutboundTransaction* next_transaction() override {
    FUZZ_CHECK(!session_done);
    if (work.empty()) {
      log += "next:none;";
      return nullptr;
    }
    const smtp::OutboundTransaction* t = work.front();
    work.pop_front();
    taken.push_back(t);
    log += "next:" + std::to_string(id(*t)) + ";";
    return t;
  }
  void on_recipient_result(const smtp::OutboundTransaction& txn, size_t i, const smtp::DeliveryOutcome& o) override {
    FUZZ_CHECK(!session_done);
    FUZZ_CHECK(i < txn.recipients.size());
    FUZZ_CHECK(reported.insert({id(txn), i}).second);  // exactly once
    check_outcome(o);
    log += "r" + std::to_string(id(txn)) + ":" + std::to_string(i) + ":" + std::to_string(static_cast<int>(o.kind)) +
           ":" + std::to_string(o.reply.code) + ";";
  }
  void on_transaction_done(const smtp::OutboundTransaction& txn) override {
    FUZZ_CHECK(!session_done);
    for (size_t i = 0; i < txn.recipients.size(); ++i) FUZZ_CHECK(reported.count({id(txn), i}) == 1);
    FUZZ_CHECK(done.insert(id(txn)).second);
    log += "done" + std::to_string(id(txn)) + ";";
  }
  void on_session_result(const smtp::DeliveryOutcome& o) override {
    FUZZ_CHECK(!session_done);
    session_done = true;
    check_outcome(o);
    log += "session:" + std::to_string(static_cast<int>(o.kind)) + ";";
  }
  void on_transcript(smtp::TranscriptKind kind, std::string_view line) override {
    // One line each: a server line may hold a bare CR (its bytes come as they are), ours never.
    FUZZ_CHECK(line.find('\n') == std::string_view::npos);
    if (kind != smtp::TranscriptKind::kReceived) FUZZ_CHECK(line.find('\r') == std::string_view::npos);
    if (has_password) {
      FUZZ_CHECK(line.find(kPassword) == std::string_view::npos);  // even if echoed
      for (const auto& secret : secrets) FUZZ_CHECK(line.find(secret) == std::string_view::npos);
    }
    log += "t" + std::to_string(static_cast<int>(kind)) + ":" + std::string(line) + ";";
  }
  void check_outcome(const smtp::DeliveryOutcome& o) const {
    if (!has_password) return;
    FUZZ_CHECK(o.reply.text.find(kPassword) == std::string::npos);  // even if echoed
    for (const auto& secret : secrets) FUZZ_CHECK(o.reply.text.find(secret) == std::string::npos);
  }
  bool has_password = false;  // the session was configured with kPassword
  std::vector<std::string> secrets;  // the credentials as the session sends them (base64)
  size_t id(const smtp::OutboundTransaction& t) const { return static_cast<size_t>(&t - txns_.data()); }

  std::deque<const smtp::OutboundTransaction*> work;  // not yet handed out
  std::vector<const smtp::OutboundTransaction*> taken;
  std::set<std::pair<size_t, size_t>> reported;
  std::set<size_t> done;
  bool session_done = false;
  std::string log;  // everything reported, in order, for the whole-versus-chunked comparison

 private:
  const std::vector<smtp::OutboundTransaction>& txns_;
};

struct Event {
  uint8_t kind;
  std::string server;  // kind 0: server bytes
};

struct Run {
  std::string output;
  std::string log;
};

Run run(const smtp::ClientConfig& config, const std::vector<smtp::OutboundTransaction>& txns,
        const std::vector<Event>& events, bool whole, uint8_t seed) {
  Hooks hooks(txns);
  std::deque<const smtp::OutboundTransaction*> held;  // offered later by kind-3 events
  while (hooks.work.size() > 1) {
    held.push_front(hooks.work.back());
    hooks.work.pop_back();
  }
  hooks.has_password = config.auth.password == kPassword;
  if (hooks.has_password) {
    std::string plain, user, pass;
    smtp::append_auth_plain(config.auth, plain);  // "AUTH PLAIN <blob>\r\n"
    hooks.secrets.push_back(plain.substr(11, plain.size() - 13));
    smtp::append_base64(config.auth.password, pass);
    hooks.secrets.push_back(pass);
  }
  smtp::ClientSession s(config, hooks);
  Run r;
  std::string out;
  smtp::ClientAction a = s.on_connected(out);
  bool tls_pending = false;
  auto settle = [&](smtp::ClientAction action) {
    // Drive kSendMore to the end of the data, as the engine does once each chunk is written.
    for (int guard = 0; action == smtp::ClientAction::kSendMore; ++guard) {
      FUZZ_CHECK(guard < 100000);
      action = s.on_output_drained(out);
    }
    if (action == smtp::ClientAction::kStartTls) tls_pending = true;
    r.output += out;
    out.clear();
    return action;
  };
  a = settle(a);
  for (const Event& e : events) {
    if (s.finished()) break;
    switch (e.kind % 8) {
      case 0: {
        std::vector<size_t> ends{e.server.size()};
        if (!whole && !e.server.empty()) ends = ringmail::fuzz::cut_points(e.server.size(), seed, 16);
        size_t prev = 0;
        for (size_t end : ends) {
          if (s.finished()) break;
          a = settle(s.on_input(std::string_view(e.server).substr(prev, end - prev), out));
          prev = end;
        }
        break;
      }
      case 1: a = settle(s.on_timeout(out)); break;
      case 2: s.on_connection_lost("Connection reset by peer"); break;
      case 3:
        if (!held.empty()) {
          hooks.work.push_back(held.front());
          held.pop_front();
        }
        a = settle(s.offer(out));
        break;
      case 4: a = settle(s.shutdown(out)); break;
      case 5: a = settle(s.shutdown(out, true)); break;
      case 6:
        if (tls_pending) {
          tls_pending = false;
          a = settle(s.on_tls_ready(out));
        }
        break;
      case 7:
        if (tls_pending) {
          tls_pending = false;
          a = settle(s.on_tls_failed("certificate verify failed"));
        }
        break;
    }
  }
  if (!s.finished()) s.on_connection_lost("end of the fuzz input");
  FUZZ_CHECK(s.finished());
  // Nothing lost: every recipient the session took has its outcome, every transaction is done,
  // and the session result came.
  FUZZ_CHECK(hooks.session_done);
  for (const smtp::OutboundTransaction* t : hooks.taken) {
    for (size_t i = 0; i < t->recipients.size(); ++i) FUZZ_CHECK(hooks.reported.count({hooks.id(*t), i}) == 1);
    FUZZ_CHECK(hooks.done.count(hooks.id(*t)) == 1);
  }
  r.log = hooks.log;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  uint8_t settings = in.byte();
  uint8_t seed = in.byte();
  uint8_t shape = in.byte();

  smtp::ClientConfig config;
  config.helo_name = "out.example.org";
  config.use_pipelining = settings & 1;
  config.starttls = static_cast<smtp::StartTls>((settings >> 1) % 3);
  if (settings & 8) {
    config.auth.username = "relay-user";
    config.auth.password = std::string(kPassword);
    config.auth.allow_plaintext = settings & 16;
    config.auth.mechanism = (settings & 32) ? "LOGIN" : "";
  }
  config.max_messages_per_connection = (settings & 64) ? 1 : 0;
  config.max_recipients_per_transaction = 1 + (shape >> 6);
  config.max_output_chunk = 7;  // many kSendMore steps
  config.transcript = settings & 128;

  static const std::string body = "Subject: t\r\n\r\n.leading dot\r\nline\r\n";
  std::vector<smtp::OutboundTransaction> txns(1 + shape % 3);
  for (size_t t = 0; t < txns.size(); ++t) {
    txns[t].mail_from = t == 2 ? "" : "sender@example.org";
    size_t n = 1 + (shape >> 2) % 4;
    for (size_t i = 0; i < n; ++i) txns[t].recipients.push_back({"r" + std::to_string(i) + "@example.com", ""});
    txns[t].body = body;
    txns[t].size = body.size();
  }
  std::vector<Event> events;
  while (!in.empty() && events.size() < 64) {
    Event e{in.byte(), {}};
    if (e.kind % 8 == 0) e.server = std::string(in.piece());
    events.push_back(std::move(e));
  }
  Run whole = run(config, txns, events, true, 0);
  Run chunked = run(config, txns, events, false, seed);
  FUZZ_CHECK(whole.output == chunked.output);
  FUZZ_CHECK(whole.log == chunked.log);
  return 0;
}
