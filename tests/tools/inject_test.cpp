// Unit tests of ringmail-inject's library: reply reading, message generation and dot-stuffing,
// the SMTP session state machine (driven from transcripts), outcome counting and the --log file.
// The end-to-end test against Postfix's smtp-sink is tools/inject/inject_sink_test.sh.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tools/inject/inject_session.h"
#include "tools/inject/message_builder.h"
#include "tools/inject/outcome_log.h"
#include "tools/inject/run_stats.h"
#include "tools/inject/smtp_reply.h"

namespace ringmail::inject {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- replies --------------------------------------------------------------------------------

TEST(ReplyReader, AssemblesRepliesSplitAcrossReadsAndSeveralInOneRead) {
  ReplyReader r;
  Reply reply;
  r.feed("25");
  EXPECT_EQ(r.next(&reply), ReadStatus::kNeedMore);
  r.feed("0 2.1.0 Ok\r\n354 go ahead\r\n221");
  ASSERT_EQ(r.next(&reply), ReadStatus::kReply);
  EXPECT_EQ(reply.code, 250);
  EXPECT_EQ(reply.last_line, "2.1.0 Ok");
  ASSERT_EQ(r.next(&reply), ReadStatus::kReply);
  EXPECT_EQ(reply.code, 354);
  EXPECT_EQ(r.next(&reply), ReadStatus::kNeedMore);
  EXPECT_EQ(r.buffered(), 3u);
}

TEST(ReplyReader, MultiLineReplyKeepsEveryLine) {
  ReplyReader r;
  Reply reply;
  r.feed("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
  ASSERT_EQ(r.next(&reply), ReadStatus::kReply);
  EXPECT_EQ(reply.code, 250);
  EXPECT_EQ(reply.all_text, "mx.example\nPIPELINING\nSIZE 1000\n8BITMIME");
  EXPECT_EQ(reply.last_line, "8BITMIME");
  Capabilities caps = parse_ehlo_capabilities(reply);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.eightbitmime);
  EXPECT_TRUE(caps.size);
}

TEST(ReplyReader, GreetingNameIsNotACapability) {
  Reply reply;
  reply.code = 250;
  reply.all_text = "PIPELINING";  // only the server's name line
  EXPECT_FALSE(parse_ehlo_capabilities(reply).pipelining);
}

TEST(ReplyReader, RejectsWhatIsNotAReply) {
  const char* bad[] = {"hello\r\n", "25\r\n", "250x\r\n", "250-a\r\n251 b\r\n", "099 low\r\n"};
  for (const char* b : bad) {
    ReplyReader r;
    Reply reply;
    r.feed(b);
    EXPECT_EQ(r.next(&reply), ReadStatus::kMalformed) << b;
  }
  ReplyReader r;
  Reply reply;
  r.feed(std::string(ReplyReader::kMaxLine + 10, '2'));
  EXPECT_EQ(r.next(&reply), ReadStatus::kMalformed);
}

TEST(QueuedAsId, TakesTheLastTokenAfterThePhrase) {
  struct Case {
    const char* text;
    const char* id;
  } cases[] = {
      {"2.0.0 Ok: queued as 0001ABCD", "0001ABCD"},
      {"2.0.0 Ok: Queued As  X1 ", "X1"},
      {"OK queued as 12 34", "34"},
      {"Message accepted for delivery", ""},
      {"queued as", ""},
      {"", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(queued_as_id(c.text), c.id) << c.text;
}

// ---- messages -------------------------------------------------------------------------------

TEST(DotStuffing, DoublesLeadingDotsAndTerminates) {
  std::string out;
  append_dot_stuffed("a\r\n.b\r\n.\r\nc", &out);
  EXPECT_EQ(out, "a\r\n..b\r\n..\r\nc\r\n.\r\n");
  out.clear();
  append_dot_stuffed("x\n.y\n", &out);
  EXPECT_EQ(out, "x\r\n..y\r\n.\r\n");
  out.clear();
  append_dot_stuffed("", &out);
  EXPECT_EQ(out, ".\r\n");
}

std::vector<std::string> split_crlf(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    EXPECT_NE(eol, std::string::npos) << "line without CRLF at " << pos;
    if (eol == std::string::npos) break;
    lines.push_back(text.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return lines;
}

TEST(MessageBuilder, BuildsHeadersBodyAndPadsToSize) {
  for (size_t size : {size_t(100), size_t(5000), size_t(20011)}) {
    MessageSpec spec;
    spec.size = size;
    MessageBuilder b(spec, 42, 1234);
    std::string text, id;
    b.build(7, "Sat, 28 Nov 2026 02:49:20 +0000", &text, &id);
    EXPECT_THAT(id, ::testing::MatchesRegex("<ringmail-inject\\.1234\\.7\\.[0-9a-f]{16}@inject\\.local>"));
    if (size > 1000) {
      EXPECT_GE(text.size(), size - 2);
      EXPECT_LE(text.size(), size + 2);
    }
    std::vector<std::string> lines = split_crlf(text);
    bool dot_line = false;
    for (const std::string& l : lines) {
      EXPECT_LE(l.size(), 78u) << l;
      for (char c : l) EXPECT_TRUE(c >= 32 && c < 127) << l;
      if (!l.empty() && l[0] == '.') dot_line = true;
    }
    EXPECT_TRUE(dot_line);
    EXPECT_THAT(text, StartsWith("From: <inject@example.net>\r\nTo: <user7@example.com>\r\n"));
    EXPECT_THAT(text, HasSubstr("\r\nSubject: ringmail-inject test message 7\r\n"));
    EXPECT_THAT(text, HasSubstr("\r\nDate: Sat, 28 Nov 2026 02:49:20 +0000\r\n"));
    EXPECT_THAT(text, HasSubstr("\r\nMessage-ID: " + id + "\r\n"));
  }
}

TEST(MessageBuilder, MessageIdsAreUnique) {
  MessageBuilder b(MessageSpec{}, 1, 1);
  std::string text, id1, id2;
  b.build(1, "d", &text, &id1);
  b.build(1, "d", &text, &id2);
  EXPECT_NE(id1, id2);
}

TEST(MessageBuilder, EightBitAddsUtf8LineAndMimeHeaders) {
  MessageSpec spec;
  spec.eightbit = true;
  MessageBuilder b(spec, 1, 1);
  std::string text, id;
  b.build(1, "d", &text, &id);
  EXPECT_THAT(text, HasSubstr("Content-Transfer-Encoding: 8bit\r\n"));
  EXPECT_THAT(text, HasSubstr("K\xc3\xb6ln"));
}

TEST(MessageBuilder, RecipientFormatAndDomains) {
  MessageSpec spec;
  spec.rcpts = 3;
  spec.to_format = "u{n}.m{m}.r{r}{x}@example.org";
  MessageBuilder b(spec, 1, 1);
  std::string out;
  b.append_recipient(2, 1, &out);
  EXPECT_EQ(out, "u7.m2.r1{x}@example.org");
  spec.domains = 4;
  spec.to_format = "user{n}@example.com";
  MessageBuilder spread(spec, 1, 1);
  out.clear();
  spread.append_recipient(2, 1, &out);  // counter 7 -> d3
  EXPECT_EQ(out, "user7@d3.example.com");
}

// ---- session --------------------------------------------------------------------------------

class FakeHost : public SessionHost {
 public:
  explicit FakeHost(uint64_t messages) : left_(messages) {}
  std::optional<uint64_t> claim_message() override {
    if (left_ == 0) return std::nullopt;
    --left_;
    return next_++;
  }
  std::string_view date_header() override { return "Sat, 28 Nov 2026 02:49:20 +0000"; }
  void message_done(const MessageOutcome& o) override {
    codes.push_back(o.code);
    queue_ids.emplace_back(o.queue_id);
    latencies.push_back(o.latency_ns);
  }
  std::vector<int> codes;             // final code per finished message
  std::vector<std::string> queue_ids; // queue id per finished message
  std::vector<int64_t> latencies;     // latency per finished message

 private:
  uint64_t left_;      // messages still to hand out
  uint64_t next_ = 0;  // next message number
};

class SessionTest : public ::testing::Test {
 protected:
  void make(uint64_t messages, bool pipelining, int rcpts = 1, int per_connection = 100) {
    spec_.rcpts = rcpts;
    spec_.size = 300;
    config_.want_pipelining = pipelining;
    config_.per_connection = per_connection;
    builder_ = std::make_unique<MessageBuilder>(spec_, 5, 99);
    host_ = std::make_unique<FakeHost>(messages);
    session_ = std::make_unique<InjectSession>(config_, *builder_, *host_);
    session_->on_connected();
  }
  // Feeds a server reply and returns what the client sent in response.
  std::string reply(std::string_view bytes, SessionStatus want = SessionStatus::kRunning, int64_t now = 0) {
    EXPECT_EQ(session_->on_bytes(bytes, now), want) << bytes;
    std::string sent(session_->output());
    session_->consume_output(sent.size());
    return sent;
  }

  MessageSpec spec_;                         // message shape
  SessionConfig config_;                     // session settings
  std::unique_ptr<MessageBuilder> builder_;  // outlives the session
  std::unique_ptr<FakeHost> host_;           // records outcomes
  std::unique_ptr<InjectSession> session_;   // under test
};

TEST_F(SessionTest, LockStepTransactionThenQuit) {
  make(1, false);
  EXPECT_EQ(reply("220 sink ESMTP\r\n"), "EHLO inject.local\r\n");
  EXPECT_EQ(reply("250-sink\r\n250-PIPELINING\r\n250 SIZE 10000\r\n"), "MAIL FROM:<inject@example.net> SIZE=300\r\n");
  EXPECT_EQ(reply("250 ok\r\n"), "RCPT TO:<user0@example.com>\r\n");
  EXPECT_EQ(reply("250 ok\r\n"), "DATA\r\n");
  std::string body = reply("354 go\r\n", SessionStatus::kRunning, 1000);
  EXPECT_THAT(body, HasSubstr("\r\n..This line starts with a dot"));
  EXPECT_THAT(body, HasSubstr("\r\n..\r\n"));
  EXPECT_THAT(body, ::testing::EndsWith("\r\n.\r\n"));
  EXPECT_EQ(reply("250 2.0.0 Ok: queued as ABC123\r\n", SessionStatus::kRunning, 5000), "QUIT\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(250));
  EXPECT_THAT(host_->queue_ids, ElementsAre("ABC123"));
  EXPECT_THAT(host_->latencies, ElementsAre(4000));
  EXPECT_EQ(reply("221 bye\r\n", SessionStatus::kFinished), "");
  EXPECT_EQ(session_->accepted_on_connection(), 1);
}

TEST_F(SessionTest, PipelinedEnvelopeGoesOutInOneBatch) {
  make(2, true, 2);
  reply("220 sink\r\n");
  EXPECT_EQ(reply("250-sink\r\n250 PIPELINING\r\n"),
            "MAIL FROM:<inject@example.net>\r\nRCPT TO:<user0@example.com>\r\nRCPT TO:<user1@example.com>\r\nDATA\r\n");
  // All four replies in one read: the body goes out after 354.
  std::string body = reply("250 a\r\n250 b\r\n250 c\r\n354 go\r\n");
  EXPECT_THAT(body, ::testing::EndsWith("\r\n.\r\n"));
  EXPECT_EQ(reply("250 done\r\n"),
            "MAIL FROM:<inject@example.net>\r\nRCPT TO:<user2@example.com>\r\nRCPT TO:<user3@example.com>\r\nDATA\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(250));
  EXPECT_THAT(host_->queue_ids, ElementsAre(""));
}

TEST_F(SessionTest, NoPipeliningUnlessAdvertised) {
  make(1, true);
  reply("220 sink\r\n");
  EXPECT_EQ(reply("250 sink\r\n"), "MAIL FROM:<inject@example.net>\r\n");
}

TEST_F(SessionTest, RejectedSenderFailsTheMessageAndResets) {
  make(2, false);
  reply("220 x\r\n");
  reply("250 x\r\n");
  EXPECT_EQ(reply("550 5.7.1 no\r\n"), "RSET\r\n");
  EXPECT_EQ(reply("250 ok\r\n"), "MAIL FROM:<inject@example.net>\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(550));
}

TEST_F(SessionTest, LockStepSkipsDataWhenEveryRecipientFails) {
  make(1, false, 2);
  reply("220 x\r\n");
  reply("250 x\r\n");
  EXPECT_EQ(reply("250 ok\r\n"), "RCPT TO:<user0@example.com>\r\n");
  EXPECT_EQ(reply("450 busy\r\n"), "RCPT TO:<user1@example.com>\r\n");
  EXPECT_EQ(reply("550 unknown\r\n"), "RSET\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(450));
}

TEST_F(SessionTest, PipelinedFailedEnvelopeUsesFirstFailureCode) {
  make(1, true);
  reply("220 x\r\n");
  reply("250-x\r\n250 PIPELINING\r\n");
  EXPECT_EQ(reply("250 ok\r\n550 5.1.1 unknown user\r\n554 no valid recipients\r\n"), "RSET\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(550));
}

TEST_F(SessionTest, PipelinedFailedEnvelopeAnswers354WithEmptyBody) {
  make(1, true);
  reply("220 x\r\n");
  reply("250-x\r\n250 PIPELINING\r\n");
  EXPECT_EQ(reply("451 later\r\n503 need MAIL\r\n354 go\r\n"), ".\r\n");
  EXPECT_EQ(reply("554 no\r\n"), "RSET\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(451));
}

TEST_F(SessionTest, Reply421FailsTheMessageInFlight) {
  make(3, false);
  reply("220 x\r\n");
  reply("250 x\r\n");
  reply("250 ok\r\n");
  EXPECT_EQ(session_->on_bytes("421 4.3.2 shutting down\r\n", 0), SessionStatus::kFailed);
  EXPECT_THAT(host_->codes, ElementsAre(421));
}

TEST_F(SessionTest, DisconnectDuringDataLogsNoReply) {
  make(3, false);
  reply("220 x\r\n");
  reply("250 x\r\n");
  reply("250 ok\r\n");
  reply("250 ok\r\n");
  reply("354 go\r\n");
  EXPECT_TRUE(session_->awaiting_reply());
  EXPECT_EQ(session_->on_disconnected(), SessionStatus::kFailed);
  EXPECT_THAT(host_->codes, ElementsAre(kNoReplyCode));
}

TEST_F(SessionTest, TimeoutFailsMessageInFlight) {
  make(1, false);
  reply("220 x\r\n");
  reply("250 x\r\n");
  EXPECT_EQ(session_->on_timeout(), SessionStatus::kFailed);
  EXPECT_THAT(host_->codes, ElementsAre(kNoReplyCode));
}

TEST_F(SessionTest, CloseAfterQuitIsClean) {
  make(0, false);
  reply("220 x\r\n");
  EXPECT_EQ(reply("250 x\r\n"), "QUIT\r\n");
  EXPECT_EQ(session_->on_disconnected(), SessionStatus::kFinished);
  EXPECT_TRUE(host_->codes.empty());
}

TEST_F(SessionTest, QuitsAfterPerConnectionLimit) {
  make(5, true, 1, 2);
  reply("220 x\r\n");
  reply("250-x\r\n250 PIPELINING\r\n");
  reply("250 a\r\n250 b\r\n354 c\r\n");
  EXPECT_THAT(reply("250 ok\r\n"), StartsWith("MAIL FROM:"));
  reply("250 a\r\n250 b\r\n354 c\r\n");
  EXPECT_EQ(reply("250 ok\r\n"), "QUIT\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(250, 250));
}

TEST_F(SessionTest, FallsBackToHeloAndFailsOnBadGreeting) {
  make(1, false);
  reply("220 x\r\n");
  EXPECT_EQ(reply("502 no ehlo\r\n"), "HELO inject.local\r\n");
  EXPECT_EQ(reply("250 hi\r\n"), "MAIL FROM:<inject@example.net>\r\n");

  make(1, false);
  EXPECT_EQ(session_->on_bytes("554 go away\r\n", 0), SessionStatus::kFailed);
  EXPECT_TRUE(host_->codes.empty());
}

TEST_F(SessionTest, MalformedReplyFails) {
  make(1, false);
  reply("220 x\r\n");
  EXPECT_EQ(session_->on_bytes("250-x\r\n354 mixed codes\r\n", 0), SessionStatus::kFailed);
  make(1, false);
  EXPECT_EQ(session_->on_bytes("HTTP/1.1 400 Bad Request\r\n", 0), SessionStatus::kFailed);
}

// ---- counting and the log -------------------------------------------------------------------

TEST_F(SessionTest, StartTlsThenEhloAgainThenTransaction) {
  config_.starttls = true;
  make(1, true);
  EXPECT_EQ(reply("220 sink\r\n"), "EHLO inject.local\r\n");
  EXPECT_EQ(reply("250-sink\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
  // The 220 asks for the handshake; a reply pipelined behind it (injection) is thrown away.
  EXPECT_EQ(reply("220 2.0.0 Ready\r\n250 injected\r\n", SessionStatus::kStartTls), "");
  session_->on_tls_established();
  std::string again(session_->output());
  session_->consume_output(again.size());
  EXPECT_EQ(again, "EHLO inject.local\r\n");
  // No second STARTTLS although the (misbehaving) server still offers it; the transaction starts.
  EXPECT_EQ(reply("250-sink\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
            "MAIL FROM:<inject@example.net>\r\nRCPT TO:<user0@example.com>\r\nDATA\r\n");
  reply("250 a\r\n250 b\r\n354 go\r\n");
  EXPECT_EQ(reply("250 2.0.0 Ok: queued as T1\r\n"), "QUIT\r\n");
  EXPECT_THAT(host_->codes, ElementsAre(250));
}

TEST_F(SessionTest, StartTlsNotOfferedOrRefusedFailsWithoutMail) {
  config_.starttls = true;
  make(1, false);
  reply("220 sink\r\n");
  EXPECT_EQ(reply("250-sink\r\n250 PIPELINING\r\n", SessionStatus::kFailed), "");
  EXPECT_THAT(session_->failure_reason(), HasSubstr("STARTTLS not offered"));
  session_->on_connected();
  reply("220 sink\r\n");
  EXPECT_EQ(reply("250-sink\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
  EXPECT_EQ(reply("454 4.7.0 TLS not available\r\n", SessionStatus::kFailed), "");
  EXPECT_THAT(session_->failure_reason(), HasSubstr("STARTTLS refused: 454"));
  session_->on_connected();
  reply("220 sink\r\n");
  // EHLO refused: no HELO fallback under --starttls (HELO has no STARTTLS).
  EXPECT_EQ(reply("502 no EHLO\r\n", SessionStatus::kFailed), "");
  EXPECT_TRUE(host_->codes.empty());
}

TEST(RunStats, CountsByClassMergesAndComputesPercentiles) {
  RunStats a, b;
  MessageOutcome o;
  for (int i = 1; i <= 100; ++i) {
    o.code = 250;
    o.latency_ns = i * 1'000'000;
    a.record(o);
  }
  o.latency_ns = -1;
  o.code = 451;
  b.record(o);
  o.code = 550;
  b.record(o);
  o.code = 0;
  b.record(o);
  a.merge(b);
  EXPECT_EQ(a.attempted, 103u);
  EXPECT_EQ(a.accepted, 100u);
  EXPECT_EQ(a.temp_failed, 1u);
  EXPECT_EQ(a.rejected, 1u);
  EXPECT_EQ(a.no_reply, 1u);
  EXPECT_EQ(a.codes[250], 100u);
  EXPECT_EQ(a.latency.count(), 100u);
  EXPECT_NEAR(a.latency.percentile_ms(50), 50.0, 50.0 * 0.016);
  EXPECT_NEAR(a.latency.percentile_ms(99), 99.0, 99.0 * 0.016);
  EXPECT_NEAR(a.latency.percentile_ms(100), 100.0, 100.0 * 0.016);
  RunInfo info;
  info.requested = 103;
  info.elapsed_s = 2;
  EXPECT_FALSE(run_succeeded(info, a));
  std::string text = format_summary_text(info, a);
  EXPECT_THAT(text, HasSubstr("reply codes: 000: 1, 250: 100, 451: 1, 550: 1\n"));
  EXPECT_THAT(text, HasSubstr("accepted 50.0 msg/s"));
  std::string json = format_summary_json(info, a);
  EXPECT_THAT(json, HasSubstr("\"accepted\": 100,"));
  EXPECT_THAT(json, HasSubstr("\"codes\": {\"000\": 1, \"250\": 100, \"451\": 1, \"550\": 1}"));
}

TEST(LatencyHistogram, PercentilesStayWithinBucketError) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile_ms(50), 0.0);
  for (int64_t ns : {int64_t(0), int64_t(63), int64_t(1'000), int64_t(123'456'789), int64_t(1) << 40}) {
    LatencyHistogram one;
    one.add(ns);
    double want = double(ns) / 1e6;
    EXPECT_NEAR(one.percentile_ms(50), want, want * 0.016 + 1e-9) << ns;
  }
  // 90 fast samples and 10 slow ones: p50 is fast, p95 is slow.
  for (int i = 0; i < 90; ++i) h.add(200'000);
  for (int i = 0; i < 10; ++i) h.add(40'000'000);
  EXPECT_NEAR(h.percentile_ms(50), 0.2, 0.2 * 0.016);
  EXPECT_NEAR(h.percentile_ms(95), 40.0, 40.0 * 0.016);
  LatencyHistogram merged;
  merged.merge(h);
  merged.merge(h);
  EXPECT_EQ(merged.count(), 200u);
  EXPECT_NEAR(merged.percentile_ms(90), 0.2, 0.2 * 0.016);
}

TEST(RunStats, TlsCountsMergeAndShowInBothSummaries) {
  RunStats a, b;
  a.tls_handshakes = 3;
  a.tls_resumed = 2;
  b.tls_handshakes = 4;
  b.tls_resumed = 1;
  b.tls_failures = 1;
  a.merge(b);
  RunInfo info;
  info.target = "127.0.0.1:25";
  EXPECT_THAT(format_summary_text(info, a), HasSubstr("tls: handshakes 7, resumed 3, failed 1\n"));
  EXPECT_THAT(format_summary_json(info, a),
              HasSubstr("\"tls_handshakes\": 7, \"tls_resumed\": 3, \"tls_failures\": 1"));
  EXPECT_THAT(format_summary_text(info, RunStats{}), ::testing::Not(HasSubstr("tls:")));
}

TEST(RunStats, SuccessNeedsEveryRequestedMessageAccepted) {
  RunStats s;
  MessageOutcome o;
  o.code = 250;
  s.record(o);
  s.record(o);
  RunInfo info;
  info.requested = 2;
  EXPECT_TRUE(run_succeeded(info, s));
  info.requested = 3;
  EXPECT_FALSE(run_succeeded(info, s));
  info.time_capped = true;
  EXPECT_TRUE(run_succeeded(info, s));
}

TEST(OutcomeLog, AppendsOneLinePerMessage) {
  char dir_template[] = "/tmp/inject_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string path = std::string(dir_template) + "/log";
  {
    OutcomeLog log;
    ASSERT_TRUE(log.open(path).ok());
    MessageOutcome o;
    o.code = 250;
    o.message_id = "<a@inject.local>";
    o.queue_id = "Q1";
    EXPECT_TRUE(log.write(o));
    o.code = 0;
    o.message_id = "<b@inject.local>";
    o.queue_id = "";
    EXPECT_TRUE(log.write(o));
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "250 <a@inject.local> Q1\n000 <b@inject.local> -\n");
  OutcomeLog bad;
  EXPECT_FALSE(bad.open(std::string(dir_template) + "/missing/log").ok());
  unlink(path.c_str());
  rmdir(dir_template);
}

}  // namespace
}  // namespace ringmail::inject
