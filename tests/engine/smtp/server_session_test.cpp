// Transcript tests of the SMTP server session: each case is client input and the exact replies
// expected, run with the input in one chunk, one byte at a time and split in two at every offset,
// all of which must give identical replies and messages. Also the commit cycle, stored message
// bytes, timeouts, shutdown, bounded buffers and a randomized robustness run.
#include "engine/smtp/server_session.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "common/log.h"

namespace ringmail::smtp {
namespace {

using namespace std::chrono_literals;

// Smuggling rejections are logged as warnings; thousands of split runs would flood the test output.
class QuietLog : public ::testing::Environment {
 public:
  void SetUp() override { log::set_level(log::Level::kError); }
};
[[maybe_unused]] const auto* const kQuietLog = ::testing::AddGlobalTestEnvironment(new QuietLog);

const WallTime kNow{std::chrono::seconds(1'800'000'000)};  // Fri, 15 Jan 2027 08:00:00 UTC

class FakeHooks final : public ServerHooks {
 public:
  std::string new_queue_id() override { return fmt::format("Q{}", ++ids_); }
  WallTime now() override { return kNow; }

 private:
  int ids_ = 0;  // queue IDs handed out
};

ServerConfig test_config() {
  ServerConfig c;
  c.hostname = "mx.test";
  c.limits.max_message_size = 2000;
  c.limits.max_recipients = 3;
  return c;
}

PeerInfo test_peer(bool relay, const char* address = "192.0.2.1:40000") {
  PeerInfo p;
  auto a = SocketAddress::parse(address);
  EXPECT_TRUE(a.ok());
  p.remote = *a;
  p.relay_allowed = relay;
  return p;
}

// A string literal with embedded NULs, without its terminating NUL.
template <size_t N>
std::string bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// Joins lines with CRLF after each.
std::string L(std::initializer_list<std::string_view> lines) {
  std::string s;
  for (auto l : lines) {
    s += l;
    s += "\r\n";
  }
  return s;
}

const std::string kGreeting = "220 mx.test ESMTP ringmail\r\n";
const std::string kEhlo = L({"250-mx.test", "250-PIPELINING", "250-SIZE 2000", "250-8BITMIME",
                             "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8", "250 DSN"});
const std::string kMailOk = "250 2.1.0 Ok\r\n";
const std::string kRcptOk = "250 2.1.5 Ok\r\n";
const std::string k354 = "354 2.0.0 End data with <CR><LF>.<CR><LF>\r\n";
const std::string kBye = "221 2.0.0 Bye\r\n";
const std::string kUnknown = "500 5.5.2 Error: command not recognized\r\n";

struct RunResult {
  std::string output;                  // everything the session wrote, greeting included
  std::vector<std::string> messages;   // message() at each kCommit
  std::vector<Envelope> envelopes;     // envelope() at each kCommit
  bool closed = false;                 // the session returned kClose
  size_t max_buffered = 0;             // largest buffered_input() seen
};

// Feeds `input` to a fresh session in the given chunks (split offsets), answering each kCommit
// from `commits` (true = ok; missing entries = ok).
RunResult run(const ServerConfig& config, const PeerInfo& peer, std::string_view input,
              const std::vector<size_t>& cuts, const std::vector<bool>& commits = {}) {
  FakeHooks hooks;
  ServerSession s(config, peer, hooks);
  RunResult r;
  s.start(r.output);
  size_t commit_index = 0;
  size_t prev = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    if (r.closed) break;
    Action a = s.on_input(input.substr(prev, end - prev), r.output);
    prev = end;
    r.max_buffered = std::max(r.max_buffered, s.buffered_input());
    while (a == Action::kCommit) {
      r.messages.emplace_back(s.message());
      r.envelopes.push_back(s.envelope());
      bool ok = commit_index < commits.size() ? commits[commit_index] : true;
      ++commit_index;
      a = s.on_commit(ok, "disk full", r.output);
      r.max_buffered = std::max(r.max_buffered, s.buffered_input());
    }
    if (a == Action::kClose) r.closed = true;
  }
  return r;
}

void expect_same(const RunResult& a, const RunResult& b, const std::string& what) {
  EXPECT_EQ(a.output, b.output) << what;
  EXPECT_EQ(a.messages, b.messages) << what;
  EXPECT_EQ(a.closed, b.closed) << what;
}

// Runs the input whole, byte by byte and split in two at every offset; all must agree.
RunResult run_all_ways(const ServerConfig& config, const PeerInfo& peer, const std::string& input,
                       const std::vector<bool>& commits = {}) {
  RunResult whole = run(config, peer, input, {}, commits);
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < input.size(); ++i) every_byte.push_back(i);
  expect_same(whole, run(config, peer, input, every_byte, commits), "byte by byte");
  for (size_t i = 1; i < input.size(); ++i)
    expect_same(whole, run(config, peer, input, {i}, commits), fmt::format("split at {}", i));
  return whole;
}

struct TranscriptCase {
  std::string name;                                  // test name suffix
  std::string input;                                 // what the client sends
  std::string expected;                              // replies after the greeting
  bool relay = true;                                 // peer may relay
  std::vector<bool> commits = {};                    // commit outcomes in order (default ok)
  std::function<void(ServerLimits&)> limits = {};   // changes to test_config()
  bool closed = false;                               // the session must end with kClose
};

// gtest prints the case name instead of the bytes of the struct.
void PrintTo(const TranscriptCase& c, std::ostream* os) { *os << c.name; }

class Transcript : public ::testing::TestWithParam<TranscriptCase> {};

TEST_P(Transcript, RepliesMatch) {
  const auto& c = GetParam();
  ServerConfig config = test_config();
  if (c.limits) c.limits(config.limits);
  RunResult r = run_all_ways(config, test_peer(c.relay), c.input, c.commits);
  EXPECT_EQ(r.output, kGreeting + c.expected);
  EXPECT_EQ(r.closed, c.closed);
}

const std::string kLong511 = "NOOP " + std::string(505, 'x');  // + CRLF = 512: the longest legal line
const std::string kLong512 = "NOOP " + std::string(506, 'x');  // + CRLF = 513

std::vector<TranscriptCase> transcript_cases() {
  const std::string domain190 = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(62, 'd');
  const std::string domain256 = domain190 + "." + std::string(65, 'e').replace(30, 1, ".");
  const std::string body = L({"Subject: hi", "", "hello"});
  const std::string ehlo_mail_rcpt = L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>"});
  const std::string accepted_prefix = kEhlo + kMailOk + kRcptOk;
  return {
      {"BasicTransaction", L({"EHLO client.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA"}) + body +
                               L({".", "QUIT"}),
       accepted_prefix + k354 + "250 2.0.0 Ok: queued as Q1\r\n" + kBye, true, {}, {}, true},
      {"HeloTransaction", L({"HELO client.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "x", "."}),
       "250 mx.test\r\n" + kMailOk + kRcptOk + k354 + "250 2.0.0 Ok: queued as Q1\r\n"},
      {"TwoPipelinedTransactions",
       ehlo_mail_rcpt + L({"DATA", "one", ".", "MAIL FROM:<>", "RCPT TO:<r2@d.test>", "DATA", "two", ".", "QUIT"}),
       accepted_prefix + k354 + "250 2.0.0 Ok: queued as Q1\r\n" + kMailOk + kRcptOk + k354 +
           "250 2.0.0 Ok: queued as Q2\r\n" + kBye,
       true, {}, {}, true},
      {"CommitFailureThenNextTransaction",
       ehlo_mail_rcpt + L({"DATA", "one", ".", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "two", "."}),
       accepted_prefix + k354 + "451 4.3.0 disk full\r\n" + kMailOk + kRcptOk + k354 + "250 2.0.0 Ok: queued as Q2\r\n",
       true, {false, true}},
      {"LowerCaseVerbsAndSpaceAfterColon",
       L({"ehlo c.test", "mail from: <a@b.test>", "rcpt to: <r@d.test>", "data", "."}),
       accepted_prefix + k354 + "250 2.0.0 Ok: queued as Q1\r\n"},
      {"OtherCommands", L({"NOOP", "NOOP anything", "RSET", "VRFY bob", "VRFY", "HELP", "EXPN list", "BOGUS", ""}),
       "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
       "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
       "501 5.5.4 Syntax: VRFY address\r\n"
       "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
       "502 5.5.1 Error: EXPN not supported\r\n" +
           kUnknown + kUnknown},
      {"BareLfEndsCommandLines", "EHLO c.test\nNOOP\n", kEhlo + "250 2.0.0 Ok\r\n"},
      {"SequenceErrors",
       L({"MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "EHLO c.test", "RCPT TO:<r@d.test>", "DATA",
          "MAIL FROM:<a@b.test>", "MAIL FROM:<a@b.test>", "DATA"}),
       "503 5.5.1 Error: send HELO/EHLO first\r\n503 5.5.1 Error: need MAIL command\r\n"
       "503 5.5.1 Error: need MAIL command\r\n" +
           kEhlo +
           "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n" + kMailOk +
           "503 5.5.1 Error: nested MAIL command\r\n503 5.5.1 Error: need RCPT command\r\n"},
      {"RsetAndEhloEndTheTransaction",
       L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RSET", "RCPT TO:<r@d.test>", "MAIL FROM:<a@b.test>", "EHLO c.test",
          "RCPT TO:<r@d.test>", "RSET x"}),
       kEhlo + kMailOk + "250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n" + kMailOk + kEhlo +
           "503 5.5.1 Error: need MAIL command\r\n501 5.5.4 Syntax: RSET\r\n"},
      {"HeloSyntax", L({"EHLO", "HELO", "EHLO two words", "EHLO ok.test"}),
       "501 5.5.4 Syntax: EHLO hostname\r\n501 5.5.4 Syntax: HELO hostname\r\n501 5.5.4 Syntax: EHLO hostname\r\n" +
           kEhlo},
      {"MailSyntax",
       L({"EHLO c.test", "MAIL <a@b.test>", "MAIL FROM:a@b.test", "MAIL FROM:<a@@b.test>", "MAIL FROM:<a@b.test>x",
          "MAIL FROM:<postmaster>", "MAIL FROM:<a@b.test> =x"}),
       kEhlo + "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
               "501 5.1.7 Bad sender address syntax: the address must be enclosed in <>\r\n"
               "501 5.1.7 Bad sender address syntax\r\n"
               "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n"
               "501 5.1.7 Bad sender address syntax\r\n"
               "501 5.5.4 Bad MAIL parameter syntax\r\n"},
      {"RcptSyntax",
       ehlo_mail_rcpt + L({"RCPT <r@d.test>", "RCPT TO:r@d.test", "RCPT TO:<r@>", "RCPT TO:<>", "RCPT TO:<r@d.test> X=1",
                           "RCPT TO:<r@d.test>junk", "RCPT TO:<r@d.test> =", "RCPT TO:<postmaster>"}),
       accepted_prefix + "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
                         "501 5.1.3 Bad recipient address syntax: the address must be enclosed in <>\r\n"
                         "501 5.1.3 Bad recipient address syntax\r\n"
                         "501 5.1.3 Bad recipient address syntax: <> is not a recipient\r\n"
                         "555 5.5.4 Unsupported option: X\r\n"
                         "501 5.5.4 Syntax: RCPT TO:<address> [parameters]\r\n"
                         "501 5.5.4 Bad RCPT parameter syntax\r\n" +
           kRcptOk},
      {"LengthLimits",
       L({"EHLO c.test", "MAIL FROM:<" + std::string(65, 'l') + "@b.test>", "MAIL FROM:<a@b.test>",
          "RCPT TO:<" + std::string(65, 'l') + "@d.test>",
          "RCPT TO:<a@" + domain256 + ">", "RCPT TO:<" + std::string(64, 'l') + "@" + domain190 + ">"}),
       kEhlo + "553 5.1.7 Sender address rejected: local part longer than 64 octets\r\n" + kMailOk +
           "553 5.1.3 Recipient address rejected: local part longer than 64 octets\r\n"
           "553 5.1.3 Recipient address rejected: domain longer than 255 octets\r\n"
           "553 5.1.3 Recipient address rejected: address longer than 256 octets\r\n"},
      {"MailParameters",
       L({"EHLO c.test", "MAIL FROM:<a@b.test> SIZE=2001", "MAIL FROM:<a@b.test> SIZE=99999999999999999999999",
          "MAIL FROM:<a@b.test> SIZE=12k", "MAIL FROM:<a@b.test> SIZE", "MAIL FROM:<a@b.test> BODY=BINARYMIME",
          "MAIL FROM:<a@b.test> SMTPUTF8=yes", "MAIL FROM:<a@b.test> XFOO=1",
          "MAIL FROM:<a@b.test> size=2000 body=8bitmime smtputf8"}),
       kEhlo + "552 5.3.4 Message size exceeds fixed limit\r\n552 5.3.4 Message size exceeds fixed limit\r\n"
               "501 5.5.4 Bad SIZE parameter syntax\r\n501 5.5.4 Bad SIZE parameter syntax\r\n"
               "501 5.5.4 Bad BODY parameter value (7BIT or 8BITMIME)\r\n"
               "501 5.5.4 Bad SMTPUTF8 parameter syntax\r\n555 5.5.4 Unsupported option: XFOO\r\n" +
           kMailOk},
      {"ParametersNeedEhlo", L({"HELO c.test", "MAIL FROM:<a@b.test> SIZE=10", "MAIL FROM:<a@b.test>"}),
       "250 mx.test\r\n555 5.5.4 Unsupported option: SIZE (parameters need EHLO)\r\n" + kMailOk},
      {"NonAsciiNeedsSmtputf8",
       L({"EHLO c.test", "MAIL FROM:<\xc3\xa9@b.test>", "MAIL FROM:<a@b.test>", "RCPT TO:<\xc3\xa9@d.test>", "RSET",
          "MAIL FROM:<\xc3\xa9@b.test> SMTPUTF8", "RCPT TO:<\xc3\xa9@d.test>"}),
       kEhlo + "553 5.6.7 Sender address rejected: non-ASCII address needs SMTPUTF8\r\n" + kMailOk +
           "553 5.6.7 Recipient address rejected: non-ASCII address needs SMTPUTF8\r\n250 2.0.0 Ok\r\n" + kMailOk +
           kRcptOk},
      {"RelayDenied",
       L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "RCPT TO:<postmaster>", "DATA", "x", "."}),
       kEhlo + kMailOk + "554 5.7.1 <r@d.test>: Relay access denied\r\n554 5.7.1 <postmaster>: Relay access denied\r\n"
                         "554 5.5.1 Error: no valid recipients\r\n" +
           kUnknown + kUnknown,
       false},
      {"TooManyRecipients",
       ehlo_mail_rcpt + L({"RCPT TO:<r2@d.test>", "RCPT TO:<r3@d.test>", "RCPT TO:<r4@d.test>", "DATA", "."}),
       accepted_prefix + kRcptOk + kRcptOk + "452 4.5.3 Error: too many recipients\r\n" + k354 +
           "250 2.0.0 Ok: queued as Q1\r\n"},
      {"DataWithArgument", ehlo_mail_rcpt + L({"DATA now"}), accepted_prefix + "501 5.5.4 Syntax: DATA\r\n"},
      {"CommandLineLimit", L({kLong511, kLong512, "NOOP"}) + std::string(2000, 'y') + "\r\nNOOP\r\n",
       "250 2.0.0 Ok\r\n500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"},
      {"NulAndCrInCommands", bytes("NOOP a\0b\r\nNO\rOP\r\nNOOP\r\n"),
       "500 5.5.2 Error: NUL character in command\r\n500 5.5.2 Error: bare <CR> in command\r\n250 2.0.0 Ok\r\n"},
      {"TooManyErrors", L({"A", "B", "C", "NOOP"}),
       kUnknown + kUnknown + kUnknown + "421 4.7.0 mx.test Error: too many errors\r\n", true, {},
       [](ServerLimits& l) { l.max_errors = 3; }, true},
      {"ErrorCountRestartsAfterCommit", ehlo_mail_rcpt + L({"X", "DATA", ".", "X", "X", "NOOP"}),
       accepted_prefix + kUnknown + k354 + "250 2.0.0 Ok: queued as Q1\r\n" + kUnknown + kUnknown + "250 2.0.0 Ok\r\n",
       true, {}, [](ServerLimits& l) { l.max_errors = 3; }},
      {"QuitIgnoresTheRest", L({"QUIT", "NOOP", "NOOP"}), kBye, true, {}, {}, true},
      {"SmugglingLfDotLf",
       ehlo_mail_rcpt + "DATA\r\nhello\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@d.test>\r\n.\r\nNOOP\r\n",
       accepted_prefix + k354 + "550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)\r\n250 2.0.0 Ok\r\n"},
      {"SmugglingCrLfDotLf", ehlo_mail_rcpt + "DATA\r\nhello\r\n.\nRSET\r\n.\r\nNOOP\r\n",
       accepted_prefix + k354 + "550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)\r\n250 2.0.0 Ok\r\n"},
      {"SmugglingLfDotCrLf", ehlo_mail_rcpt + "DATA\r\nhello\n.\r\nRSET\r\n.\r\nNOOP\r\n",
       accepted_prefix + k354 + "550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)\r\n250 2.0.0 Ok\r\n"},
      {"SmugglingCrDotCr", ehlo_mail_rcpt + "DATA\r\nhello\r.\rRSET\r\n.\r\nNOOP\r\n",
       accepted_prefix + k354 + "550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)\r\n250 2.0.0 Ok\r\n"},
      {"NulInData", ehlo_mail_rcpt + bytes("DATA\r\na\0b\r\n.\r\n"),
       accepted_prefix + k354 + "554 5.6.0 Message contains NUL characters\r\n"},
      {"LongTextLine",
       ehlo_mail_rcpt + "DATA\r\n" + std::string(998, 't') + "\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\n"
           "DATA\r\n" + std::string(999, 't') + "\r\n.\r\n",
       accepted_prefix + k354 + "250 2.0.0 Ok: queued as Q1\r\n" + kMailOk + kRcptOk + k354 +
           "554 5.6.0 Message contains a line longer than 1000 octets\r\n"},
      {"OversizeMessage", ehlo_mail_rcpt + "DATA\r\n" + std::string(900, 'z') + "\r\n" + std::string(900, 'z') +
                              "\r\n" + std::string(900, 'z') + "\r\n.\r\nNOOP\r\n",
       accepted_prefix + k354 + "552 5.3.4 Message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n"},
  };
}

INSTANTIATE_TEST_SUITE_P(ServerSession, Transcript, ::testing::ValuesIn(transcript_cases()),
                         [](const auto& info) { return info.param.name; });

// RFC 3461: RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT are accepted, decoded into the envelope and
// checked (bad values and duplicates: 501; other keywords still 555).
// Refused transaction commands reach ServerHooks::on_reject (the tracking log's reject events):
// MAIL and RCPT with their argument, the message at its dot; accepted ones and other commands not.
TEST(ServerSession, RefusedTransactionCommandsAreReported) {
  struct Hooks final : ServerHooks {
    std::string new_queue_id() override { return "Q1"; }
    WallTime now() override { return kNow; }
    void on_reject(std::string_view command, std::string_view argument, std::string_view reply) override {
      rejects.push_back(fmt::format("{}|{}|{}", command, argument, reply));
    }
    std::vector<std::string> rejects;
  } hooks;
  ServerConfig config = test_config();
  ServerSession outside(config, test_peer(false), hooks);
  std::string out;
  outside.start(out);
  outside.on_input(L({"EHLO c.test", "MAIL FROM:<s@example.org> SIZE=99999", "MAIL FROM:<s@example.org>",
                      "RCPT TO:<r@example.com>", "NOOP", "BOGUS"}),
                   out);
  const std::vector<std::string> want{
      "MAIL|FROM:<s@example.org> SIZE=99999|552 5.3.4 Message size exceeds fixed limit",
      "RCPT|TO:<r@example.com>|554 5.7.1 <r@example.com>: Relay access denied",
  };
  EXPECT_EQ(hooks.rejects, want);

  hooks.rejects.clear();
  ServerSession inside(config, test_peer(true), hooks);
  out.clear();
  inside.start(out);
  inside.on_input(L({"EHLO c.test", "MAIL FROM:<s@example.org>", "RCPT TO:<r@example.com>", "DATA"}), out);
  inside.on_input("Subject: x\r\n\r\nbare\nLF\r\n.\r\n", out);
  ASSERT_EQ(hooks.rejects.size(), 1u) << out;
  EXPECT_EQ(hooks.rejects[0], "DATA||550 5.6.11 Message contains bare CR or LF (SMTP smuggling defence)");
}

TEST(ServerSession, DsnParametersAreKeptInTheEnvelope) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  auto say = [&](const std::string& line) {
    out.clear();
    s.on_input(line + "\r\n", out);
    return out;
  };
  say("EHLO c.test");
  EXPECT_EQ(say("MAIL FROM:<a@b.test> RET=BOGUS").substr(0, 9), "501 5.5.4");
  EXPECT_EQ(say("MAIL FROM:<a@b.test> RET=HDRS RET=FULL").substr(0, 9), "501 5.5.4");
  EXPECT_EQ(say("MAIL FROM:<a@b.test> RET=FULL ENVID=id+2B1"), kMailOk);
  EXPECT_EQ(say("RCPT TO:<x@d.test> NOTIFY=NEVER,FAILURE").substr(0, 9), "501 5.5.4");
  EXPECT_EQ(say("RCPT TO:<x@d.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+40d.test"), kRcptOk);
  EXPECT_EQ(say("RCPT TO:<y@d.test>"), kRcptOk);
  EXPECT_EQ(say("RCPT TO:<z@d.test> XNOTIFY=1"), "555 5.5.4 Unsupported option: XNOTIFY\r\n");
  const Envelope& e = s.envelope();
  EXPECT_EQ(e.dsn.ret, queue::dsn::Ret::kFull);
  EXPECT_EQ(e.dsn.envid, "id+1");
  ASSERT_EQ(e.rcpt_dsn.size(), 2u);
  EXPECT_EQ(e.rcpt_dsn[0].notify, queue::dsn::kNotifyFailure | queue::dsn::kNotifyDelay);
  EXPECT_EQ(e.rcpt_dsn[0].orcpt.type, "rfc822");
  EXPECT_EQ(e.rcpt_dsn[0].orcpt.address, "x@d.test");
  EXPECT_EQ(e.rcpt_dsn[1].notify, 0);
  say("RSET");
  EXPECT_EQ(s.envelope().dsn.ret, queue::dsn::Ret::kUnspecified);
  EXPECT_TRUE(s.envelope().rcpt_dsn.empty());
}

TEST(ServerSession, GreetingAndEhloAdvertiseTheConfiguredSize) {
  ServerConfig config = test_config();
  config.limits.max_message_size = 36700160;
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  EXPECT_EQ(out, kGreeting);
  out.clear();
  EXPECT_EQ(s.on_input("EHLO c.test\r\n", out), Action::kNeedInput);
  EXPECT_EQ(out, L({"250-mx.test", "250-PIPELINING", "250-SIZE 36700160", "250-8BITMIME", "250-ENHANCEDSTATUSCODES",
                    "250-SMTPUTF8", "250 DSN"}));
}

TEST(ServerSession, CommitCycleHoldsPipelinedInputUntilOnCommit) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  out.clear();
  const std::string input = L({"EHLO c.test", "MAIL FROM:<a@b.test> BODY=8BITMIME SIZE=30", "RCPT TO:<r1@d.test>",
                               "RCPT TO:<r2@d.test>", "DATA", "line 1", "..dotted", ".", "NOOP", "QUIT"});
  EXPECT_FALSE(s.commit_pending());
  EXPECT_EQ(s.on_input(input, out), Action::kCommit);
  EXPECT_TRUE(s.commit_pending());
  EXPECT_EQ(out, kEhlo + kMailOk + kRcptOk + kRcptOk + k354);
  EXPECT_EQ(s.queue_id(), "Q1");
  EXPECT_FALSE(s.in_data());
  EXPECT_EQ(s.envelope().helo, "c.test");
  EXPECT_TRUE(s.envelope().esmtp);
  EXPECT_EQ(s.envelope().mail_from, "a@b.test");
  EXPECT_EQ(s.envelope().rcpt_to, (std::vector<std::string>{"r1@d.test", "r2@d.test"}));
  EXPECT_TRUE(s.envelope().body_8bitmime);
  EXPECT_FALSE(s.envelope().smtputf8);
  EXPECT_EQ(s.envelope().declared_size, 30u);
  // Two recipients: no "for" clause; the date goes on its own line.
  EXPECT_EQ(s.message(),
            "Received: from c.test ([192.0.2.1])\r\n"
            "\tby mx.test (ringmail) with ESMTP id Q1;\r\n"
            "\tFri, 15 Jan 2027 08:00:00 +0000\r\n"
            "line 1\r\n.dotted\r\n");
  EXPECT_EQ(s.buffered_input(), L({"NOOP", "QUIT"}).size());
  // More input before on_commit is only buffered.
  out.clear();
  EXPECT_EQ(s.on_input("NOOP\r\n", out), Action::kCommit);
  EXPECT_EQ(out, "");
  EXPECT_EQ(s.on_commit(true, "", out), Action::kClose);
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n" + kBye);
  EXPECT_EQ(s.messages_committed(), 1u);
}

TEST(ServerSession, ReceivedHeaderVariants) {
  struct Case {
    std::string name;
    const char* peer;
    std::string input;
    std::string header;
  };
  const std::vector<Case> cases = {
      {"esmtp one recipient", "192.0.2.1:1", L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "."}),
       "Received: from c.test ([192.0.2.1])\r\n\tby mx.test (ringmail) with ESMTP id Q1\r\n"
       "\tfor <r@d.test>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"},
      {"smtp over ipv6", "[2001:db8::7]:1", L({"HELO h.test", "MAIL FROM:<>", "RCPT TO:<r@d.test>", "DATA", "."}),
       "Received: from h.test ([IPv6:2001:db8::7])\r\n\tby mx.test (ringmail) with SMTP id Q1\r\n"
       "\tfor <r@d.test>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"},
      {"utf8smtp, ipv4-mapped peer", "[::ffff:198.51.100.9]:1",
       L({"EHLO c.test", "MAIL FROM:<a@b.test> SMTPUTF8", "RCPT TO:<\xc3\xa9@d.test>", "DATA", "."}),
       "Received: from c.test ([198.51.100.9])\r\n\tby mx.test (ringmail) with UTF8SMTP id Q1\r\n"
       "\tfor <\xc3\xa9@d.test>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"},
  };
  for (const auto& c : cases) {
    RunResult r = run_all_ways(test_config(), test_peer(true, c.peer), c.input);
    ASSERT_EQ(r.messages.size(), 1u) << c.name;
    EXPECT_EQ(r.messages[0], c.header) << c.name;
  }
}

TEST(ServerSession, ReceivedHeaderLinesStayShort) {
  ServerConfig config = test_config();
  config.hostname = std::string(600, 'h') + ".test";  // absurd, to force folding
  const std::string helo(255, 'c');
  RunResult r = run_all_ways(config, test_peer(true),
                             L({"EHLO " + helo, "MAIL FROM:<a@b.test>",
                                "RCPT TO:<" + std::string(64, 'r') + "@" + std::string(60, 'd') + "." + std::string(60, 'd') + "." +
                                    std::string(60, 'd') + ">", "DATA", "."}));
  ASSERT_EQ(r.messages.size(), 1u);
  size_t start = 0;
  const std::string& m = r.messages[0];
  while (start < m.size()) {
    size_t end = m.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LT(end - start, 998u);
    start = end + 2;
  }
  EXPECT_NE(m.find(helo), std::string::npos);
}

TEST(ServerSession, StoredMessageIsUnstuffedWithCrlf) {
  const std::string input = L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "Subject: s", "",
                               ".leading", "..two", "...", "a.b", "", "."});
  RunResult r = run_all_ways(test_config(), test_peer(true), input);
  ASSERT_EQ(r.messages.size(), 1u);
  const std::string& m = r.messages[0];
  size_t body = m.find("+0000\r\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(m.substr(body + 7), L({"Subject: s", "", "leading", ".two", "..", "a.b", ""}));
}

TEST(ServerSession, TimeoutsAndStates) {
  ServerConfig config = test_config();
  config.limits.command_timeout = 300s;
  config.limits.data_block_timeout = 180s;
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  EXPECT_EQ(s.timeout(), 300s);
  EXPECT_FALSE(s.in_data());
  EXPECT_EQ(s.on_input(L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "partial"}), out),
            Action::kNeedInput);
  EXPECT_TRUE(s.in_data());
  EXPECT_EQ(s.timeout(), 180s);
  EXPECT_EQ(s.state_name(), "data");
  out.clear();
  EXPECT_EQ(s.on_timeout(out), Action::kClose);
  EXPECT_EQ(out, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  out.clear();
  EXPECT_EQ(s.on_input("NOOP\r\n", out), Action::kClose);
  EXPECT_EQ(out, "");
}

TEST(ServerSession, Shutdown) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  out.clear();
  EXPECT_EQ(s.on_shutdown(out), Action::kClose);
  EXPECT_EQ(out, "421 4.3.2 mx.test Service shutting down\r\n");
}

TEST(ServerSession, CommitFailureTextIsOneLine) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  ASSERT_EQ(s.on_input(L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "."}), out),
            Action::kCommit);
  out.clear();
  EXPECT_EQ(s.on_commit(false, "spool\r\nbroken", out), Action::kNeedInput);
  EXPECT_EQ(out, "451 4.3.0 spool  broken\r\n");
  EXPECT_EQ(s.messages_committed(), 0u);
}

TEST(ServerSession, InputWhileCommitPendingIsBounded) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  ASSERT_EQ(s.on_input(L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test>", "DATA", "."}), out),
            Action::kCommit);
  const std::string chunk(16 * 1024, 'n');
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.on_input(chunk, out), Action::kCommit);
  EXPECT_LE(s.buffered_input(), ServerSession::kMaxPendingInput);
  out.clear();
  EXPECT_EQ(s.on_commit(true, "", out), Action::kClose);
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as Q1\r\n421 4.7.0 mx.test Error: too much pipelined input\r\n");
  EXPECT_EQ(s.buffered_input(), 0u);
}

TEST(ServerSession, LongCommandLineIsNotBuffered) {
  ServerConfig config = test_config();
  FakeHooks hooks;
  ServerSession s(config, test_peer(true), hooks);
  std::string out;
  s.start(out);
  const std::string chunk(4096, 'x');
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(s.on_input(chunk, out), Action::kNeedInput);
    EXPECT_EQ(s.buffered_input(), 0u);
  }
  out.clear();
  EXPECT_EQ(s.on_input("\r\nNOOP\r\n", out), Action::kNeedInput);
  EXPECT_EQ(out, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

// A reply that echoes client text (here the bad NOTIFY value, nearly a whole command line of 8-bit
// octets) stays within 512 octets and printable ASCII. Found by tests/fuzz/server_session_fuzz.
TEST(ServerSession, EchoedParameterTextIsCutAndMadeAscii) {
  std::string value(480, '\xb9');
  std::string input = L({"EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<r@d.test> NOTIFY=" + value});
  RunResult r = run(test_config(), test_peer(true), input, {});
  size_t at = r.output.find("501 5.5.4 NOTIFY=");
  ASSERT_NE(at, std::string::npos) << r.output;
  std::string line = r.output.substr(at, r.output.find("\r\n", at) + 2 - at);
  EXPECT_EQ(line.size(), 512u);
  EXPECT_EQ(line.substr(line.size() - 5), "...\r\n");
  for (char c : line.substr(0, line.size() - 2)) EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << int(c);
}

// Random input built from SMTP-ish pieces and noise, fed in random chunks: the session must not
// crash, its buffers stay bounded, every reply is a well-formed reply line, and the replies equal
// those for the same input fed in one piece.
TEST(ServerSession, RandomInputRobustness) {
  const std::vector<std::string> pieces = {
      "EHLO c.test\r\n", "HELO c\r\n", "MAIL FROM:<a@b.test>\r\n", "MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n",
      "RCPT TO:<r@d.test>\r\n", "RCPT TO:<postmaster>\r\n", "DATA\r\n", ".\r\n", "\r\n.\r\n", "..\r\n", "\r\n",
      "\n", "\r", ".", std::string(1, '\0'), "RSET\r\n", "NOOP\r\n", "VRFY x\r\n", "hello world\r\n",
      std::string(700, 'A'), std::string(1200, 'B'), "\n.\n", "\r.\r", "\xff\xfe", ":<>@[]\"\\",
      "RSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n",
      "RSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@d.test>\r\nDATA\r\nbody\r\n.\r\n",
  };
  std::mt19937 rng(12345);
  ServerConfig config = test_config();
  config.limits.max_errors = 1000;
  size_t committed = 0, data_phases = 0, smuggling = 0;  // the soup must reach the interesting states
  for (int round = 0; round < 400; ++round) {
    std::string input;
    int count = std::uniform_int_distribution<int>(1, 120)(rng);
    for (int i = 0; i < count; ++i) {
      if (rng() % 8 == 0) {
        size_t n = rng() % 40;
        for (size_t k = 0; k < n; ++k) input += static_cast<char>(rng() & 0xff);
      } else {
        input += pieces[rng() % pieces.size()];
      }
    }
    std::vector<size_t> cuts;
    size_t max_chunk = 0;
    for (size_t pos = 0; pos < input.size();) {
      size_t step = 1 + rng() % 3000;
      max_chunk = std::max(max_chunk, std::min(step, input.size() - pos));
      pos += step;
      if (pos < input.size()) cuts.push_back(pos);
    }
    if (cuts.empty()) max_chunk = input.size();
    bool relay = rng() % 4 != 0;
    RunResult whole = run(config, test_peer(relay), input, {});
    RunResult chunked = run(config, test_peer(relay), input, cuts);
    expect_same(whole, chunked, fmt::format("round {}", round));
    committed += chunked.messages.size();
    for (size_t at = 0; (at = chunked.output.find("354 ", at)) != std::string::npos; ++at) ++data_phases;
    if (chunked.output.find("550 5.6.11") != std::string::npos) ++smuggling;
    EXPECT_LE(chunked.max_buffered, config.limits.max_command_line + max_chunk) << "round " << round;
    for (const auto& m : chunked.messages) EXPECT_LE(m.size(), 1000 + config.limits.max_message_size);
    // Every reply line: three digits, then ' ' or '-', then text, CRLF.
    size_t start = 0;
    const std::string& o = chunked.output;
    while (start < o.size()) {
      size_t end = o.find("\r\n", start);
      ASSERT_NE(end, std::string::npos) << "round " << round;
      ASSERT_GE(end - start, 4u);
      EXPECT_TRUE(isdigit(o[start]) && isdigit(o[start + 1]) && isdigit(o[start + 2])) << o.substr(start, end - start);
      EXPECT_TRUE(o[start + 3] == ' ' || o[start + 3] == '-');
      start = end + 2;
    }
  }
  EXPECT_GT(committed, 20u);
  EXPECT_GT(data_phases, committed);
  EXPECT_GT(smuggling, 5u);
}

}  // namespace
}  // namespace ringmail::smtp
