// Transcript tests of the server session's STARTTLS (RFC 3207), --require-tls and AUTH PLAIN/LOGIN
// (RFC 4954). The client's bytes come in two parts, before and after the handshake; the clear part
// is fed whole, byte by byte and split at every offset, and all runs must agree. Bytes that follow
// STARTTLS in clear text must never be answered (the CVE-2011-0411 defence).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "common/log.h"
#include "engine/smtp/sasl.h"
#include "engine/smtp/server_session.h"

namespace ringmail::smtp {
namespace {

using namespace std::chrono_literals;

const WallTime kNow{std::chrono::seconds(1'800'000'000)};  // Fri, 15 Jan 2027 08:00:00 UTC
const std::string kPassword = "s3cret-Pa55";               // the one good password (user "alice")

class AuthHooks final : public ServerHooks {
 public:
  std::string new_queue_id() override { return fmt::format("Q{}", ++ids_); }
  WallTime now() override { return kNow; }
  bool verify_credentials(std::string_view user, std::string_view password) override {
    ++checks;
    return user == "alice" && password == kPassword;
  }
  int checks = 0;  // verify_credentials calls

 private:
  int ids_ = 0;  // queue IDs handed out
};

std::string L(std::initializer_list<std::string_view> lines) {
  std::string s;
  for (auto l : lines) {
    s += l;
    s += "\r\n";
  }
  return s;
}

std::string b64(std::string_view bytes) {
  std::string s;
  append_base64(bytes, s);
  return s;
}

std::string plain(std::string_view authzid, std::string_view user, std::string_view password) {
  std::string m(authzid);
  m += '\0';
  m += user;
  m += '\0';
  m += password;
  return b64(m);
}

ServerConfig config(bool tls, bool auth, bool require_tls = false) {
  ServerConfig c;
  c.hostname = "mx.test";
  c.limits.max_message_size = 2000;
  c.limits.tls_handshake_timeout = 7s;
  c.security.tls_available = tls;
  c.security.auth_available = auth;
  c.security.require_tls = require_tls;
  return c;
}

PeerInfo peer(bool relay) {
  PeerInfo p;
  p.remote = *SocketAddress::parse("192.0.2.7:40000");
  p.relay_allowed = relay;
  return p;
}

const std::string kGreeting = "220 mx.test ESMTP ringmail\r\n";
const std::string kEhloBase = L({"250-mx.test", "250-PIPELINING", "250-SIZE 2000", "250-8BITMIME",
                                 "250-ENHANCEDSTATUSCODES"});
const std::string kEhloPlain = kEhloBase + "250-SMTPUTF8\r\n250 DSN\r\n";
const std::string kEhloStarttls = kEhloBase + "250-SMTPUTF8\r\n250-DSN\r\n250 STARTTLS\r\n";
const std::string kEhloAuth = kEhloBase + "250-SMTPUTF8\r\n250-DSN\r\n250 AUTH PLAIN LOGIN\r\n";
const std::string k220Tls = "220 2.0.0 Ready to start TLS\r\n";
const std::string kOk = "250 2.0.0 Ok\r\n";
const std::string k235 = "235 2.7.0 Authentication successful\r\n";
const std::string k535 = "535 5.7.8 Authentication credentials invalid\r\n";
const TlsInfo kTls{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};

struct Outcome {
  std::string clear_replies;  // greeting and replies before the handshake
  std::string tls_replies;    // replies after on_tls_established
  bool handshake = false;     // the session asked for the handshake (kStartTls)
  bool closed = false;        // the session returned kClose
  std::vector<std::string> messages;  // message() at each kCommit
  std::vector<Envelope> envelopes;    // envelope() at each kCommit
};

// Feeds `clear` in chunks ending at `cuts`; once the session answers kStartTls, the remaining clear
// chunks go to the (simulated) TLS layer, never to the session, the handshake succeeds, and `tls` is
// fed in one piece. Commits always succeed.
Outcome run(const ServerConfig& cfg, const PeerInfo& p, const std::string& clear, const std::vector<size_t>& cuts,
        const std::string& tls, AuthHooks& hooks) {
  ServerSession s(cfg, p, hooks);
  Outcome r;
  s.start(r.clear_replies);
  auto drive = [&](Action a, std::string& out) {
    while (a == Action::kCommit) {
      r.messages.emplace_back(s.message());
      r.envelopes.push_back(s.envelope());
      a = s.on_commit(true, {}, out);
    }
    if (a == Action::kStartTls) r.handshake = true;
    if (a == Action::kClose) r.closed = true;
  };
  std::vector<size_t> ends = cuts;
  ends.push_back(clear.size());
  size_t prev = 0;
  for (size_t end : ends) {
    if (r.closed || r.handshake) break;
    drive(s.on_input(std::string_view(clear).substr(prev, end - prev), r.clear_replies), r.clear_replies);
    prev = end;
  }
  if (!r.handshake || r.closed) return r;
  EXPECT_TRUE(s.tls_handshake_pending());
  EXPECT_EQ(s.timeout(), 7s);
  EXPECT_EQ(s.on_tls_established(kTls, r.tls_replies), Action::kNeedInput);
  EXPECT_TRUE(s.tls_active());
  r.handshake = true;
  drive(s.on_input(tls, r.tls_replies), r.tls_replies);
  return r;
}

Outcome run_all_ways(const ServerConfig& cfg, const PeerInfo& p, const std::string& clear, const std::string& tls = {}) {
  AuthHooks hooks;
  Outcome whole = run(cfg, p, clear, {}, tls, hooks);
  for (size_t i = 1; i < clear.size(); ++i) {
    AuthHooks h;
    Outcome split = run(cfg, p, clear, {i}, tls, h);
    EXPECT_EQ(split.clear_replies, whole.clear_replies) << "split at " << i;
    EXPECT_EQ(split.tls_replies, whole.tls_replies) << "split at " << i;
    EXPECT_EQ(split.messages, whole.messages) << "split at " << i;
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < clear.size(); ++i) every_byte.push_back(i);
  AuthHooks h;
  Outcome bytewise = run(cfg, p, clear, every_byte, tls, h);
  EXPECT_EQ(bytewise.clear_replies, whole.clear_replies);
  EXPECT_EQ(bytewise.tls_replies, whole.tls_replies);
  return whole;
}

TEST(ServerStarttls, AdvertisedOnlyWithACertificateAndOnlyBeforeTls) {
  Outcome none = run_all_ways(config(false, false), peer(true), "EHLO c.test\r\n");
  EXPECT_EQ(none.clear_replies, kGreeting + kEhloPlain);
  Outcome tls = run_all_ways(config(true, false), peer(true), "EHLO c.test\r\nSTARTTLS\r\n", "EHLO c.test\r\n");
  EXPECT_EQ(tls.clear_replies, kGreeting + kEhloStarttls + k220Tls);
  EXPECT_EQ(tls.tls_replies, kEhloPlain);  // no STARTTLS (and no AUTH without credentials) over TLS
  // AUTH is offered only over TLS.
  Outcome auth = run_all_ways(config(true, true), peer(true), "EHLO c.test\r\nSTARTTLS\r\n", "EHLO c.test\r\n");
  EXPECT_EQ(auth.clear_replies, kGreeting + kEhloStarttls + k220Tls);
  EXPECT_EQ(auth.tls_replies, kEhloAuth);
}

TEST(ServerStarttls, PipelinedCommandsAfterStarttlsAreDiscarded) {
  // The injection test: RSET (and a whole transaction) in the same packet as STARTTLS.
  const std::string injected = "EHLO c.test\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n";
  Outcome r = run_all_ways(config(true, false), peer(true), injected, "MAIL FROM:<a@b.test>\r\nQUIT\r\n");
  EXPECT_EQ(r.clear_replies, kGreeting + kEhloStarttls + k220Tls);
  // After TLS the session starts afresh: no transaction, and EHLO is required again.
  EXPECT_EQ(r.tls_replies, "503 5.5.1 Error: send HELO/EHLO first\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(r.closed);
}

TEST(ServerStarttls, StateIsResetAfterTheHandshake) {
  Outcome r = run_all_ways(config(true, false), peer(true), "EHLO c.test\r\nSTARTTLS\r\n",
                       "EHLO again.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\nDATA\r\nhi\r\n.\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.envelopes[0].helo, "again.test");
  // The Received: header names the TLS version and cipher and the ESMTPS protocol (RFC 3848).
  EXPECT_EQ(r.messages[0],
            "Received: from again.test ([192.0.2.7])\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
            "\tby mx.test (ringmail) with ESMTPS id Q1\r\n"
            "\tfor <r@d.test>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"
            "hi\r\n");
}

TEST(ServerStarttls, StarttlsPipelinedBehindAMessageEndIsHonouredAfterTheCommit) {
  Outcome r = run_all_ways(config(true, false), peer(true),
                       "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\nDATA\r\nx\r\n.\r\nSTARTTLS\r\nNOOP\r\n",
                       "NOOP\r\n");
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.clear_replies, kGreeting + kEhloStarttls +
                                 "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 2.0.0 End data with <CR><LF>.<CR><LF>\r\n"
                                 "250 2.0.0 Ok: queued as Q1\r\n" +
                                 k220Tls);
  EXPECT_EQ(r.tls_replies, kOk);  // only the NOOP sent over TLS is answered
}

TEST(ServerStarttls, RefusalsAndSequenceErrors) {
  struct Case {
    const char* name;
    ServerConfig cfg;
    std::string input;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"not offered", config(false, false), "EHLO c.test\r\nSTARTTLS\r\n", kEhloPlain + "502 5.5.1 Error: command not implemented\r\n"},
      {"argument", config(true, false), "EHLO c.test\r\nSTARTTLS now\r\n", kEhloStarttls + "501 5.5.4 Syntax: STARTTLS\r\n"},
      {"in a transaction", config(true, false), "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nSTARTTLS\r\n",
       kEhloStarttls + "250 2.1.0 Ok\r\n503 5.5.1 Error: MAIL transaction in progress\r\n"},
      {"require-tls", config(true, false, true), "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\n",
       kEhloStarttls + "530 5.7.0 Must issue a STARTTLS command first\r\n503 5.5.1 Error: need MAIL command\r\n"},
      {"auth before tls", config(true, true), "EHLO c.test\r\nAUTH PLAIN " + plain("", "alice", kPassword) + "\r\n",
       kEhloStarttls + "538 5.7.11 Encryption required for requested authentication mechanism\r\n"},
      {"auth not enabled", config(true, false), "EHLO c.test\r\nAUTH LOGIN\r\n",
       kEhloStarttls + "503 5.5.1 Error: authentication not enabled\r\n"},
  };
  for (const auto& c : cases) {
    Outcome r = run_all_ways(c.cfg, peer(true), c.input);
    EXPECT_EQ(r.clear_replies, kGreeting + c.expected) << c.name;
    EXPECT_FALSE(r.handshake) << c.name;
  }
}

TEST(ServerStarttls, SecondStarttlsOverTlsIsRefused) {
  Outcome r = run_all_ways(config(true, false), peer(true), "STARTTLS\r\n", "EHLO c.test\r\nSTARTTLS\r\nNOOP\r\n");
  EXPECT_EQ(r.tls_replies, kEhloPlain + "554 5.5.1 Error: TLS already active\r\n" + kOk);
}

TEST(ServerStarttls, RequireTlsAcceptsMailOverTls) {
  Outcome r = run_all_ways(config(true, false, true), peer(true), "EHLO c.test\r\nSTARTTLS\r\n",
                       "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
  EXPECT_EQ(r.tls_replies, kEhloPlain + "250 2.1.0 Ok\r\n");
}

// AUTH transcripts over TLS: `tls` is what the client sends after the handshake (after its EHLO).
struct AuthCase {
  const char* name;
  std::string tls;       // client input after "EHLO c.test"
  std::string expected;  // replies after the EHLO reply
  bool relay = false;    // the client is outside --relay-networks unless set
};

TEST(ServerAuth, Transcripts) {
  const std::string mail = "MAIL FROM:<a@b.test>\r\n";
  const std::string rcpt = "RCPT TO:<r@d.test>\r\n";
  const std::string mail_ok = "250 2.1.0 Ok\r\n";
  const std::string rcpt_ok = "250 2.1.5 Ok\r\n";
  const std::string denied = "554 5.7.1 <r@d.test>: Relay access denied\r\n";
  const std::vector<AuthCase> cases = {
      {"no auth, no relay", mail + rcpt, mail_ok + denied},
      {"plain initial response grants relay", "AUTH PLAIN " + plain("", "alice", kPassword) + "\r\n" + mail + rcpt,
       k235 + mail_ok + rcpt_ok},
      {"plain with authzid = authcid", "AUTH PLAIN " + plain("alice", "alice", kPassword) + "\r\n", k235},
      {"plain after 334", "AUTH PLAIN\r\n" + plain("", "alice", kPassword) + "\r\n" + mail + rcpt,
       "334 \r\n" + k235 + mail_ok + rcpt_ok},
      {"login", "AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(kPassword) + "\r\n" + mail + rcpt,
       "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n" + k235 + mail_ok + rcpt_ok},
      {"login initial response", "auth login " + b64("alice") + "\r\n" + b64(kPassword) + "\r\n",
       "334 UGFzc3dvcmQ6\r\n" + k235},
      {"wrong password", "AUTH PLAIN " + plain("", "alice", "guess") + "\r\n" + mail + rcpt, k535 + mail_ok + denied},
      {"unknown user", "AUTH LOGIN\r\n" + b64("bob") + "\r\n" + b64(kPassword) + "\r\n",
       "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n" + k535},
      {"acting as someone else", "AUTH PLAIN " + plain("root", "alice", kPassword) + "\r\n", k535},
      {"cancel plain", "AUTH PLAIN\r\n*\r\nNOOP\r\n", "334 \r\n501 5.7.0 Authentication aborted\r\n" + kOk},
      {"cancel login at password", "AUTH LOGIN\r\n" + b64("alice") + "\r\n*\r\n" + mail + rcpt,
       "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n501 5.7.0 Authentication aborted\r\n" + mail_ok + denied},
      {"bad base64", "AUTH PLAIN !!!!\r\nAUTH LOGIN\r\nnot base64\r\n",
       "501 5.5.2 Cannot decode response\r\n334 VXNlcm5hbWU6\r\n501 5.5.2 Cannot decode response\r\n"},
      {"plain without a password", "AUTH PLAIN " + b64(std::string("\0alice\0", 7)) + "\r\n",
       "501 5.5.2 Cannot decode response\r\n"},
      {"twice", "AUTH PLAIN " + plain("", "alice", kPassword) + "\r\nAUTH LOGIN\r\n",
       k235 + "503 5.5.1 Error: already authenticated\r\n"},
      {"inside a transaction", mail + "AUTH PLAIN " + plain("", "alice", kPassword) + "\r\n",
       mail_ok + "503 5.5.1 Error: MAIL transaction in progress\r\n"},
      {"unknown mechanism", "AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication type\r\n"},
      {"syntax", "AUTH\r\nAUTH PLAIN a b\r\n",
       "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"},
      {"empty initial response", "AUTH PLAIN =\r\n", "501 5.5.2 Cannot decode response\r\n"},
      {"relay network needs no auth", mail + rcpt, mail_ok + rcpt_ok, true},
      {"AUTH= parameter on MAIL", "MAIL FROM:<a@b.test> AUTH=<>\r\n", mail_ok},
      {"after a transaction", mail + "RSET\r\nAUTH PLAIN " + plain("", "alice", kPassword) + "\r\n",
       mail_ok + kOk + k235},
  };
  for (const auto& c : cases) {
    Outcome r = run_all_ways(config(true, true), peer(c.relay), "STARTTLS\r\n", "EHLO c.test\r\n" + c.tls);
    EXPECT_EQ(r.tls_replies, kEhloAuth + c.expected) << c.name;
  }
}

TEST(ServerAuth, AuthenticatedSessionStateAndReceivedProtocol) {
  AuthHooks hooks;
  Outcome r = run(config(true, true), peer(false), "EHLO c.test\r\nSTARTTLS\r\n", {},
              "EHLO c.test\r\nAUTH PLAIN " + plain("", "alice", kPassword) +
                  "\r\nMAIL FROM:<a@b.test> SMTPUTF8\r\nRCPT TO:<r@d.test>\r\nRCPT TO:<s@d.test>\r\nDATA\r\nx\r\n.\r\n",
              hooks);
  EXPECT_EQ(hooks.checks, 1);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_NE(r.messages[0].find("\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"), std::string::npos);
  EXPECT_NE(r.messages[0].find(" with UTF8SMTPSA id Q1;"), std::string::npos) << r.messages[0];
  EXPECT_EQ(r.messages[0].find("alice"), std::string::npos);  // the user name is not published
  EXPECT_EQ(r.messages[0].find(kPassword), std::string::npos);
}

TEST(ServerAuth, FailedAttemptsCountTowardsTheErrorLimit) {
  ServerConfig cfg = config(true, true);
  cfg.limits.max_errors = 3;
  std::string tries;
  for (int i = 0; i < 5; ++i) tries += "AUTH PLAIN " + plain("", "alice", fmt::format("guess{}", i)) + "\r\n";
  AuthHooks hooks;
  Outcome r = run(cfg, peer(false), "STARTTLS\r\n", {}, "EHLO c.test\r\n" + tries, hooks);
  EXPECT_EQ(r.tls_replies, kEhloAuth + k535 + k535 + k535 + "421 4.7.0 mx.test Error: too many errors\r\n");
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(hooks.checks, 3);  // nothing is checked after the limit
}

TEST(ServerAuth, PasswordsNeverReachTheLog) {
  log::set_level(log::Level::kDebug);
  ::testing::internal::CaptureStderr();
  AuthHooks hooks;
  Outcome r = run(config(true, true), peer(false), "EHLO c.test\r\nSTARTTLS\r\nNOOP\r\n", {},
              "EHLO c.test\r\nAUTH PLAIN " + plain("", "alice", "wrong-Secret-1") + "\r\nAUTH LOGIN\r\n" +
                  b64("mallory\r\nfake log line") + "\r\n" + b64("wrong-Secret-2") + "\r\nAUTH PLAIN " +
                  plain("", "alice", kPassword) + "\r\n",
              hooks);
  std::string logged = ::testing::internal::GetCapturedStderr();
  log::set_level(log::Level::kError);
  EXPECT_EQ(r.tls_replies.substr(r.tls_replies.size() - k235.size()), k235);
  EXPECT_NE(logged.find("authentication failed for user alice"), std::string::npos) << logged;
  EXPECT_NE(logged.find("authenticated as alice"), std::string::npos) << logged;
  EXPECT_NE(logged.find("discarded"), std::string::npos) << logged;  // the NOOP after STARTTLS
  EXPECT_EQ(logged.find("wrong-Secret"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(kPassword), std::string::npos) << logged;
  EXPECT_EQ(logged.find("\nfake log line"), std::string::npos) << logged;  // user names cannot forge log lines
}

TEST(ServerAuth, LongLineDuringTheExchangeEndsIt) {
  AuthHooks hooks;
  Outcome r = run(config(true, true), peer(false), "STARTTLS\r\n", {},
              "EHLO c.test\r\nAUTH PLAIN\r\n" + std::string(600, 'A') + "\r\nNOOP\r\n", hooks);
  EXPECT_EQ(r.tls_replies, kEhloAuth + "334 \r\n500 5.5.2 Line too long\r\n" + kOk);
  EXPECT_EQ(hooks.checks, 0);
}

TEST(ServerAuth, BadBytesDuringTheExchangeEndIt) {
  AuthHooks hooks;
  Outcome r = run(config(true, true), peer(false), "STARTTLS\r\n", {},
                  "EHLO c.test\r\nAUTH LOGIN\r\nYW\rxp\r\nNOOP\r\nAUTH PLAIN\r\nA" + std::string(1, '\0') +
                      "A=\r\nNOOP\r\n",
                  hooks);
  EXPECT_EQ(r.tls_replies, kEhloAuth + "334 VXNlcm5hbWU6\r\n500 5.5.2 Error: bare <CR> in command\r\n" + kOk +
                               "334 \r\n500 5.5.2 Error: NUL character in command\r\n" + kOk);
  EXPECT_EQ(hooks.checks, 0);
}

TEST(ServerStarttls, TlsNamesAreSanitisedForTheHeader) {
  AuthHooks hooks;
  ServerConfig cfg = config(true, false);
  ServerSession s(cfg, peer(true), hooks);
  std::string out;
  s.start(out);
  EXPECT_EQ(s.on_input("STARTTLS\r\n", out), Action::kStartTls);
  EXPECT_EQ(s.on_input("EHLO plain-text-while-handshaking\r\n", out), Action::kNeedInput);  // ignored
  EXPECT_EQ(s.on_tls_established(TlsInfo{"TLSv1.2\r\nX-Evil: 1", ""}, out), Action::kNeedInput);
  out.clear();
  s.on_input("EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<r@d.test>\r\nDATA\r\n.\r\n", out);
  ASSERT_TRUE(s.commit_pending());
  EXPECT_NE(s.message().find("(using TLSv1.2X-Evil1 with cipher unknown)\r\n"), std::string::npos) << s.message();
}

// Random dialogues from a vocabulary of TLS and AUTH lines (and junk), cut at random points: the
// session never breaks its invariants: every reply is CRLF-terminated lines with a 3-digit code,
// the buffered input stays bounded, and the password check runs only after TLS.
TEST(ServerAuth, RandomDialoguesKeepInvariants) {
  const std::vector<std::string> vocabulary = {
      "EHLO c.test\r\n", "STARTTLS\r\n", "AUTH PLAIN\r\n", "AUTH LOGIN\r\n", "AUTH PLAIN " + plain("", "alice", kPassword) + "\r\n",
      "AUTH LOGIN " + b64("alice") + "\r\n", b64(kPassword) + "\r\n", "*\r\n", "=\r\n", "MAIL FROM:<a@b.test>\r\n",
      "RCPT TO:<r@d.test>\r\n", "DATA\r\n", "x\r\n.\r\n", "RSET\r\n", "NOOP\r\n", std::string("\0\r\x80", 3), "\r\n",
      std::string(300, 'Q')};
  std::mt19937 rng(7);
  int handshakes = 0, checks = 0;
  for (int round = 0; round < 300; ++round) {
    AuthHooks hooks;
    ServerConfig cfg = config(true, true, round % 2 == 0);
    cfg.limits.max_errors = 0;
    ServerSession s(cfg, peer(round % 3 == 0), hooks);
    std::string out;
    s.start(out);
    bool tls = false;
    for (int step = 0; step < 40; ++step) {
      std::string chunk;
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) chunk += vocabulary[rng() % vocabulary.size()];
      size_t cut = rng() % (chunk.size() + 1);
      Action a = s.on_input(std::string_view(chunk).substr(0, cut), out);
      if (a == Action::kNeedInput) a = s.on_input(std::string_view(chunk).substr(cut), out);
      while (a == Action::kCommit) a = s.on_commit(true, {}, out);
      if (a == Action::kStartTls) {
        if (!tls) {
          ASSERT_EQ(hooks.checks, 0);  // nothing was checked in clear text
        }
        a = s.on_tls_established(kTls, out);
        tls = true;
      }
      ASSERT_NE(a, Action::kClose);  // no QUIT in the vocabulary and no error limit
      ASSERT_LE(s.buffered_input(), 512u + 4 * 400u);
    }
    if (!tls) {
      EXPECT_EQ(hooks.checks, 0);
    }
    handshakes += tls;
    checks += hooks.checks;
    ASSERT_TRUE(out.empty() || out.ends_with("\r\n"));
    size_t pos = 0;
    while (pos < out.size()) {
      size_t end = out.find("\r\n", pos);
      ASSERT_NE(end, std::string::npos);
      std::string_view line(out.data() + pos, end - pos);
      ASSERT_GE(line.size(), 3u) << line;
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(line[i] >= '0' && line[i] <= '9') << line;
      pos = end + 2;
    }
  }
  EXPECT_GT(handshakes, 100);  // the vocabulary does reach the TLS and AUTH states
  EXPECT_GT(checks, 100);
}

TEST(Sasl, Base64RoundTripAndStrictness) {
  for (std::string_view v : {"", "a", "ab", "abc", "abcd", "\0\xff\x10 x"}) {
    std::string enc = b64(v), dec;
    ASSERT_TRUE(decode_base64(enc, dec)) << enc;
    EXPECT_EQ(dec, v);
  }
  EXPECT_EQ(b64("alice"), "YWxpY2U=");
  EXPECT_EQ(b64(std::string("\0u\0p", 4)), "AHUAcA==");
  std::string out;
  for (std::string_view bad : {"YWxpY2U", "YWxp Y2U=", "YW=pY2U=", "YWxpY2U==", "====", "YQ==YQ==", "YR==", "YWF=",
                               "YWxpY2U*", "Y\xc3xp"}) {
    EXPECT_FALSE(decode_base64(bad, out)) << bad;
  }
}

TEST(Sasl, PlainMessage) {
  SaslPlain p;
  ASSERT_TRUE(parse_sasl_plain(std::string_view("\0alice\0pw", 9), p));
  EXPECT_EQ(p.authzid, "");
  EXPECT_EQ(p.authcid, "alice");
  EXPECT_EQ(p.password, "pw");
  ASSERT_TRUE(parse_sasl_plain(std::string_view("z\0u\0p w", 7), p));
  EXPECT_EQ(p.authzid, "z");
  EXPECT_EQ(p.password, "p w");
  EXPECT_FALSE(parse_sasl_plain(std::string_view("alice\0pw", 8), p));
  EXPECT_FALSE(parse_sasl_plain(std::string_view("\0\0pw", 4), p));
  EXPECT_FALSE(parse_sasl_plain(std::string_view("\0alice\0", 7), p));
  EXPECT_FALSE(parse_sasl_plain(std::string_view("\0a\0b\0c", 6), p));
}

TEST(Sasl, WipeClearsTheBuffer) {
  std::string s = "a password long enough to live on the heap";
  const char* data = s.data();
  size_t n = s.size();
  wipe(s);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(std::string(data, n), std::string(n, '\0'));  // same buffer, still owned by s
}

}  // namespace
}  // namespace ringmail::smtp
