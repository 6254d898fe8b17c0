// Transcript tests of the outbound client's STARTTLS and AUTH states: each connector policy
// (none, opportunistic, required) against servers that offer, refuse or lack STARTTLS; clear text
// pipelined after the 220 being discarded; AUTH PLAIN and LOGIN, refused credentials, and AUTH
// withheld without TLS. Secrets must never appear in any outcome text.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/smtp/client_auth.h"
#include "engine/smtp/client_session.h"

namespace ringmail::smtp {
namespace {

class Hooks final : public ClientHooks {
 public:
  explicit Hooks(std::vector<OutboundTransaction> txns) : txns_(std::move(txns)) {}
  const OutboundTransaction* next_transaction() override {
    return next_ < txns_.size() ? &txns_[next_++] : nullptr;
  }
  void on_recipient_result(const OutboundTransaction&, size_t i, const DeliveryOutcome& o) override {
    results.push_back(fmt::format("rcpt{} {}", i, describe(o)));
    kinds.push_back(o.kind);
  }
  void on_transaction_done(const OutboundTransaction&) override { ++done; }
  void on_session_result(const DeliveryOutcome& o) override {
    session = describe(o);
    session_kind = o.kind;
  }
  void on_transcript(TranscriptKind kind, std::string_view line) override {
    const char* mark = kind == TranscriptKind::kSent ? "> " : kind == TranscriptKind::kReceived ? "< " : "* ";
    transcript.push_back(mark + std::string(line));
  }
  std::vector<std::string> results;  // "rcpt0 <describe>"
  std::vector<std::string> transcript;  // "> sent", "< received", "* note" (with ClientConfig::transcript)
  std::vector<OutcomeKind> kinds;    // per result
  std::string session;               // describe() of the session result
  OutcomeKind session_kind = OutcomeKind::kSuccess;
  int done = 0;

 private:
  std::vector<OutboundTransaction> txns_;
  size_t next_ = 0;
};

const std::string kBody = "Subject: t\r\n\r\nhello\r\n";

std::vector<OutboundTransaction> one_message() {
  OutboundTransaction t;
  t.mail_from = "a@src.test";
  t.recipients.push_back({"b@dst.test", ""});
  t.body = kBody;
  t.size = kBody.size();
  return {t};
}

ClientConfig config(StartTls policy) {
  ClientConfig c;
  c.helo_name = "client.test";
  c.starttls = policy;
  return c;
}

const std::string kEhloTls = "250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n";
const std::string kEhloPlain = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
const std::string kEhloAfterTls = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
const std::string kMailGroup = "MAIL FROM:<a@src.test>\r\nRCPT TO:<b@dst.test>\r\nDATA\r\n";

// Drives a session: feed() gives server bytes and returns what the client sent.
struct Drive {
  ClientConfig cfg;
  Hooks hooks{one_message()};
  ClientSession s{cfg, hooks};
  ClientAction last = ClientAction::kNeedInput;
  explicit Drive(ClientConfig c) : cfg(std::move(c)) {
    std::string out;
    s.on_connected(out);
  }
  std::string feed(std::string_view bytes) {
    std::string out;
    last = s.on_input(bytes, out);
    while (last == ClientAction::kSendMore) last = s.on_output_drained(out);
    return out;
  }
  std::string tls_ready() {
    std::string out;
    last = s.on_tls_ready(out);
    return out;
  }
  // Greeting and EHLO, returning what the client sent after the EHLO reply.
  std::string greet(const std::string& ehlo_reply) {
    EXPECT_EQ(feed("220 mx.test ESMTP\r\n"), "EHLO client.test\r\n");
    return feed(ehlo_reply);
  }
  // The rest of a pipelined delivery from the MAIL group on.
  void deliver() {
    EXPECT_EQ(feed("250 ok\r\n250 ok\r\n354 go\r\n"), kBody + ".\r\n");
    EXPECT_EQ(feed("250 queued\r\n"), "QUIT\r\n");
    feed("221 bye\r\n");
    EXPECT_TRUE(s.finished());
    ASSERT_EQ(hooks.kinds.size(), 1u);
    EXPECT_EQ(hooks.kinds[0], OutcomeKind::kSuccess);
  }
};

TEST(ClientStartTls, OpportunisticUpgradesAndDropsWhatWasPipelinedBeforeTheHandshake) {
  Drive d(config(StartTls::kIfOffered));
  EXPECT_EQ(d.greet(kEhloTls), "STARTTLS\r\n");
  // A hostile or broken server pipelines a reply after its 220: it must not be read as the answer
  // to the EHLO sent inside TLS.
  EXPECT_EQ(d.feed("220 2.0.0 go ahead\r\n250-injected\r\n250 STARTTLS\r\n"), "");
  EXPECT_EQ(d.last, ClientAction::kStartTls);
  EXPECT_FALSE(d.s.tls_active());
  EXPECT_EQ(d.tls_ready(), "EHLO client.test\r\n");
  EXPECT_TRUE(d.s.tls_active());
  EXPECT_FALSE(d.s.capabilities().pipelining);  // forgotten until the new EHLO reply
  EXPECT_EQ(d.feed(kEhloAfterTls), kMailGroup);
  d.deliver();
}

TEST(ClientStartTls, OpportunisticGoesOnInClearTextWhenNotOffered) {
  Drive d(config(StartTls::kIfOffered));
  EXPECT_EQ(d.greet(kEhloPlain), kMailGroup);
  d.deliver();
  EXPECT_FALSE(d.s.tls_active());
}

TEST(ClientStartTls, OpportunisticGoesOnInClearTextWhenRefused) {
  Drive d(config(StartTls::kIfOffered));
  EXPECT_EQ(d.greet(kEhloTls), "STARTTLS\r\n");
  EXPECT_EQ(d.feed("454 4.7.0 TLS not available\r\n"), kMailGroup);
  EXPECT_TRUE(d.s.starttls_refused());
  d.deliver();
}

TEST(ClientStartTls, NoneNeverSendsStartTls) {
  Drive d(config(StartTls::kNever));
  EXPECT_EQ(d.greet(kEhloTls), kMailGroup);
  d.deliver();
}

TEST(ClientStartTls, RequiredWithoutStartTlsGivesUpTheHostWithoutSendingMail) {
  Drive d(config(StartTls::kRequired));
  EXPECT_EQ(d.greet(kEhloPlain), "QUIT\r\n");
  EXPECT_TRUE(d.s.finished());
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(d.hooks.session.find("does not offer STARTTLS"), std::string::npos) << d.hooks.session;
  EXPECT_NE(d.hooks.session.find("454 4.7.0"), std::string::npos) << d.hooks.session;
  EXPECT_TRUE(d.hooks.results.empty());  // no transaction was taken
}

TEST(ClientStartTls, RequiredWithStartTlsRefusedGivesUpTheHost) {
  Drive d(config(StartTls::kRequired));
  EXPECT_EQ(d.greet(kEhloTls), "STARTTLS\r\n");
  EXPECT_EQ(d.feed("454 4.7.0 TLS not available due to temporary reason\r\n"), "QUIT\r\n");
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(d.hooks.session.find("STARTTLS refused: host said 454 4.7.0"), std::string::npos) << d.hooks.session;
}

TEST(ClientStartTls, RequiredAfterHeloFallbackGivesUpTheHost) {
  Drive d(config(StartTls::kRequired));
  EXPECT_EQ(d.greet("502 5.5.2 what\r\n"), "HELO client.test\r\n");
  EXPECT_EQ(d.feed("250 mx.test\r\n"), "QUIT\r\n");
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
}

TEST(ClientStartTls, HandshakeFailureEndsTheSessionSayingWhichCheckFailed) {
  Drive d(config(StartTls::kRequired));
  EXPECT_EQ(d.greet(kEhloTls), "STARTTLS\r\n");
  EXPECT_EQ(d.feed("220 go\r\n"), "");
  EXPECT_EQ(d.s.on_tls_failed("certificate name mismatch: not valid for mx.other.test"), ClientAction::kClose);
  EXPECT_TRUE(d.s.finished());
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(d.hooks.session.find("STARTTLS failed: certificate name mismatch"), std::string::npos) << d.hooks.session;
}

TEST(ClientStartTls, InputDuringTheHandshakeIsIgnored) {
  Drive d(config(StartTls::kIfOffered));
  d.greet(kEhloTls);
  d.feed("220 go\r\n");
  EXPECT_EQ(d.feed("250 ok\r\n"), "");
  EXPECT_EQ(d.last, ClientAction::kNeedInput);  // kStartTls was said once already
  std::string out;
  EXPECT_EQ(d.s.on_output_drained(out), ClientAction::kNeedInput);  // e.g. the ClientHello was sent
  EXPECT_EQ(out, "");
  EXPECT_EQ(d.tls_ready(), "EHLO client.test\r\n");
}

ClientConfig auth_config(std::string mechanism = "", bool plaintext = false) {
  ClientConfig c = config(StartTls::kRequired);
  c.auth.username = "relayuser";
  c.auth.password = "S3cret-pw";
  c.auth.mechanism = std::move(mechanism);
  c.auth.allow_plaintext = plaintext;
  return c;
}

std::string b64(std::string_view s) {
  std::string out;
  append_base64(s, out);
  return out;
}

void start_tls(Drive& d) {
  EXPECT_EQ(d.greet(kEhloTls), "STARTTLS\r\n");
  d.feed("220 go\r\n");
  EXPECT_EQ(d.tls_ready(), "EHLO client.test\r\n");
}

TEST(ClientAuth, PlainAfterTls) {
  Drive d(auth_config());
  start_tls(d);
  EXPECT_EQ(d.feed(kEhloAfterTls), "AUTH PLAIN " + b64(std::string("\0relayuser\0S3cret-pw", 20)) + "\r\n");
  EXPECT_EQ(d.feed("235 2.7.0 Authentication successful\r\n"), kMailGroup);
  EXPECT_TRUE(d.s.authenticated());
  d.deliver();
}

TEST(ClientAuth, LoginAnswersBothChallenges) {
  Drive d(auth_config("LOGIN"));
  start_tls(d);
  EXPECT_EQ(d.feed(kEhloAfterTls), "AUTH LOGIN\r\n");
  EXPECT_EQ(d.feed("334 VXNlcm5hbWU6\r\n"), b64("relayuser") + "\r\n");
  EXPECT_EQ(d.feed("334 UGFzc3dvcmQ6\r\n"), b64("S3cret-pw") + "\r\n");
  EXPECT_EQ(d.feed("235 2.7.0 ok\r\n"), kMailGroup);
  d.deliver();
}

TEST(ClientAuth, RefusedCredentialsGiveUpTheHostWithoutLeakingThePassword) {
  Drive d(auth_config());
  start_tls(d);
  d.feed(kEhloAfterTls);
  EXPECT_EQ(d.feed("535 5.7.8 Error: authentication failed\r\n"), "QUIT\r\n");
  EXPECT_TRUE(d.s.finished());
  EXPECT_FALSE(d.s.authenticated());
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(d.hooks.session.find("AUTH PLAIN refused: host said 535 5.7.8"), std::string::npos) << d.hooks.session;
  EXPECT_EQ(d.hooks.session.find("S3cret"), std::string::npos);
  EXPECT_EQ(d.hooks.session.find(b64(std::string("\0relayuser\0S3cret-pw", 20))), std::string::npos);
}

// A server that echoes the password (here in its 535, and in a later recipient refusal) does not
// get it into an outcome: outcomes reach logs and the DSNs sent to senders. Found by
// tests/fuzz/client_session_fuzz.
TEST(ClientAuth, PasswordEchoedByTheServerIsMaskedInOutcomes) {
  Drive d(auth_config());
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("535 5.7.8 bad password S3cret-pw for relayuser\r\n");
  EXPECT_EQ(d.hooks.session.find("S3cret-pw"), std::string::npos) << d.hooks.session;
  EXPECT_NE(d.hooks.session.find("bad password ******** for relayuser"), std::string::npos) << d.hooks.session;

  Drive e(auth_config());
  start_tls(e);
  e.feed(kEhloAfterTls);
  EXPECT_EQ(e.feed("235 2.7.0 ok\r\n"), kMailGroup);
  e.feed("250 ok\r\n550 5.1.1 S3cret-pwS3cret-pw unknown\r\n554 5.5.1 no valid recipients\r\n");
  ASSERT_EQ(e.hooks.results.size(), 1u);
  EXPECT_NE(e.hooks.results[0].find("550 5.1.1 **************** unknown"), std::string::npos) << e.hooks.results[0];
}

// Servers that do not understand a command often quote it: the PLAIN blob and LOGIN's base64
// answer are masked like the password itself. Found by tests/fuzz/client_session_fuzz.
TEST(ClientAuth, CredentialsEchoedInTheirBase64FormAreMasked) {
  const std::string blob = b64(std::string("\0relayuser\0S3cret-pw", 20));
  Drive d(auth_config());
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("500 5.5.2 unrecognized command: AUTH PLAIN " + blob + "\r\n");
  EXPECT_EQ(d.hooks.session.find(blob), std::string::npos) << d.hooks.session;
  EXPECT_NE(d.hooks.session.find("unrecognized command: AUTH PLAIN ********"), std::string::npos) << d.hooks.session;

  ClientConfig c = auth_config("LOGIN");
  c.transcript = true;
  Drive e(c);
  start_tls(e);
  e.feed(kEhloAfterTls);
  e.feed("334 VXNlcm5hbWU6\r\n");
  e.feed("334 UGFzc3dvcmQ6\r\n");
  e.feed("535 5.7.8 bad password " + b64("S3cret-pw") + "\r\n");
  EXPECT_EQ(e.hooks.session.find(b64("S3cret-pw")), std::string::npos) << e.hooks.session;
  ASSERT_GE(e.hooks.transcript.size(), 2u);
  EXPECT_EQ(e.hooks.transcript[e.hooks.transcript.size() - 2], "< 535 5.7.8 bad password ********");
  EXPECT_EQ(e.hooks.transcript.back(), "> QUIT");
}

// A password that is itself a piece of the PLAIN blob ("AHJl" is base64 of "\0re", the blob's first
// three octets): the blob is masked whole, not cut around the password with the rest left readable.
TEST(ClientAuth, LongerSecretFormsAreMaskedFirst) {
  ClientConfig c = auth_config();
  c.auth.password = "AHJl";
  const std::string blob = b64(std::string("\0relayuser\0AHJl", 15));
  ASSERT_EQ(blob.rfind("AHJl", 0), 0u);
  Drive d(c);
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("500 5.5.2 unrecognized command: AUTH PLAIN " + blob + "\r\n");
  EXPECT_NE(d.hooks.session.find("unrecognized command: AUTH PLAIN ********"), std::string::npos) << d.hooks.session;
  EXPECT_EQ(d.hooks.session.find(blob.substr(4)), std::string::npos) << d.hooks.session;
}

TEST(ClientAuth, UnexpectedThirdChallengeIsCancelled) {
  Drive d(auth_config("LOGIN"));
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("334 VXNlcm5hbWU6\r\n");
  d.feed("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.feed("334 more?\r\n"), "*\r\n");
  EXPECT_TRUE(d.s.finished());
}

TEST(ClientAuth, NeverSentInClearTextUnlessAllowed) {
  ClientConfig c = auth_config();
  c.starttls = StartTls::kIfOffered;
  Drive d(c);
  std::string sent = d.greet(kEhloPlain);  // no STARTTLS offered
  EXPECT_EQ(sent, "QUIT\r\n");
  EXPECT_EQ(d.hooks.session_kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(d.hooks.session.find("AUTH needs TLS"), std::string::npos) << d.hooks.session;
}

TEST(ClientAuth, ClearTextWhenTheConnectorAllowsIt) {
  ClientConfig c = auth_config("", true);
  c.starttls = StartTls::kNever;
  Drive d(c);
  EXPECT_EQ(d.greet(kEhloPlain), "AUTH PLAIN " + b64(std::string("\0relayuser\0S3cret-pw", 20)) + "\r\n");
  EXPECT_EQ(d.feed("235 ok\r\n"), kMailGroup);
  d.deliver();
}

TEST(ClientAuth, NoUsableMechanismIsReported) {
  Drive d(auth_config("LOGIN"));
  start_tls(d);
  EXPECT_EQ(d.feed("250-mx.test\r\n250 AUTH CRAM-MD5\r\n"), "QUIT\r\n");
  EXPECT_NE(d.hooks.session.find("no usable AUTH mechanism"), std::string::npos) << d.hooks.session;
}

TEST(ClientAuth, MissingPasswordIsReportedNotSent) {
  ClientConfig c = auth_config();
  c.auth.password.clear();
  Drive d(c);
  start_tls(d);
  EXPECT_EQ(d.feed(kEhloAfterTls), "QUIT\r\n");
  EXPECT_NE(d.hooks.session.find("credentials are not loaded"), std::string::npos) << d.hooks.session;
}

TEST(ClientStartTls, TlsBreakingAfterTheDotMayHaveDelivered) {
  Drive d(config(StartTls::kIfOffered));
  d.greet(kEhloTls);
  d.feed("220 go\r\n");
  d.tls_ready();
  EXPECT_EQ(d.feed(kEhloAfterTls), kMailGroup);
  EXPECT_EQ(d.feed("250 ok\r\n250 ok\r\n354 go\r\n"), kBody + ".\r\n");
  EXPECT_EQ(d.s.on_tls_failed("TLS protocol error: bad record mac"), ClientAction::kClose);
  ASSERT_EQ(d.hooks.kinds.size(), 1u);
  EXPECT_EQ(d.hooks.kinds[0], OutcomeKind::kTransient);
  EXPECT_NE(d.hooks.results[0].find("bad record mac"), std::string::npos) << d.hooks.results[0];
}

TEST(ClientAuth, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(b64(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(ClientAuth, MechanismChoice) {
  ClientAuth a;
  a.username = "u";
  EXPECT_EQ(choose_auth_mechanism(a, "LOGIN PLAIN"), "PLAIN");
  EXPECT_EQ(choose_auth_mechanism(a, "login"), "LOGIN");
  EXPECT_EQ(choose_auth_mechanism(a, "CRAM-MD5"), "");
  a.mechanism = "LOGIN";
  EXPECT_EQ(choose_auth_mechanism(a, "PLAIN LOGIN"), "LOGIN");
  EXPECT_EQ(choose_auth_mechanism(a, "PLAIN"), "");
}

// ---- protocol log (ClientConfig::transcript) ----

// The whole dialogue in wire order: each command line, each reply line with its codes, the
// message data only as its size, and the credentials never (PLAIN's blob, LOGIN's answers, and
// the password where the server echoes it).
TEST(ClientTranscript, DialogueWithoutMessageDataOrCredentials) {
  ClientConfig c = auth_config();
  c.transcript = true;
  Drive d(c);
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("235 2.7.0 ok S3cret-pw\r\n");
  d.deliver();
  const std::vector<std::string> want{
      "< 220 mx.test ESMTP",
      "> EHLO client.test",
      "< 250-mx.test",
      "< 250-PIPELINING",
      "< 250-AUTH PLAIN LOGIN",
      "< 250 STARTTLS",
      "> STARTTLS",
      "< 220 go",
      "> EHLO client.test",
      "< 250-mx.test",
      "< 250-PIPELINING",
      "< 250 AUTH PLAIN LOGIN",
      "> AUTH PLAIN ****",
      "< 235 2.7.0 ok ********",
      "> MAIL FROM:<a@src.test>",
      "> RCPT TO:<b@dst.test>",
      "> DATA",
      "< 250 ok",
      "< 250 ok",
      "< 354 go",
      fmt::format("* message data: {} octets, then \".\"", kBody.size()),
      "< 250 queued",
      "> QUIT",
      "< 221 bye",
  };
  EXPECT_EQ(d.hooks.transcript, want);
}

// LOGIN's answers are masked where they are produced: a server sending both challenges and its
// 235 in one piece gets the same log as one answering in turn.
TEST(ClientTranscript, LoginAnswersAreMaskedEvenWhenRepliesArriveTogether) {
  ClientConfig c = auth_config("LOGIN");
  c.transcript = true;
  Drive d(c);
  start_tls(d);
  d.feed(kEhloAfterTls);
  EXPECT_EQ(d.feed("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 ok\r\n"),
            b64("relayuser") + "\r\n" + b64("S3cret-pw") + "\r\n" + kMailGroup);
  std::string all;
  for (const auto& l : d.hooks.transcript) all += l + "\n";
  EXPECT_EQ(all.find(b64("S3cret-pw")), std::string::npos) << all;
  EXPECT_EQ(all.find(b64("relayuser")), std::string::npos) << all;
  EXPECT_NE(all.find("> AUTH LOGIN\n< 334 VXNlcm5hbWU6\n> ****\n< 334 UGFzc3dvcmQ6\n> ****\n< 235 2.7.0 ok\n"
                     "> MAIL FROM:<a@src.test>\n"),
            std::string::npos)
      << all;
}

// Lock-step (no PIPELINING), a refused recipient, RSET and a multi-line refusal: each line is
// logged as the server sent it, enhanced code included.
TEST(ClientTranscript, LockStepRefusalsAndMultiLineReplies) {
  ClientConfig c = config(StartTls::kNever);
  c.transcript = true;
  Drive d(c);
  d.greet("250 mx.test\r\n");
  d.feed("250 2.1.0 ok\r\n");
  d.feed("550-5.1.1 no such user\r\n550 5.1.1 here\r\n");
  d.feed("250 2.0.0 reset\r\n");
  const std::vector<std::string> want{
      "< 220 mx.test ESMTP", "> EHLO client.test",          "< 250 mx.test",
      "> MAIL FROM:<a@src.test>", "< 250 2.1.0 ok",          "> RCPT TO:<b@dst.test>",
      "< 550-5.1.1 no such user", "< 550 5.1.1 here",        "> RSET",
      "< 250 2.0.0 reset",        "> QUIT",
  };
  EXPECT_EQ(d.hooks.transcript, want);
}

TEST(ClientTranscript, NothingWhenNotAsked) {
  Drive d(auth_config());
  start_tls(d);
  d.feed(kEhloAfterTls);
  d.feed("235 2.7.0 ok\r\n");
  d.deliver();
  EXPECT_TRUE(d.hooks.transcript.empty());
}

}  // namespace
}  // namespace ringmail::smtp
