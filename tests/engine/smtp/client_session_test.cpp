// Transcript tests of the outbound SMTP client session. A scripted fake server: each step is an
// event (server bytes, timeout, connection loss, offer) and the exact bytes the client must send
// in response. Every transcript runs with the server bytes in one chunk, one byte at a time and
// split in two at every offset; all must give identical output and identical per-recipient
// results. The hooks check the contract: one result per recipient, then done, one session result.
#include "engine/smtp/client_session.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <deque>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ringmail::smtp {
namespace {

using namespace std::chrono_literals;

std::string_view kind_name(OutcomeKind k) {
  switch (k) {
    case OutcomeKind::kSuccess: return "ok";
    case OutcomeKind::kTransient: return "transient";
    case OutcomeKind::kPermanent: return "permanent";
    case OutcomeKind::kTryNextHost: return "next-host";
  }
  return "?";
}

std::string_view scope_name(FailureScope s) {
  switch (s) {
    case FailureScope::kNone: return "-";
    case FailureScope::kConnection: return "connection";
    case FailureScope::kDestination: return "destination";
    case FailureScope::kMessage: return "message";
    case FailureScope::kRecipient: return "recipient";
  }
  return "?";
}

// "permanent recipient RCPT TO 550 5.1.1" (+ " dup" when a duplicate is possible).
std::string brief(const DeliveryOutcome& o) {
  return fmt::format("{} {} {} {}{}{}{}", kind_name(o.kind), scope_name(o.scope), stage_name(o.stage), o.reply.code,
                     o.reply.enhanced.empty() ? "" : " ", o.reply.enhanced, o.possible_duplicate ? " dup" : "");
}

// The engine side: hands out transactions and records every result as one line of text.
class Recorder final : public ClientHooks {
 public:
  explicit Recorder(const std::vector<OutboundTransaction>& txns) : txns_(txns) {
    for (const auto& t : txns) work.push_back(&t);
  }
  const OutboundTransaction* next_transaction() override {
    EXPECT_FALSE(session_done_) << "work asked for after the session ended";
    if (work.empty()) {
      events.push_back("next: none");
      return nullptr;
    }
    const OutboundTransaction* t = work.front();
    work.pop_front();
    events.push_back(fmt::format("next: t{}", id(*t)));
    return t;
  }
  void on_recipient_result(const OutboundTransaction& txn, size_t i, const DeliveryOutcome& o) override {
    EXPECT_TRUE(reported_.insert({id(txn), i}).second) << "recipient reported twice: t" << id(txn) << ":" << i;
    EXPECT_LT(i, txn.recipients.size());
    events.push_back(fmt::format("t{}:{} {}", id(txn), i, brief(o)));
    last_outcome = o;
  }
  void on_transaction_done(const OutboundTransaction& txn) override {
    for (size_t i = 0; i < txn.recipients.size(); ++i)
      EXPECT_TRUE(reported_.count({id(txn), i})) << "done before t" << id(txn) << ":" << i << " was reported";
    events.push_back(fmt::format("done t{}", id(txn)));
  }
  void on_session_result(const DeliveryOutcome& o) override {
    EXPECT_FALSE(session_done_) << "session result reported twice";
    session_done_ = true;
    events.push_back(fmt::format("session {}", brief(o)));
    session_outcome = o;
  }

  std::deque<const OutboundTransaction*> work;  // handed out in order by next_transaction()
  std::vector<std::string> events;              // everything the session reported, in order
  DeliveryOutcome last_outcome;                 // the last recipient outcome
  DeliveryOutcome session_outcome;              // the session result

 private:
  size_t id(const OutboundTransaction& t) const { return static_cast<size_t>(&t - txns_.data()); }
  const std::vector<OutboundTransaction>& txns_;  // the test's transactions (ids are indexes)
  std::set<std::pair<size_t, size_t>> reported_;  // (transaction, recipient) reported
  bool session_done_ = false;                     // on_session_result was called
};

enum class Event { kInput, kTimeout, kLost, kOffer, kShutdown, kShutdownNow };

struct Step {
  Event event;         // what happens
  std::string server;  // kInput: bytes from the server; kOffer: new transactions' ids are pushed before it
  std::string client;  // everything the client must send in response (data chunks concatenated)
};

Step S(std::string server, std::string client) { return {Event::kInput, std::move(server), std::move(client)}; }
Step Timeout(std::string client = "") { return {Event::kTimeout, "", std::move(client)}; }
Step Lost() { return {Event::kLost, "", ""}; }
Step Offer(std::string client) { return {Event::kOffer, "", std::move(client)}; }

struct RunResult {
  std::vector<std::string> outputs;  // client bytes per step
  std::vector<std::string> events;   // hook events
  ClientAction last = ClientAction::kNeedInput;  // the action after the last step
  bool finished = false;             // session.finished() at the end
  size_t max_chunk = 0;              // longest single output handed to the engine
};

// How the server bytes of each step are cut: whole, one byte at a time, or in two at `at`.
struct Split {
  enum Mode { kWhole, kBytes, kAt } mode;
  size_t at;
};

RunResult run(const ClientConfig& config, const std::vector<OutboundTransaction>& txns, const std::vector<Step>& steps,
        Split split, size_t initially_queued = SIZE_MAX) {
  Recorder hooks(txns);
  std::deque<const OutboundTransaction*> held;
  while (hooks.work.size() > initially_queued) {  // the rest arrives with kOffer steps
    held.push_front(hooks.work.back());
    hooks.work.pop_back();
  }
  ClientSession session(config, hooks);
  RunResult r;
  std::string out;
  ClientAction a = session.on_connected(out);
  EXPECT_EQ(out, "");
  EXPECT_EQ(a, ClientAction::kNeedInput);
  auto drain = [&](ClientAction action, std::string& collected) {
    r.max_chunk = std::max(r.max_chunk, out.size());
    collected += out;
    out.clear();
    while (action == ClientAction::kSendMore) {
      action = session.on_output_drained(out);
      r.max_chunk = std::max(r.max_chunk, out.size());
      collected += out;
      out.clear();
    }
    return action;
  };
  for (const Step& step : steps) {
    std::string collected;
    switch (step.event) {
      case Event::kInput: {
        const std::string& s = step.server;
        std::vector<std::string_view> pieces;
        if (split.mode == Split::kWhole || s.empty()) {
          pieces.push_back(s);
        } else if (split.mode == Split::kBytes) {
          for (size_t i = 0; i < s.size(); ++i) pieces.push_back(std::string_view(s).substr(i, 1));
        } else {
          size_t k = std::min(split.at, s.size());
          pieces.push_back(std::string_view(s).substr(0, k));
          pieces.push_back(std::string_view(s).substr(k));
        }
        for (auto p : pieces) a = drain(session.on_input(p, out), collected);
        break;
      }
      case Event::kTimeout: a = drain(session.on_timeout(out), collected); break;
      case Event::kLost:
        session.on_connection_lost("Connection reset by peer");
        a = session.finished() ? ClientAction::kClose : ClientAction::kNeedInput;
        break;
      case Event::kOffer:
        if (!held.empty()) {
          hooks.work.push_back(held.front());
          held.pop_front();
        }
        a = drain(session.offer(out), collected);
        break;
      case Event::kShutdown: a = drain(session.shutdown(out), collected); break;
      case Event::kShutdownNow: a = drain(session.shutdown(out, true), collected); break;
    }
    r.outputs.push_back(collected);
  }
  r.events = hooks.events;
  r.last = a;
  r.finished = session.finished();
  return r;
}

// Runs the transcript in every split mode and checks outputs, events and the final action.
void expect_transcript(const ClientConfig& config, const std::vector<OutboundTransaction>& txns,
                       const std::vector<Step>& steps, const std::vector<std::string>& events, ClientAction last,
                       size_t initially_queued = SIZE_MAX) {
  size_t longest = 0;
  for (const auto& s : steps) longest = std::max(longest, s.server.size());
  std::vector<Split> splits{{Split::kWhole, 0}, {Split::kBytes, 0}};
  for (size_t k = 1; k < longest; ++k) splits.push_back({Split::kAt, k});
  for (const Split& split : splits) {
    SCOPED_TRACE(fmt::format("split mode {} at {}", static_cast<int>(split.mode), split.at));
    RunResult r = run(config, txns, steps, split, initially_queued);
    ASSERT_EQ(r.outputs.size(), steps.size());
    for (size_t i = 0; i < steps.size(); ++i) ASSERT_EQ(r.outputs[i], steps[i].client) << "step " << i;
    ASSERT_EQ(r.events, events);
    EXPECT_EQ(r.last, last);
    EXPECT_EQ(r.finished, last == ClientAction::kClose);
  }
}

std::string L(std::initializer_list<std::string_view> lines) {
  std::string s;
  for (auto l : lines) {
    s += l;
    s += "\r\n";
  }
  return s;
}

const std::string kGreeting = "220 mx.test ESMTP ready\r\n";
const std::string kEhlo = "EHLO client.test\r\n";
const std::string kHelo = "HELO client.test\r\n";
const std::string kEhloPipelining = L({"250-mx.test Hello", "250-PIPELINING", "250-SIZE 10000", "250-8BITMIME",
                                       "250-ENHANCEDSTATUSCODES", "250 SMTPUTF8"});
const std::string kEhloLockStep = L({"250-mx.test Hello", "250-SIZE 10000", "250 8BITMIME"});
const std::string kEhloBare = L({"250 mx.test"});
const std::string kOk = "250 2.0.0 Ok\r\n";
const std::string k354 = "354 End data with <CR><LF>.<CR><LF>\r\n";
const std::string kQueued = "250 2.0.0 Ok: queued as ABC\r\n";
const std::string kBye = "221 2.0.0 Bye\r\n";
const std::string kQuit = "QUIT\r\n";
const std::string kRset = "RSET\r\n";

ClientConfig config() {
  ClientConfig c;
  c.helo_name = "client.test";
  return c;
}

OutboundTransaction txn(std::string from, std::vector<std::string> rcpts, std::string_view body) {
  OutboundTransaction t;
  t.mail_from = std::move(from);
  for (auto& r : rcpts) t.recipients.push_back({std::move(r), ""});
  t.body = body;
  t.size = body.size();
  return t;
}

const std::string kBody = "Subject: hi\r\n\r\n.dot line\r\nbye\r\n";
const std::string kStuffed = "Subject: hi\r\n\r\n..dot line\r\nbye\r\n.\r\n";
const std::string kMailA = fmt::format("MAIL FROM:<a@src.test> SIZE={}\r\n", kBody.size());
const std::string kRcptB = "RCPT TO:<b@dst.test>\r\n";
const std::string kRcptC = "RCPT TO:<c@dst.test>\r\n";
const std::string kRcptD = "RCPT TO:<d@dst.test>\r\n";

std::vector<OutboundTransaction> one_txn(std::vector<std::string> rcpts = {"b@dst.test", "c@dst.test"}) {
  return {txn("a@src.test", std::move(rcpts), kBody)};
}

// ---- happy paths ----

TEST(ClientSession, LockStepDelivery) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, kRcptC), S(kOk, "DATA\r\n"),
                     S(k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "t0:1 ok - end of data 250 2.0.0", "done t0",
                     "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, PipelinedDeliverySendsOneGroup) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
                     S(kOk + kOk + kOk + k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "t0:1 ok - end of data 250 2.0.0", "done t0",
                     "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, PipeliningCanBeTurnedOff) {
  ClientConfig c = config();
  c.use_pipelining = false;
  expect_transcript(c, one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n"),
                     S(k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, MultiLineRepliesAndServerClosingAfterQuit) {
  expect_transcript(
      config(), one_txn({"b@dst.test"}),
      {S(L({"220-mx.test ESMTP", "220-no UCE", "220 welcome"}), kEhlo), S(kEhloLockStep, kMailA),
       S(L({"250-2.1.0 sender", "250 2.1.0 ok"}), kRcptB), S(kOk, "DATA\r\n"), S(L({"354-go", "354 on"}), kStuffed),
       S(L({"250-2.0.0 queued", "250 2.0.0 as X"}), kQuit), Lost()},
      {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none", "session ok - QUIT 221"},
      ClientAction::kClose);
}

// ---- per-recipient replies ----

TEST(ClientSession, PartialRcptFailurePipelined) {
  auto txns = one_txn({"b@dst.test", "c@dst.test", "d@dst.test"});
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + kRcptD + "DATA\r\n"),
                     S(kOk + "550 5.1.1 <b@dst.test>: no such user\r\n" + kOk + "450 4.2.1 mailbox busy\r\n" + k354,
                       kStuffed),
                     S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550 5.1.1", "t0:2 transient recipient RCPT TO 450 4.2.1",
                     "t0:1 ok - end of data 250 2.0.0", "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, PartialRcptFailureLockStep) {
  auto txns = one_txn({"b@dst.test", "c@dst.test", "d@dst.test"});
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S("550 5.1.1 unknown\r\n", kRcptC),
                     S(kOk, kRcptD), S("452 4.5.3 too many\r\n", "DATA\r\n"), S(k354, kStuffed),
                     S("554 5.7.1 spam\r\n", kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550 5.1.1",
                     "t0:2 transient recipient RCPT TO 452 4.5.3", "t0:1 permanent message end of data 554 5.7.1",
                     "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, AllRcptRefusedLockStepSendsNoData) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S("550 no\r\n", kRcptC),
                     S("551 no\r\n", kRset), S(kOk, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550", "t0:1 permanent recipient RCPT TO 551",
                     "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, AllRcptRefusedPipelinedDataRefused) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
                     S(kOk + "550 no\r\n" + "550 no\r\n" + "554 5.5.1 no valid recipients\r\n", kRset),
                     S(kOk, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550", "t0:1 permanent recipient RCPT TO 550",
                     "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, AllRcptRefusedPipelinedBut354ClosesWithoutSending) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
                     S(kOk + "550 no\r\n" + "450 later\r\n" + k354, "")},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550", "t0:1 transient recipient RCPT TO 450",
                     "done t0", "session next-host connection DATA 451 4.5.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, RecipientsBeyondTheCapWaitForAnotherTransaction) {
  ClientConfig c = config();
  c.max_recipients_per_transaction = 2;
  expect_transcript(c, one_txn({"b@dst.test", "c@dst.test", "d@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
                     S(kOk + kOk + kOk + k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:2 transient recipient local check 452 4.5.3", "t0:0 ok - end of data 250 2.0.0",
                     "t0:1 ok - end of data 250 2.0.0", "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

// ---- 4xx / 5xx at every stage ----

TEST(ClientSession, GreetingRefused) {
  expect_transcript(config(), one_txn(), {S("554 5.7.1 go away\r\n", kQuit)},
                    {"session next-host connection greeting 554 5.7.1"}, ClientAction::kClose);
  expect_transcript(config(), one_txn(), {S("450 busy\r\n", kQuit)}, {"session next-host connection greeting 450"},
                    ClientAction::kClose);
  expect_transcript(config(), one_txn(), {S("421 4.3.2 too busy\r\n", "")},
                    {"session next-host connection greeting 421 4.3.2"}, ClientAction::kClose);
}

TEST(ClientSession, EhloTransientFailureTriesNextHost) {
  expect_transcript(config(), one_txn(), {S(kGreeting, kEhlo), S("451 4.3.0 try later\r\n", kQuit)},
                    {"session next-host connection EHLO 451 4.3.0"}, ClientAction::kClose);
}

TEST(ClientSession, EhloRefusedFallsBackToHeloWithoutExtensions) {
  expect_transcript(config(), one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S("502 5.5.2 command not recognized\r\n", kHelo),
                     S("250 mx.test\r\n", "MAIL FROM:<a@src.test>\r\n"), S(kOk, kRcptB), S(kOk, "DATA\r\n"),
                     S(k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, HeloRefused) {
  expect_transcript(config(), one_txn(), {S(kGreeting, kEhlo), S("500 what\r\n", kHelo), S("550 no\r\n", kQuit)},
                    {"session next-host connection HELO 550"}, ClientAction::kClose);
}

TEST(ClientSession, MailRefusedLockStep) {
  for (auto [reply, event] : {std::pair{"451 4.3.0 later\r\n", "transient message MAIL FROM 451 4.3.0"},
                              std::pair{"553 5.1.8 bad sender\r\n", "permanent message MAIL FROM 553 5.1.8"}}) {
    expect_transcript(config(), one_txn(),
                      {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(reply, kRset), S(kOk, kQuit), S(kBye, "")},
                      {"next: t0", fmt::format("t0:0 {}", event), fmt::format("t0:1 {}", event), "done t0", "next: none",
                       "session ok - QUIT 221 2.0.0"},
                      ClientAction::kClose);
  }
}

TEST(ClientSession, MailRefusedPipelinedIgnoresTheFollowingReplies) {
  expect_transcript(
      config(), one_txn(),
      {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
       S("553 5.1.8 bad sender\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n", kRset),
       S(kOk, kQuit), S(kBye, "")},
      {"next: t0", "t0:0 permanent message MAIL FROM 553 5.1.8", "t0:1 permanent message MAIL FROM 553 5.1.8",
       "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
      ClientAction::kClose);
}

TEST(ClientSession, DataRefused) {
  for (auto [reply, event] : {std::pair{"451 4.3.0 later\r\n", "transient message DATA 451 4.3.0"},
                              std::pair{"554 5.5.1 no\r\n", "permanent message DATA 554 5.5.1"}}) {
    expect_transcript(config(), one_txn({"b@dst.test"}),
                      {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n"),
                       S(reply, kRset), S(kOk, kQuit), S(kBye, "")},
                      {"next: t0", fmt::format("t0:0 {}", event), "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                      ClientAction::kClose);
  }
}

TEST(ClientSession, FinalDotRefusedNeedsNoRset) {
  auto txns = one_txn({"b@dst.test"});
  txns.push_back(txn("x@src.test", {"c@dst.test"}, "hi\r\n"));
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + "DATA\r\n"), S(kOk + kOk + k354, kStuffed),
                     S("451 4.7.1 greylisted\r\n", "MAIL FROM:<x@src.test> SIZE=4\r\n" + kRcptC + "DATA\r\n"),
                     S(kOk + kOk + k354, "hi\r\n.\r\n"), S("550 5.7.1 rejected\r\n", kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 transient message end of data 451 4.7.1", "done t0", "next: t1",
                     "t1:0 permanent message end of data 550 5.7.1", "done t1", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, ServiceClosing421MidSession) {
  // 421 to RCPT: the accepted and the unanswered recipients go to the next host; nothing more is sent.
  expect_transcript(config(), one_txn({"b@dst.test", "c@dst.test", "d@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, kRcptC),
                     S("421 4.4.2 mx.test closing\r\n", "")},
                    {"next: t0", "t0:0 next-host connection RCPT TO 421 4.4.2",
                     "t0:1 next-host connection RCPT TO 421 4.4.2", "t0:2 next-host connection RCPT TO 421 4.4.2",
                     "done t0", "session next-host connection RCPT TO 421 4.4.2"},
                    ClientAction::kClose);
  // 421 as the verdict on the message.
  expect_transcript(config(), one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + "DATA\r\n"), S(kOk + kOk + k354, kStuffed),
                     S("421 4.3.0 shutting down\r\n", "")},
                    {"next: t0", "t0:0 next-host connection end of data 421 4.3.0", "done t0",
                     "session next-host connection end of data 421 4.3.0"},
                    ClientAction::kClose);
}

// ---- connection loss, garbage ----

TEST(ClientSession, ServerClosingMidReply) {
  expect_transcript(config(), one_txn(), {S(kGreeting, kEhlo), S("250-mx.test\r\n250-PIPE", ""), Lost()},
                    {"session next-host connection EHLO 451 4.4.2"}, ClientAction::kClose);
  RunResult r = run(config(), one_txn(), {S(kGreeting, kEhlo), S("250-mx.test\r\n250-PIPE", ""), Lost()}, {Split::kWhole, 0});
  EXPECT_TRUE(r.finished);
}

TEST(ClientSession, LostMidReplySaysSoInTheText) {
  std::vector<OutboundTransaction> txns = one_txn({"b@dst.test"});
  Recorder hooks(txns);
  ClientConfig c = config();
  ClientSession s(c, hooks);
  std::string out;
  (void)s.on_connected(out);
  (void)s.on_input(kGreeting + kEhloLockStep + kOk + "550-5.1.1 partial", out);
  s.on_connection_lost("EOF");
  EXPECT_EQ(hooks.last_outcome.kind, OutcomeKind::kTryNextHost);
  EXPECT_NE(hooks.last_outcome.reply.text.find("middle of a reply"), std::string::npos) << hooks.last_outcome.reply.text;
  EXPECT_NE(hooks.last_outcome.reply.text.find("RCPT TO"), std::string::npos);
}

TEST(ClientSession, LostBeforeTheDotIsSafeToRetryElsewhere) {
  expect_transcript(config(), one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n"), Lost()},
                    {"next: t0", "t0:0 next-host connection DATA 451 4.4.2", "done t0",
                     "session next-host connection DATA 451 4.4.2"},
                    ClientAction::kClose);
}

TEST(ClientSession, LostAfterTheDotMayDuplicate) {
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + kRcptC + "DATA\r\n"),
                     S(kOk + "550 no\r\n" + kOk + k354, kStuffed), Lost()},
                    {"next: t0", "t0:0 permanent recipient RCPT TO 550", "t0:1 transient message end of data 451 4.4.2 dup",
                     "done t0", "session transient message end of data 451 4.4.2 dup"},
                    ClientAction::kClose);
}

TEST(ClientSession, ConnectFailure) {
  std::vector<OutboundTransaction> txns = one_txn();
  Recorder hooks(txns);
  ClientConfig c = config();
  ClientSession s(c, hooks);
  EXPECT_EQ(s.timeout(), 30s);
  s.on_connection_lost("Connection refused");
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(hooks.events, (std::vector<std::string>{"session next-host connection connect 451 4.4.1"}));
  EXPECT_NE(hooks.session_outcome.reply.text.find("Connection refused"), std::string::npos);
}

TEST(ClientSession, GarbageRepliesAreProtocolErrors) {
  expect_transcript(config(), one_txn(), {S("SSH-2.0-OpenSSH_9.2\r\n", "")},
                    {"session next-host connection greeting 451 4.5.0"}, ClientAction::kClose);
  expect_transcript(config(), one_txn(),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S("25O ok\r\n", "")},
                    {"next: t0", "t0:0 next-host connection RCPT TO 451 4.5.0", "t0:1 next-host connection RCPT TO 451 4.5.0",
                     "done t0", "session next-host connection RCPT TO 451 4.5.0"},
                    ClientAction::kClose);
  // A reply of the wrong class: 250 to DATA.
  expect_transcript(config(), one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n"), S(kOk, "")},
                    {"next: t0", "t0:0 next-host connection DATA 451 4.5.0", "done t0",
                     "session next-host connection DATA 451 4.5.0"},
                    ClientAction::kClose);
  // 354 as the verdict on the message: the server is confused after the dot; may have delivered.
  expect_transcript(config(), one_txn({"b@dst.test"}),
                    {S(kGreeting, kEhlo), S(kEhloPipelining, kMailA + kRcptB + "DATA\r\n"), S(kOk + kOk + k354, kStuffed),
                     S(k354, "")},
                    {"next: t0", "t0:0 transient message end of data 451 4.5.0 dup", "done t0",
                     "session transient message end of data 451 4.5.0 dup"},
                    ClientAction::kClose);
}

// ---- extensions ----

TEST(ClientSession, EightBitBodyUsesBodyParameterOrIsRefused) {
  auto txns = one_txn({"b@dst.test"});
  txns[0].body_8bit = true;
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo),
                     S(kEhloPipelining, fmt::format("MAIL FROM:<a@src.test> SIZE={} BODY=8BITMIME\r\n", kBody.size()) +
                                            kRcptB + "DATA\r\n"),
                     S(kOk + kOk + k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
  // No 8BITMIME (HELO fallback): refused before anything is sent for it.
  txns.push_back(txn("a@src.test", {"c@dst.test"}, kBody));
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S("500 no\r\n", kHelo), S("250 mx.test\r\n", "MAIL FROM:<a@src.test>\r\n"),
                     S(kOk, kRcptC), S(kOk, "DATA\r\n"), S(k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent message local check 554 5.6.3", "done t0", "next: t1",
                     "t1:0 ok - end of data 250 2.0.0", "done t1", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, SmtpUtf8IsSentWhenOfferedAndRefusedOtherwise) {
  auto txns = std::vector<OutboundTransaction>{txn("ä@src.test", {"ö@dst.test"}, kBody)};
  txns[0].smtputf8 = true;
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo),
                     S(kEhloPipelining, fmt::format("MAIL FROM:<ä@src.test> SIZE={} SMTPUTF8\r\n", kBody.size()) +
                                            "RCPT TO:<ö@dst.test>\r\nDATA\r\n"),
                     S(kOk + kOk + k354, kStuffed), S(kQueued, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
  expect_transcript(config(), txns, {S(kGreeting, kEhlo), S(kEhloLockStep, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent message local check 553 5.6.7", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
}

TEST(ClientSession, SizeLimitRefusesWithoutSending) {
  std::string big(20000, 'x');
  auto txns = std::vector<OutboundTransaction>{txn("a@src.test", {"b@dst.test", "c@dst.test"}, big)};
  expect_transcript(config(), txns, {S(kGreeting, kEhlo), S(kEhloPipelining, kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 permanent message local check 552 5.3.4",
                     "t0:1 permanent message local check 552 5.3.4", "done t0", "next: none",
                     "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
  // SIZE without a number: no limit, but SIZE= is still declared.
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S(L({"250-mx.test", "250 SIZE"}), "MAIL FROM:<a@src.test> SIZE=20000\r\n")},
                    {"next: t0"}, ClientAction::kNeedInput);
}

TEST(ClientSession, DsnParametersOnlyWhenAnnounced) {
  auto txns = one_txn({"b@dst.test"});
  txns[0].dsn_mail_params = "RET=HDRS ENVID=e1";
  txns[0].recipients[0].dsn_params = "NOTIFY=FAILURE ORCPT=rfc822;b@dst.test";
  expect_transcript(config(), txns,
                    {S(kGreeting, kEhlo), S(L({"250-mx.test", "250-DSN", "250 PIPELINING"}),
                                            "MAIL FROM:<a@src.test> RET=HDRS ENVID=e1\r\n"
                                            "RCPT TO:<b@dst.test> NOTIFY=FAILURE ORCPT=rfc822;b@dst.test\r\nDATA\r\n")},
                    {"next: t0"}, ClientAction::kNeedInput);
  expect_transcript(config(), txns, {S(kGreeting, kEhlo), S(kEhloBare, "MAIL FROM:<a@src.test>\r\n")}, {"next: t0"},
                    ClientAction::kNeedInput);
}

// ---- data streaming ----

TEST(ClientSession, LargeBodyIsStreamedInBoundedChunks) {
  std::string body;
  for (int i = 0; i < 500; ++i) body += i % 2 ? ".leading dot\r\n" : "plain line of the message\r\n";
  std::string stuffed;
  for (int i = 0; i < 500; ++i) stuffed += i % 2 ? "..leading dot\r\n" : "plain line of the message\r\n";
  stuffed += ".\r\n";
  ClientConfig c = config();
  c.max_output_chunk = 256;
  auto txns = std::vector<OutboundTransaction>{txn("a@src.test", {"b@dst.test"}, body)};
  std::string mail = fmt::format("MAIL FROM:<a@src.test> SIZE={}\r\n", body.size());
  std::vector<Step> steps{S(kGreeting, kEhlo), S(L({"250-mx.test", "250-SIZE 0", "250 PIPELINING"}), mail + kRcptB + "DATA\r\n"),
                          S(kOk + kOk + k354, stuffed), S(kQueued, kQuit), S(kBye, "")};
  expect_transcript(c, txns, steps,
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose);
  RunResult r = run(c, txns, steps, {Split::kWhole, 0});
  EXPECT_LE(r.max_chunk, 256u + 5);
}

TEST(ClientSession, ReplyDuringDataIsReadAsTheVerdict) {
  std::string body(1000, 'y');
  ClientConfig c = config();
  c.max_output_chunk = 100;
  auto txns = std::vector<OutboundTransaction>{txn("a@src.test", {"b@dst.test"}, body)};
  Recorder hooks(txns);
  ClientSession s(c, hooks);
  std::string out;
  (void)s.on_connected(out);
  EXPECT_EQ(s.on_input(kGreeting + kEhloLockStep + kOk + kOk, out), ClientAction::kNeedInput);
  out.clear();
  EXPECT_EQ(s.on_input(k354, out), ClientAction::kSendMore);
  EXPECT_EQ(s.timeout(), 180s);
  EXPECT_EQ(s.on_input("554 5.7.0 stop", out), ClientAction::kSendMore);  // buffered, not acted on yet
  EXPECT_EQ(s.on_input(" now\r\n", out), ClientAction::kSendMore);
  ClientAction a = ClientAction::kSendMore;
  while (a == ClientAction::kSendMore) a = s.on_output_drained(out);
  EXPECT_EQ(a, ClientAction::kNeedInput);
  EXPECT_TRUE(out.ends_with("\r\n.\r\nQUIT\r\n")) << out;
  EXPECT_EQ(hooks.events[1], "t0:0 permanent message end of data 554 5.7.0");
}

// ---- connection reuse ----

TEST(ClientSession, ReuseWithRsetAfterAFailureAndMessageLimit) {
  ClientConfig c = config();
  c.max_messages_per_connection = 3;
  std::vector<OutboundTransaction> txns{txn("a@src.test", {"b@dst.test"}, "one\r\n"),
                                        txn("a@src.test", {"c@dst.test"}, "two\r\n"),
                                        txn("a@src.test", {"d@dst.test"}, "three\r\n"),
                                        txn("a@src.test", {"b@dst.test"}, "four\r\n")};
  expect_transcript(
      c, txns,
      {S(kGreeting, kEhlo), S(kEhloPipelining, "MAIL FROM:<a@src.test> SIZE=5\r\n" + kRcptB + "DATA\r\n"),
       S(kOk + kOk + k354, "one\r\n.\r\n"),
       S(kQueued, "MAIL FROM:<a@src.test> SIZE=5\r\n" + kRcptC + "DATA\r\n"),  // no RSET after a success
       S("452 4.3.1 out of space\r\n503 need MAIL\r\n503 need MAIL\r\n", kRset),
       S(kOk, "MAIL FROM:<a@src.test> SIZE=7\r\n" + kRcptD + "DATA\r\n"), S(kOk + kOk + k354, "three\r\n.\r\n"),
       S(kQueued, kQuit),  // three MAILs sent: the limit; t3 stays queued
       S(kBye, "")},
      {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: t1", "t1:0 transient message MAIL FROM 452 4.3.1",
       "done t1", "next: t2", "t2:0 ok - end of data 250 2.0.0", "done t2", "session ok - QUIT 221 2.0.0"},
      ClientAction::kClose);
}

TEST(ClientSession, IdleSessionTakesOfferedWorkThenQuitsOnIdleTimeout) {
  ClientConfig c = config();
  c.idle_timeout = 5s;
  std::vector<OutboundTransaction> txns{txn("a@src.test", {"b@dst.test"}, "one\r\n"),
                                        txn("a@src.test", {"c@dst.test"}, "two\r\n")};
  expect_transcript(c, txns,
                    {S(kGreeting, kEhlo), S(kEhloPipelining, "MAIL FROM:<a@src.test> SIZE=5\r\n" + kRcptB + "DATA\r\n"),
                     S(kOk + kOk + k354, "one\r\n.\r\n"), S(kQueued, ""),
                     Offer("MAIL FROM:<a@src.test> SIZE=5\r\n" + kRcptC + "DATA\r\n"), S(kOk + kOk + k354, "two\r\n.\r\n"),
                     S(kQueued, ""), Timeout(kQuit), S(kBye, "")},
                    {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "next: none", "next: t1",
                     "t1:0 ok - end of data 250 2.0.0", "done t1", "next: none", "session ok - QUIT 221 2.0.0"},
                    ClientAction::kClose, 1);
}

TEST(ClientSession, ServerTimeoutWhileIdle) {
  ClientConfig c = config();
  c.idle_timeout = 5s;
  expect_transcript(c, {}, {S(kGreeting, kEhlo), S(kEhloPipelining, ""), S("421 4.4.2 mx.test timeout\r\n", "")},
                    {"next: none", "session transient connection idle 451 4.4.2"}, ClientAction::kClose);
}

TEST(ClientSession, ShutdownWhileIdleSaysQuit) {
  ClientConfig c = config();
  c.idle_timeout = 5s;
  expect_transcript(c, {}, {S(kGreeting, kEhlo), S(kEhloPipelining, ""), {Event::kShutdown, "", kQuit}, S(kBye, "")},
                    {"next: none", "session ok - QUIT 221 2.0.0"}, ClientAction::kClose);
}

// A transaction under way when the engine stops is finished (the message may already be at the
// server: cutting it would deliver it twice after the restart); then QUIT, no further work taken.
// The shutdown comes right after MAIL/RCPT/DATA went out, or after the final dot.
TEST(ClientSession, ShutdownDuringATransactionFinishesItThenQuits) {
  ClientConfig c = config();
  std::vector<OutboundTransaction> txns{txn("a@src.test", {"b@dst.test"}, "one\r\n"),
                                        txn("a@src.test", {"c@dst.test"}, "two\r\n")};
  const Step shutdown{Event::kShutdown, "", ""};
  for (size_t at : {size_t{2}, size_t{3}}) {
    std::vector<Step> steps{S(kGreeting, kEhlo),
                            S(kEhloPipelining, "MAIL FROM:<a@src.test> SIZE=5\r\n" + kRcptB + "DATA\r\n"),
                            S(kOk + kOk + k354, "one\r\n.\r\n"), S(kQueued, kQuit), S(kBye, "")};
    steps.insert(steps.begin() + static_cast<std::ptrdiff_t>(at), shutdown);
    SCOPED_TRACE(at == 2 ? "shutdown before the DATA reply" : "shutdown after the final dot");
    expect_transcript(c, txns, steps,
                      {"next: t0", "t0:0 ok - end of data 250 2.0.0", "done t0", "session ok - QUIT 221 2.0.0"},
                      ClientAction::kClose);
  }
}

// When the grace period is over (shutdown with now) the transaction is cut like a lost connection:
// its recipients stay pending for the next start.
TEST(ClientSession, ShutdownNowCutsTheTransaction) {
  ClientConfig c = config();
  std::vector<OutboundTransaction> txns{txn("a@src.test", {"b@dst.test"}, "one\r\n")};
  Recorder hooks(txns);
  ClientSession s(c, hooks);
  std::string out;
  (void)s.on_connected(out);
  (void)s.on_input(kGreeting, out);
  (void)s.on_input(kEhloPipelining, out);
  (void)s.on_input(kOk + kOk + k354, out);
  while (s.on_output_drained(out) == ClientAction::kSendMore) {
  }
  out.clear();
  EXPECT_EQ(s.shutdown(out), ClientAction::kNeedInput);  // waits for the end-of-data reply
  EXPECT_TRUE(s.draining());
  EXPECT_EQ(out, "");
  EXPECT_EQ(s.shutdown(out, true), ClientAction::kClose);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(out, "");
  // Cut after the data went out: transient, and flagged as a possible duplicate.
  EXPECT_EQ(hooks.events, (std::vector<std::string>{"next: t0", "t0:0 transient message end of data 451 4.4.2 dup",
                                                    "done t0", "session transient message end of data 451 4.4.2 dup"}));
}

// Before any transaction there is nothing to finish: the session ends at once, no work taken.
TEST(ClientSession, ShutdownBeforeAnyTransactionEndsAtOnce) {
  std::vector<OutboundTransaction> txns{txn("a@src.test", {"b@dst.test"}, "one\r\n")};
  expect_transcript(config(), txns, {S(kGreeting, kEhlo), {Event::kShutdown, "", ""}},
                    {"session next-host connection EHLO 451 4.4.2"},
                    ClientAction::kClose);
}

// ---- timeouts ----

TEST(ClientSession, TimeoutAtEachStage) {
  struct Case {
    std::vector<Step> steps;   // drive the session into the stage
    std::chrono::seconds wait; // timeout() there
    std::string last_event;    // the session result after on_timeout
  };
  ClientConfig c = config();
  c.timeouts.greeting = 301s;
  c.timeouts.helo = 302s;
  c.timeouts.mail = 303s;
  c.timeouts.rcpt = 304s;
  c.timeouts.data_init = 121s;
  c.timeouts.data_block = 181s;
  c.timeouts.final_dot = 601s;
  c.timeouts.rset = 305s;
  c.timeouts.quit = 306s;
  c.max_output_chunk = 4;
  const Case cases[] = {
      {{}, 301s, "session next-host connection greeting 451 4.4.2"},
      {{S(kGreeting, kEhlo)}, 302s, "session next-host connection EHLO 451 4.4.2"},
      {{S(kGreeting, kEhlo), S("500 x\r\n", kHelo)}, 302s, "session next-host connection HELO 451 4.4.2"},
      {{S(kGreeting, kEhlo), S(kEhloLockStep, kMailA)}, 303s, "session next-host connection MAIL FROM 451 4.4.2"},
      {{S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB)}, 304s,
       "session next-host connection RCPT TO 451 4.4.2"},
      {{S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n")}, 121s,
       "session next-host connection DATA 451 4.4.2"},
      {{S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S(kOk, "DATA\r\n"), S(k354, kStuffed)}, 601s,
       "session transient message end of data 451 4.4.2 dup"},
      {{S(kGreeting, kEhlo), S(kEhloLockStep, kMailA), S(kOk, kRcptB), S("550 x\r\n", kRset)}, 305s,
       "session transient connection RSET 451 4.4.2"},
  };
  for (const auto& cs : cases) {
    SCOPED_TRACE(cs.last_event);
    auto txns = one_txn({"b@dst.test"});
    Recorder hooks(txns);
    ClientSession s(c, hooks);
    std::string out;
    (void)s.on_connected(out);
    for (const auto& st : cs.steps) {
      out.clear();
      ClientAction a = s.on_input(st.server, out);
      while (a == ClientAction::kSendMore) a = s.on_output_drained(out);
      ASSERT_EQ(out, st.client);
    }
    EXPECT_EQ(s.timeout(), cs.wait);
    out.clear();
    EXPECT_EQ(s.on_timeout(out), ClientAction::kClose);
    EXPECT_EQ(out, "");  // nothing is sent after a timeout: the server's state is unknown
    EXPECT_TRUE(s.finished());
    ASSERT_FALSE(hooks.events.empty());
    EXPECT_EQ(hooks.events.back(), cs.last_event);
  }
}

TEST(ClientSession, TimeoutWhileSendingData) {
  ClientConfig c = config();
  c.max_output_chunk = 4;
  auto txns = one_txn({"b@dst.test"});
  Recorder hooks(txns);
  ClientSession s(c, hooks);
  std::string out;
  (void)s.on_connected(out);
  EXPECT_EQ(s.on_input(kGreeting + kEhloLockStep + kOk + kOk + k354, out), ClientAction::kSendMore);
  EXPECT_EQ(s.stage(), ClientStage::kDataBlock);
  EXPECT_EQ(s.on_timeout(out), ClientAction::kClose);
  EXPECT_EQ(hooks.events[1], "t0:0 next-host connection message data 451 4.4.2");
}

TEST(ClientSession, QuitTimeoutAndNothingIsSentAfterQuit) {
  Recorder hooks({});
  ClientConfig c = config();
  c.timeouts.quit = 7s;
  ClientSession s(c, hooks);
  std::string out;
  (void)s.on_connected(out);
  EXPECT_EQ(s.on_input(kGreeting + kEhloPipelining, out), ClientAction::kNeedInput);
  EXPECT_EQ(out, kEhlo + kQuit);
  EXPECT_EQ(s.timeout(), 7s);
  out.clear();
  // Whatever comes now, nothing more is sent.
  EXPECT_EQ(s.offer(out), ClientAction::kNeedInput);
  EXPECT_EQ(s.shutdown(out), ClientAction::kNeedInput);
  EXPECT_EQ(s.on_output_drained(out), ClientAction::kNeedInput);
  EXPECT_EQ(out, "");
  EXPECT_EQ(s.on_timeout(out), ClientAction::kClose);
  EXPECT_EQ(out, "");
  EXPECT_EQ(s.on_input("250 ok\r\n", out), ClientAction::kClose);
  s.on_connection_lost("late");
  EXPECT_EQ(out, "");
  EXPECT_EQ(hooks.events, (std::vector<std::string>{"next: none", "session ok - QUIT 221"}));
}

}  // namespace
}  // namespace ringmail::smtp
