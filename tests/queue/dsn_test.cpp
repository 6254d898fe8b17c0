// Unit tests of queue/dsn: RFC 3461 parameter parsing and xtext, the report-or-not rules, and the
// shape of composed RFC 3464 reports (CRLF, line length, boundary, fields). The independent parse
// of the same reports is tests/integration/test_dsn_format.py, which runs DsnSamples below.
#include "queue/dsn.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ringmail::queue::dsn {
namespace {

using namespace std::chrono;

WallTime at(int64_t secs) { return WallTime(seconds(secs)); }

// ---- xtext and parameters -----------------------------------------------------------------

TEST(Xtext, EncodesPlusEqualsSpaceAndNonAscii) {
  EXPECT_EQ(xtext_encode("a+b=c d@x.org"), "a+2Bb+3Dc+20d@x.org");
  EXPECT_EQ(xtext_encode("\xc3\xa9"), "+C3+A9");
  EXPECT_EQ(xtext_encode(""), "");
}

TEST(Xtext, DecodesAndRoundTrips) {
  EXPECT_EQ(*xtext_decode("a+2Bb+3dc"), "a+b=c");  // lower-case hex accepted
  for (const std::string& raw : std::vector<std::string>{"plain", "with space", "+=+=", std::string("\x01\x7f\xff", 3)})
    EXPECT_EQ(*xtext_decode(xtext_encode(raw)), raw);
}

TEST(Xtext, RejectsMalformed) {
  for (std::string_view bad : {"a+", "a+2", "a+G0", "a=b", "a b", "caf\xc3\xa9"}) {
    Result<std::string> r = xtext_decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("malformed xtext"), std::string::npos) << r.error().message();
  }
}

TEST(Params, Ret) {
  EXPECT_EQ(*parse_ret("FULL"), Ret::kFull);
  EXPECT_EQ(*parse_ret("hdrs"), Ret::kHeaders);
  EXPECT_FALSE(parse_ret("HEADERS").ok());
  EXPECT_FALSE(parse_ret("").ok());
}

TEST(Params, Envid) {
  EXPECT_EQ(*parse_envid("QQ314159+2Bx"), "QQ314159+x");
  EXPECT_FALSE(parse_envid("").ok());
  EXPECT_TRUE(parse_envid(std::string(kMaxEnvidLength, 'a')).ok());
  EXPECT_FALSE(parse_envid(std::string(kMaxEnvidLength + 1, 'a')).ok());
  Result<std::string> ctl = parse_envid("a+0Ab");  // decodes to a line feed
  ASSERT_FALSE(ctl.ok());
  EXPECT_NE(ctl.error().message().find("printable"), std::string::npos);
}

TEST(Params, NotifyTable) {
  struct Case {
    std::string_view text;
    bool ok;
    uint8_t bits;
  };
  const Case cases[] = {
      {"NEVER", true, kNotifyNever},
      {"never", true, kNotifyNever},
      {"SUCCESS", true, kNotifySuccess},
      {"FAILURE,DELAY", true, kNotifyFailure | kNotifyDelay},
      {"delay,Success,FAILURE", true, kNotifyDelay | kNotifySuccess | kNotifyFailure},
      {"NEVER,FAILURE", false, 0},
      {"FAILURE,FAILURE", false, 0},
      {"FAILURE,", false, 0},
      {"", false, 0},
      {"SOMETIMES", false, 0},
  };
  for (const Case& c : cases) {
    Result<uint8_t> r = parse_notify(c.text);
    ASSERT_EQ(r.ok(), c.ok) << c.text;
    if (c.ok) {
      EXPECT_EQ(*r, c.bits) << c.text;
    }
  }
}

TEST(Params, Orcpt) {
  Result<OriginalRecipient> o = parse_orcpt("RFC822;a+2Bb@example.com");
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->type, "rfc822");
  EXPECT_EQ(o->address, "a+b@example.com");
  EXPECT_FALSE(parse_orcpt("a@example.com").ok());         // no type
  EXPECT_FALSE(parse_orcpt(";a@example.com").ok());        // empty type
  EXPECT_FALSE(parse_orcpt("rfc822;").ok());               // empty address
  EXPECT_FALSE(parse_orcpt("rfc 822;a@example.com").ok());  // type not an atom
  EXPECT_FALSE(parse_orcpt("rfc822;a=b@example.com").ok()); // bad xtext
  EXPECT_FALSE(parse_orcpt("rfc822;" + std::string(kMaxOrcptLength, 'a')).ok());
}

TEST(Params, MailApplyAndFormat) {
  MailParams p;
  ASSERT_TRUE(p.apply("ret", "hdrs").ok());
  ASSERT_TRUE(p.apply("ENVID", "id+2B1").ok());
  EXPECT_EQ(p.ret, Ret::kHeaders);
  EXPECT_EQ(p.envid, "id+1");
  Status dup = p.apply("RET", "FULL");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("twice"), std::string::npos);
  EXPECT_FALSE(p.apply("ENVID", "x").ok());
  EXPECT_FALSE(p.apply("SIZE", "10").ok());
  EXPECT_TRUE(is_mail_keyword("Envid"));
  EXPECT_FALSE(is_mail_keyword("NOTIFY"));
  EXPECT_EQ(format_mail_params(p), " RET=HDRS ENVID=id+2B1");
  EXPECT_EQ(format_mail_params(MailParams{}), "");
}

TEST(Params, RcptApplyAndFormat) {
  RcptParams p;
  ASSERT_TRUE(p.apply("NOTIFY", "delay,failure").ok());
  ASSERT_TRUE(p.apply("orcpt", "rfc822;x+2By@example.org").ok());
  EXPECT_FALSE(p.apply("NOTIFY", "NEVER").ok());
  EXPECT_FALSE(p.apply("ORCPT", "rfc822;z@example.org").ok());
  EXPECT_TRUE(is_rcpt_keyword("orcpt"));
  EXPECT_EQ(format_rcpt_params(p), " NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+2By@example.org");
  RcptParams never;
  ASSERT_TRUE(never.apply("NOTIFY", "NEVER").ok());
  EXPECT_EQ(format_rcpt_params(never), " NOTIFY=NEVER");
  // What we format, we parse back to the same thing.
  RcptParams again;
  ASSERT_TRUE(again.apply("NOTIFY", "FAILURE,DELAY").ok());
  ASSERT_TRUE(again.apply("ORCPT", "rfc822;x+2By@example.org").ok());
  EXPECT_EQ(again, p);
}

// ---- Decision -----------------------------------------------------------------------------

TEST(ReportWanted, Table) {
  struct Case {
    std::string_view sender;
    uint8_t notify;
    ReportKind kind;
    bool wanted;
  };
  const Case cases[] = {
      {"", 0, ReportKind::kFailure, false},  // null sender (a DSN itself): never
      {"", kNotifyFailure, ReportKind::kFailure, false},
      {"", kNotifySuccess, ReportKind::kSuccess, false},
      {"a@x", 0, ReportKind::kFailure, true},  // default: failures and delays
      {"a@x", 0, ReportKind::kDelay, true},
      {"a@x", 0, ReportKind::kSuccess, false},
      {"a@x", kNotifyNever, ReportKind::kFailure, false},
      {"a@x", kNotifyNever, ReportKind::kDelay, false},
      {"a@x", kNotifySuccess, ReportKind::kSuccess, true},
      {"a@x", kNotifySuccess, ReportKind::kFailure, false},
      {"a@x", kNotifyFailure, ReportKind::kDelay, false},
      {"a@x", kNotifyFailure | kNotifyDelay, ReportKind::kDelay, true},
      {"a@x", kNotifyDelay, ReportKind::kFailure, false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(report_wanted(c.sender, c.notify, c.kind), c.wanted)
        << "sender=" << c.sender << " notify=" << int(c.notify) << " kind=" << int(c.kind);
}

// ---- Composition --------------------------------------------------------------------------

const std::string kOriginal =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: quarterly figures\r\n"
    "Message-ID: <orig.1@example.org>\r\n"
    "\r\n"
    "Body line one.\r\n"
    "Body line two.\r\n";

Report failure_report() {
  Report r;
  r.kind = ReportKind::kFailure;
  r.envelope_sender = "alice@example.org";
  r.envid = "QQ314159";
  r.ret = Ret::kFull;
  r.arrival = at(1'800'000'000);
  r.reporting_mta = "relay.ringmail.test";
  r.queue_id = "0000000000ABCDEF";
  RecipientReport bob;
  bob.address = "bob@example.net";
  bob.orcpt = {"rfc822", "Bob@Example.NET"};
  bob.action = Action::kFailed;
  bob.status = "5.1.1";
  bob.remote_mta = "mx1.example.net";
  bob.diagnostic = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown";
  bob.last_attempt = at(1'800'000'100);
  r.recipients.push_back(bob);
  return r;
}

ComposeOptions options() {
  ComposeOptions o;
  o.now = at(1'800'000'200);
  o.unique = 0x1234;
  return o;
}

// Every line ends with CRLF, no bare CR or LF, no line over 998 octets.
void expect_wire_clean(const std::string& m) {
  ASSERT_GE(m.size(), 2u);
  EXPECT_EQ(m.substr(m.size() - 2), "\r\n");
  size_t col = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\r') {
      ASSERT_TRUE(i + 1 < m.size() && m[i + 1] == '\n') << "bare CR at " << i;
      ++i;
      col = 0;
      continue;
    }
    ASSERT_NE(m[i], '\n') << "bare LF at " << i;
    ++col;
    ASSERT_LE(col, 998u) << "line too long at " << i;
  }
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

TEST(Compose, FailureWithFullMessage) {
  Result<ComposedReport> c = compose(failure_report(), kOriginal, options());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->mail_from, "");
  EXPECT_EQ(c->rcpt_to, "alice@example.org");
  EXPECT_FALSE(c->eight_bit);
  EXPECT_FALSE(c->smtputf8);
  const std::string& m = c->message;
  expect_wire_clean(m);
  EXPECT_TRUE(contains(m, "To: <alice@example.org>\r\n"));
  EXPECT_TRUE(contains(m, "Subject: Undelivered Mail Returned to Sender\r\n"));
  EXPECT_TRUE(contains(m, "Date: Fri, 15 Jan 2027 08:03:20 +0000\r\n"));
  EXPECT_TRUE(contains(m, "Message-ID: <dsn.0000000000001234.1800000200@relay.ringmail.test>\r\n"));
  EXPECT_TRUE(contains(m, "Auto-Submitted: auto-replied\r\n"));
  EXPECT_TRUE(contains(m, "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\""));
  EXPECT_TRUE(contains(m, "Reporting-MTA: dns; relay.ringmail.test\r\n"));
  EXPECT_TRUE(contains(m, "Original-Envelope-Id: QQ314159\r\n"));
  EXPECT_TRUE(contains(m, "Arrival-Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
  EXPECT_TRUE(contains(m, "Original-Recipient: rfc822; Bob@Example.NET\r\n"));
  EXPECT_TRUE(contains(m, "Final-Recipient: rfc822; bob@example.net\r\n"));
  EXPECT_TRUE(contains(m, "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx1.example.net\r\n"));
  // Folded at a space before column 78 (RFC 5322 §2.2.3).
  EXPECT_TRUE(contains(m, "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address\r\n"
                          " rejected: User unknown\r\n"));
  EXPECT_TRUE(contains(m, "Last-Attempt-Date: Fri, 15 Jan 2027 08:01:40 +0000\r\n"));
  EXPECT_FALSE(contains(m, "Will-Retry-Until"));
  EXPECT_TRUE(contains(m, "Content-Type: message/rfc822\r\n"));
  EXPECT_TRUE(contains(m, "Body line two.\r\n"));  // RET=FULL returns the body
  EXPECT_TRUE(contains(m, "Queue id: 0000000000ABCDEF"));
}

TEST(Compose, HeadersOnlyUnlessFullWasAsked) {
  for (Ret ret : {Ret::kUnspecified, Ret::kHeaders}) {
    Report r = failure_report();
    r.ret = ret;
    Result<ComposedReport> c = compose(r, kOriginal, options());
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(contains(c->message, "Content-Type: text/rfc822-headers\r\n"));
    EXPECT_TRUE(contains(c->message, "Subject: quarterly figures\r\n"));
    EXPECT_FALSE(contains(c->message, "Body line one."));
  }
  // A huge message is returned as headers even with RET=FULL.
  ComposeOptions small = options();
  small.max_full_bytes = kOriginal.size() - 1;
  Result<ComposedReport> c = compose(failure_report(), kOriginal, small);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(contains(c->message, "Body line one."));
}

TEST(Compose, DelayNoticeHasWillRetryUntilAndHeadersOnly) {
  Report r = failure_report();
  r.kind = ReportKind::kDelay;
  r.recipients[0].action = Action::kDelayed;
  r.recipients[0].status = "4.4.1";
  r.recipients[0].diagnostic = "connect to mx1.example.net: Connection refused";
  r.recipients[0].will_retry_until = at(1'800'172'800);
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_TRUE(c.ok()) << c.error().message();
  expect_wire_clean(c->message);
  EXPECT_TRUE(contains(c->message, "Subject: Delayed Mail (still being retried)\r\n"));
  EXPECT_TRUE(contains(c->message, "Action: delayed\r\nStatus: 4.4.1\r\n"));
  EXPECT_TRUE(contains(c->message, "Will-Retry-Until: Sun, 17 Jan 2027 08:00:00 +0000\r\n"));
  EXPECT_TRUE(contains(c->message, "Content-Type: text/rfc822-headers\r\n"));  // despite RET=FULL
}

TEST(Compose, SuccessReportReturnsHeadersEvenWithRetFull) {
  Report r = failure_report();
  r.kind = ReportKind::kSuccess;
  r.recipients[0].action = Action::kDelivered;
  r.recipients[0].status = "2.0.0";
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(contains(c->message, "Subject: Successful Mail Delivery Report\r\n"));
  EXPECT_TRUE(contains(c->message, "Action: delivered\r\nStatus: 2.0.0\r\n"));
  EXPECT_TRUE(contains(c->message, "Content-Type: text/rfc822-headers\r\n"));
  EXPECT_FALSE(contains(c->message, "Body line one."));
}

TEST(Compose, RefusesNullSenderAndInconsistentStatus) {
  Report r = failure_report();
  r.envelope_sender = "";
  EXPECT_FALSE(compose(r, kOriginal, options()).ok());

  r = failure_report();
  r.recipients.clear();
  EXPECT_FALSE(compose(r, kOriginal, options()).ok());

  for (std::string_view bad : {"5.1", "6.1.1", "5.1.1x", "5..1", "5.1234.1", ""}) {
    r = failure_report();
    r.recipients[0].status = bad;
    EXPECT_FALSE(compose(r, kOriginal, options()).ok()) << bad;
  }
  r = failure_report();
  r.recipients[0].status = "2.0.0";  // success status on a failed recipient
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("does not fit"), std::string::npos);
  r.recipients[0].status = "4.4.7";  // expiry after temporary failures: failed with a 4.x.x status
  EXPECT_TRUE(compose(r, kOriginal, options()).ok());
}

TEST(Compose, RemoteTextCannotInjectFieldsAndLongTextIsFolded) {
  Report r = failure_report();
  r.recipients[0].diagnostic = "550 rejected\r\nAction: delivered\r\n" + std::string(3000, 'x') + " " +
                               std::string(200, 'y');
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_TRUE(c.ok());
  expect_wire_clean(c->message);
  EXPECT_FALSE(contains(c->message, "\r\nAction: delivered"));
  EXPECT_TRUE(contains(c->message, "Diagnostic-Code: smtp; 550 rejected Action: delivered"));
}

TEST(Compose, BoundaryAvoidsTextOfTheOriginal) {
  std::string original = kOriginal + "--=_ringmail_0000000000001234_0\r\n";
  Result<ComposedReport> c = compose(failure_report(), original, options());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(contains(c->message, "boundary=\"=_ringmail_0000000000001234_1\""));
}

TEST(Compose, NormalisesBareLineEndsAndLongLinesOfTheOriginal) {
  std::string original = "Subject: x\nX-Long: " + std::string(1500, 'z') + "\n\nbody\rmore\n";
  Result<ComposedReport> c = compose(failure_report(), original, options());
  ASSERT_TRUE(c.ok());
  expect_wire_clean(c->message);
  EXPECT_TRUE(contains(c->message, "body\r\nmore\r\n"));
}

TEST(Compose, EightBitContentIsFlagged) {
  Report r = failure_report();
  r.recipients[0].address = "j\xc3\xb6rg@example.net";
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->eight_bit);
  EXPECT_TRUE(c->smtputf8);
  EXPECT_TRUE(contains(c->message, "Final-Recipient: utf-8; j\xc3\xb6rg@example.net\r\n"));
  EXPECT_TRUE(contains(c->message, "charset=utf-8"));
}

TEST(Compose, SeveralRecipientsEachGetAGroup) {
  Report r = failure_report();
  RecipientReport carol = r.recipients[0];
  carol.address = "carol@example.net";
  carol.orcpt = {};
  carol.status = "5.2.2";
  r.recipients.push_back(carol);
  Result<ComposedReport> c = compose(r, kOriginal, options());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(contains(c->message, "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\nAction: failed\r\n"
                                   "Status: 5.2.2\r\n"));
}

TEST(Rfc5322Date, Epoch) { EXPECT_EQ(rfc5322_date(at(0)), "Thu, 01 Jan 1970 00:00:00 +0000"); }

// ---- Samples for the independent parser ---------------------------------------------------

// Writes sample reports for tests/integration/test_dsn_format.py, which runs this test with
// RINGMAIL_DSN_SAMPLES set to its directory. Without it the samples go to a temporary directory.
TEST(DsnSamples, WriteForPythonParser) {
  const char* env = std::getenv("RINGMAIL_DSN_SAMPLES");
  namespace fs = std::filesystem;
  fs::path dir = env ? fs::path(env) : fs::temp_directory_path() / fmt::format("dsn-samples-{}", ::getpid());
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const Report& r, const std::string& original) {
    Result<ComposedReport> c = compose(r, original, options());
    ASSERT_TRUE(c.ok()) << name << ": " << c.error().message();
    std::ofstream(dir / (name + ".eml"), std::ios::binary) << c->message;
    std::ofstream(dir / (name + ".rcpt"), std::ios::binary) << c->rcpt_to;
  };

  write("failure_full", failure_report(), kOriginal);

  Report hdrs = failure_report();
  hdrs.ret = Ret::kHeaders;
  RecipientReport carol = hdrs.recipients[0];
  carol.address = "carol@example.net";
  carol.orcpt = {};
  carol.status = "4.4.7";
  carol.diagnostic = "451 4.3.0 try again later " + std::string(300, 'w');
  hdrs.recipients.push_back(carol);
  write("failure_headers_two_rcpts", hdrs, kOriginal);

  Report delay = failure_report();
  delay.kind = ReportKind::kDelay;
  delay.envid.clear();
  delay.recipients[0].action = Action::kDelayed;
  delay.recipients[0].status = "4.4.1";
  delay.recipients[0].will_retry_until = at(1'800'172'800);
  write("delay", delay, kOriginal);

  Report success = failure_report();
  success.kind = ReportKind::kSuccess;
  success.recipients[0].action = Action::kRelayed;
  success.recipients[0].status = "2.0.0";
  success.recipients[0].diagnostic = "250 2.0.0 Ok: queued as 4F3A";
  write("success_relayed", success, kOriginal);

  EXPECT_TRUE(fs::exists(dir / "delay.eml"));
  if (!env) fs::remove_all(dir);
}

}  // namespace
}  // namespace ringmail::queue::dsn
