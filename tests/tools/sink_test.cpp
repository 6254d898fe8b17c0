// Unit tests of ringmail-sink's pure parts: DATA decoding, the responder state machine from
// transcripts (pipelined input split at every byte must give the same replies), fault injection,
// and the --record line format. No sockets here; tests/tools/sink_integration_test.py does those.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/sink/dot_decoder.h"
#include "tools/sink/fault_injector.h"
#include "tools/sink/message_recorder.h"
#include "tools/sink/responder.h"

namespace ringmail::sink {
namespace {

// Decodes `in` in pieces of `step` bytes; returns the body and how many input bytes were consumed.
std::pair<std::string, size_t> decode(std::string_view in, size_t step) {
  DotDecoder d;
  std::string body;
  size_t consumed = 0;
  while (consumed < in.size()) {
    bool done = false;
    size_t n = std::min(step, in.size() - consumed);
    size_t used = d.feed(in.substr(consumed, n), &body, &done);
    consumed += used;
    if (done) {
      EXPECT_EQ(d.size(), body.size());
      return {body, consumed};
    }
    EXPECT_EQ(used, n);
  }
  return {body + "<unterminated>", consumed};
}

TEST(DotDecoder, UnstuffsAndStopsOnlyAtCrLfDotCrLf) {
  struct Case {
    std::string in, body;
    size_t consumed;
  };
  const std::vector<Case> cases = {
      {".\r\n", "", 3},
      {"a\r\n.\r\nMAIL", "a\r\n", 6},
      {"..x\r\n.\r\n", ".x\r\n", 8},
      {"...\r\n.\r\n", "..\r\n", 8},
      {"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 10},          // bare LF "." LF is content (dot kept: not at a CRLF line start)
      {"a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 11},       // ".\r" + other: stuffing dot dropped, CR kept
      {"a\r\n.x\r\n.\r\n", "a\r\nx\r\n", 10},           // a lone leading dot is dropped (RFC 5321 §4.5.2)
      {"a\r\r\n.\r\n", "a\r\r\n", 7},
      {"x.\r\n.\r\n", "x.\r\n", 7},
  };
  for (const auto& c : cases) {
    for (size_t step = 1; step <= c.in.size(); ++step) {
      auto [body, consumed] = decode(c.in, step);
      EXPECT_EQ(body, c.body) << "input " << c.in << " step " << step;
      EXPECT_EQ(consumed, c.consumed) << "input " << c.in << " step " << step;
    }
  }
}

TEST(DotDecoder, UnterminatedInputIsAllContent) {
  auto [body, consumed] = decode("a\r\n.\n", 2);
  EXPECT_EQ(body, "a\r\n\n<unterminated>");
}

// Records what the responder reports.
class RecordingHooks : public ResponderHooks {
 public:
  uint64_t next_message_number() override { return ++numbers; }
  void message_accepted(const Transaction& t, uint64_t n) override { accepted.push_back({t, n}); }
  void fault_injected(FaultKind k) override { faults.push_back(k); }
  uint64_t numbers = 0;
  std::vector<std::pair<Transaction, uint64_t>> accepted;
  std::vector<FaultKind> faults;
};

struct Transcript {
  std::string out;
  Verdict last = Verdict::kContinue;
  RecordingHooks hooks;
};

// Feeds `input` in pieces of `step` bytes (0: all at once) to a fresh responder.
void run(const ResponderConfig& cfg, const FaultConfig& fc, std::string_view input, size_t step, Transcript* r) {
  FaultInjector faults(fc, 0);
  Responder resp(cfg, faults, r->hooks);
  r->last = resp.start(r->out);
  if (step == 0) step = input.size();
  for (size_t i = 0; i < input.size() && r->last == Verdict::kContinue; i += step)
    r->last = resp.feed(input.substr(i, step), r->out);
}

ResponderConfig body_config() {
  ResponderConfig c;
  c.hostname = "sink.test";
  c.keep_body = true;
  return c;
}

constexpr char kPipelined[] =
    "EHLO client\r\n"
    "MAIL FROM:<a@x.test> SIZE=20\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test> NOTIFY=NEVER\r\nDATA\r\n"
    "Message-ID: <m1@x>\r\n\r\n..dot\r\nline\r\n.\r\n"
    "MAIL FROM:<>\r\nRCPT TO:<d@z.test>\r\nDATA\r\nbody2\r\n.\r\n"
    "RSET\r\nNOOP\r\nQUIT\r\nEHLO ignored-after-quit\r\n";

constexpr char kPipelinedReplies[] =
    "220 sink.test ESMTP ringmail-sink\r\n"
    "250-sink.test\r\n250-PIPELINING\r\n250-SIZE\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued as SINK1\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued as SINK2\r\n"
    "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n";

TEST(Responder, StartTlsAdvertisedAnsweredAndPipelinedCommandsDiscarded) {
  ResponderConfig cfg = body_config();
  cfg.starttls = true;
  const FaultConfig no_faults;  // outlives the injector, which keeps a reference
  FaultInjector faults(no_faults, 0);
  RecordingHooks hooks;
  Responder resp(cfg, faults, hooks);
  std::string out;
  resp.start(out);
  out.clear();
  EXPECT_EQ(resp.feed("EHLO c\r\n", out), Verdict::kContinue);
  EXPECT_NE(out.find("250-STARTTLS\r\n"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(resp.feed("STARTTLS extra\r\n", out), Verdict::kContinue);
  EXPECT_EQ(out, "501 5.5.4 Syntax: STARTTLS\r\n");
  out.clear();
  // Commands pipelined behind STARTTLS (CVE-2011-0411 style) get no reply and never take effect.
  EXPECT_EQ(resp.feed("STARTTLS\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<a@b>\r\n", out), Verdict::kStartTls);
  EXPECT_EQ(out, "220 2.0.0 Ready to start TLS\r\n");
  resp.tls_started();
  EXPECT_TRUE(resp.tls_on());
  out.clear();
  EXPECT_EQ(resp.feed("RCPT TO:<a@b>\r\nEHLO c\r\nSTARTTLS\r\n", out), Verdict::kContinue);
  EXPECT_EQ(out.rfind("503 5.5.1 Need MAIL command\r\n", 0), 0u) << out;  // the pre-TLS MAIL is forgotten
  EXPECT_EQ(out.find("250-STARTTLS"), std::string::npos) << out;
  EXPECT_NE(out.find("503 5.5.1 TLS already active\r\n"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(resp.feed("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhi\r\n.\r\n", out), Verdict::kContinue);
  ASSERT_EQ(hooks.accepted.size(), 1u);
  EXPECT_EQ(hooks.accepted[0].first.mail_from, "a@x");
}

TEST(Responder, StartTlsUnknownWithoutCertificateAndRefusedMidTransaction) {
  Transcript r;
  run(body_config(), {}, "EHLO c\r\nSTARTTLS\r\n", 0, &r);
  EXPECT_EQ(r.out.find("STARTTLS"), std::string::npos);
  EXPECT_NE(r.out.find("500 5.5.2 Command not recognized\r\n"), std::string::npos);
  EXPECT_EQ(r.last, Verdict::kContinue);
  ResponderConfig cfg = body_config();
  cfg.starttls = true;
  Transcript m;
  run(cfg, {}, "EHLO c\r\nMAIL FROM:<a@x>\r\nSTARTTLS\r\n", 0, &m);
  EXPECT_NE(m.out.find("503 5.5.1 STARTTLS not allowed during a mail transaction\r\n"), std::string::npos);
  EXPECT_EQ(m.last, Verdict::kContinue);
}

TEST(Responder, PipelinedTranscriptSplitAtEveryByte) {
  const std::string input = kPipelined;
  for (size_t step = 0; step <= input.size(); ++step) {
    Transcript r;
    run(body_config(), {}, input, step, &r);
    ASSERT_EQ(r.out, kPipelinedReplies) << "step " << step;
    EXPECT_EQ(r.last, Verdict::kClose);
    ASSERT_EQ(r.hooks.accepted.size(), 2u) << "step " << step;
    const Transaction& t1 = r.hooks.accepted[0].first;
    EXPECT_EQ(t1.mail_from, "a@x.test");
    EXPECT_EQ(t1.rcpts, (std::vector<std::string>{"b@y.test", "c@y.test"}));
    EXPECT_EQ(t1.body, "Message-ID: <m1@x>\r\n\r\n.dot\r\nline\r\n");
    EXPECT_EQ(t1.size, t1.body.size());
    EXPECT_EQ(r.hooks.accepted[0].second, 1u);
    const Transaction& t2 = r.hooks.accepted[1].first;
    EXPECT_EQ(t2.mail_from, "");
    EXPECT_EQ(t2.rcpts, (std::vector<std::string>{"d@z.test"}));
    EXPECT_EQ(t2.body, "body2\r\n");
  }
}

TEST(Responder, EhloKeywordsFollowTheConfig) {
  ResponderConfig c = body_config();
  c.pipelining = false;
  c.eight_bit_mime = false;
  c.smtputf8 = false;
  c.max_message_size = 1000;
  Transcript r;
  run(c, {}, "EHLO x\r\n", 0, &r);
  EXPECT_EQ(r.out, "220 sink.test ESMTP ringmail-sink\r\n250-sink.test\r\n250-SIZE 1000\r\n250 ENHANCEDSTATUSCODES\r\n");
}

TEST(Responder, SequenceErrorsAndUnknownCommands) {
  Transcript r;
  run(body_config(), {},
      "RCPT TO:<a@b>\r\nDATA\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\nDATA\r\nMAIL x\r\nXYZZY\r\nHELO h\r\n"
      "VRFY a\r\n",
      0, &r);
  EXPECT_EQ(r.out,
            "220 sink.test ESMTP ringmail-sink\r\n"
            "503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n250 2.1.0 Ok\r\n"
            "503 5.5.1 Nested MAIL command\r\n554 5.5.1 No valid recipients\r\n"
            "503 5.5.1 Nested MAIL command\r\n500 5.5.2 Command not recognized\r\n250 sink.test\r\n"
            "252 2.0.0 Cannot verify, but will accept\r\n");
  EXPECT_TRUE(r.hooks.accepted.empty());
}

TEST(Responder, OverlongLineIsRefusedAndTheSessionContinues) {
  Transcript r;
  std::string input = "NOOP " + std::string(Responder::kMaxLine + 10, 'x') + "\r\nNOOP\r\n";
  run(body_config(), {}, input, 1000, &r);
  EXPECT_EQ(r.out, "220 sink.test ESMTP ringmail-sink\r\n500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(Responder, MessageOverTheSizeLimitGets552) {
  ResponderConfig c = body_config();
  c.max_message_size = 10;
  Transcript r;
  run(c, {}, "MAIL FROM:<a@b> SIZE=11\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n0123456789abc\r\n.\r\n", 0, &r);
  EXPECT_EQ(r.out,
            "220 sink.test ESMTP ringmail-sink\r\n552 5.3.4 Message size exceeds fixed limit\r\n250 2.1.0 Ok\r\n"
            "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_TRUE(r.hooks.accepted.empty());
  EXPECT_EQ(r.hooks.faults, (std::vector<FaultKind>{FaultKind::kOversize, FaultKind::kOversize}));
}

FaultConfig rcpt_fault(std::string match) {
  FaultConfig f;
  f.rcpt.line = "451 4.3.0 Try later\r\n";
  f.rcpt.rate = 1.0;
  f.rcpt.match = std::move(match);
  return f;
}

TEST(Responder, RcptFaultHitsOnlyTheMatchingRecipient) {
  Transcript r;
  run(body_config(), rcpt_fault("bad"),
      "MAIL FROM:<a@b>\r\nRCPT TO:<good@x>\r\nRCPT TO:<bad@x>\r\nDATA\r\nhi\r\n.\r\n", 0, &r);
  EXPECT_EQ(r.out,
            "220 sink.test ESMTP ringmail-sink\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n451 4.3.0 Try later\r\n"
            "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as SINK1\r\n");
  ASSERT_EQ(r.hooks.accepted.size(), 1u);
  EXPECT_EQ(r.hooks.accepted[0].first.rcpts, (std::vector<std::string>{"good@x"}));
  EXPECT_EQ(r.hooks.faults, (std::vector<FaultKind>{FaultKind::kRcpt}));
}

TEST(Responder, AllRecipientsRefusedMeansNoData) {
  Transcript r;
  run(body_config(), rcpt_fault(""), "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n", 0, &r);
  EXPECT_EQ(r.out,
            "220 sink.test ESMTP ringmail-sink\r\n250 2.1.0 Ok\r\n451 4.3.0 Try later\r\n"
            "554 5.5.1 No valid recipients\r\n");
}

TEST(Responder, DataFaultReplacesThe250) {
  FaultConfig f;
  f.data.line = "550 5.1.1 No such user\r\n";
  f.data.rate = 1.0;
  f.data.match = "victim";
  Transcript r;
  run(body_config(), f,
      "MAIL FROM:<a@b>\r\nRCPT TO:<ok@x>\r\nDATA\r\nm1\r\n.\r\n"
      "MAIL FROM:<a@b>\r\nRCPT TO:<victim@x>\r\nDATA\r\nm2\r\n.\r\n",
      0, &r);
  EXPECT_NE(r.out.find("250 2.0.0 Ok: queued as SINK1\r\n250 2.1.0 Ok"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n550 5.1.1 No such user\r\n")) << r.out;
  EXPECT_EQ(r.hooks.accepted.size(), 1u);
  EXPECT_EQ(r.hooks.faults, (std::vector<FaultKind>{FaultKind::kData}));
}

TEST(Responder, DropMidDataClosesWithoutAReplyOnceDataArrives) {
  FaultConfig f;
  f.drop_mid_data_rate = 1.0;
  FaultInjector faults(f, 0);
  RecordingHooks hooks;
  ResponderConfig cfg = body_config();
  Responder resp(cfg, faults, hooks);
  std::string out;
  ASSERT_EQ(resp.start(out), Verdict::kContinue);
  ASSERT_EQ(resp.feed("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", out), Verdict::kContinue);
  EXPECT_TRUE(out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"));
  size_t before = out.size();
  EXPECT_EQ(resp.feed("Subject: part", out), Verdict::kDrop);
  EXPECT_EQ(out.size(), before);  // no reply at all
  EXPECT_TRUE(hooks.accepted.empty());
  EXPECT_EQ(hooks.faults, (std::vector<FaultKind>{FaultKind::kDropMidData}));
}

TEST(Responder, GreetingRefusalAnswersOnlyQuit) {
  ResponderConfig c = body_config();
  c.greeting_reply = "554 5.3.2 No service\r\n";
  Transcript r;
  run(c, {}, "EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", 1, &r);
  EXPECT_EQ(r.out,
            "554 5.3.2 No service\r\n503 5.5.1 No service, only QUIT is allowed\r\n"
            "503 5.5.1 No service, only QUIT is allowed\r\n221 2.0.0 Bye\r\n");
  EXPECT_EQ(r.last, Verdict::kClose);

  c.greeting_reply = "421 4.3.2 Go away\r\n";
  Transcript r421;
  run(c, {}, "EHLO x\r\n", 0, &r421);
  EXPECT_EQ(r421.out, "421 4.3.2 Go away\r\n");
  EXPECT_EQ(r421.last, Verdict::kClose);
}

TEST(Responder, BodyIsNotKeptUnlessAsked) {
  ResponderConfig c = body_config();
  c.keep_body = false;
  Transcript r;
  run(c, {}, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhello\r\n.\r\n", 0, &r);
  ASSERT_EQ(r.hooks.accepted.size(), 1u);
  EXPECT_EQ(r.hooks.accepted[0].first.body, "");
  EXPECT_EQ(r.hooks.accepted[0].first.size, 7u);
}

TEST(FaultInjector, SameSeedSameDecisionsAndRateIsRoughlyHonoured) {
  FaultConfig f = rcpt_fault("");
  f.rcpt.rate = 0.1;
  f.seed = 42;
  FaultInjector a(f, 0), b(f, 0), other_stream(f, 1);
  int hits = 0, differ = 0;
  for (int i = 0; i < 10000; ++i) {
    bool x = a.rcpt_fault("r") != nullptr;
    bool y = b.rcpt_fault("r") != nullptr;
    bool z = other_stream.rcpt_fault("r") != nullptr;
    EXPECT_EQ(x, y);
    hits += x;
    differ += x != z;
  }
  EXPECT_GT(hits, 850);
  EXPECT_LT(hits, 1150);
  EXPECT_GT(differ, 100);  // another worker's stream is not a copy
}

TEST(FaultInjector, ReplyLinesAreValidated) {
  EXPECT_EQ(*make_reply_line("451 4.3.0 Try later"), "451 4.3.0 Try later\r\n");
  EXPECT_EQ(*make_reply_line("550\r\n"), "550\r\n");
  EXPECT_FALSE(make_reply_line("45 short").ok());
  EXPECT_FALSE(make_reply_line("651 bad class").ok());
  EXPECT_FALSE(make_reply_line("451-continued").ok());
  EXPECT_FALSE(make_reply_line("451 a\r\n452 b").ok());
}

TEST(MessageRecorder, JsonAndLineFormat) {
  EXPECT_EQ(json_quote("a\"b\\c\r\n\x01"), "\"a\\\"b\\\\c\\r\\n\\u0001\"");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  auto rec = MessageRecorder::open("", "");
  ASSERT_TRUE(rec.ok());
  Transaction t;
  t.mail_from = "a@b";
  t.rcpts = {"c@d", "e@f"};
  t.body = "Message-ID: <id@x>\r\n\r\nhi\r\n";
  t.size = t.body.size();
  RecordedMessage m{7, "127.0.0.1:25", "127.0.0.1:4000", &t};
  EXPECT_EQ((*rec)->format_line(m, "d/7.eml"),
            R"({"queue_id":"SINK7","listen":"127.0.0.1:25","client":"127.0.0.1:4000","mail_from":"a@b",)"
            R"("rcpts":["c@d","e@f"],"message_id":"<id@x>","size":26,"sha256":")" +
                sha256_hex(t.body) + R"(","body_file":"d/7.eml"})");
}

}  // namespace
}  // namespace ringmail::sink
