// Table-driven tests of the SMTP client's failure classification: reply code × stage → kind and
// scope, transport failures per stage, local refusals, the queue disposition and the log text.
#include <gtest/gtest.h>

#include <string>

#include "engine/smtp/delivery_outcome.h"

namespace ringmail::smtp {
namespace {

using K = OutcomeKind;
using F = FailureScope;
using S = ClientStage;

Reply reply(int code, const char* enhanced = "", const char* text = "text") { return Reply{code, enhanced, text}; }

struct ReplyCase {
  S stage;
  int code;
  K kind;
  F scope;
};

TEST(DeliveryOutcome, ReplyCodeTimesStage) {
  const ReplyCase cases[] = {
      {S::kGreeting, 220, K::kSuccess, F::kNone},
      {S::kGreeting, 421, K::kTryNextHost, F::kConnection},
      {S::kGreeting, 450, K::kTryNextHost, F::kConnection},
      {S::kGreeting, 554, K::kTryNextHost, F::kConnection},
      {S::kEhlo, 250, K::kSuccess, F::kNone},
      {S::kEhlo, 451, K::kTryNextHost, F::kConnection},
      {S::kEhlo, 550, K::kTryNextHost, F::kConnection},
      {S::kHelo, 501, K::kTryNextHost, F::kConnection},
      {S::kMail, 250, K::kSuccess, F::kNone},
      {S::kMail, 421, K::kTryNextHost, F::kConnection},
      {S::kMail, 451, K::kTransient, F::kMessage},
      {S::kMail, 452, K::kTransient, F::kMessage},
      {S::kMail, 550, K::kPermanent, F::kMessage},
      {S::kMail, 552, K::kPermanent, F::kMessage},
      {S::kRcpt, 250, K::kSuccess, F::kNone},
      {S::kRcpt, 251, K::kSuccess, F::kNone},
      {S::kRcpt, 421, K::kTryNextHost, F::kConnection},
      {S::kRcpt, 450, K::kTransient, F::kRecipient},
      {S::kRcpt, 452, K::kTransient, F::kRecipient},
      {S::kRcpt, 550, K::kPermanent, F::kRecipient},
      {S::kRcpt, 553, K::kPermanent, F::kRecipient},
      {S::kData, 354, K::kSuccess, F::kNone},
      {S::kData, 421, K::kTryNextHost, F::kConnection},
      {S::kData, 451, K::kTransient, F::kMessage},
      {S::kData, 554, K::kPermanent, F::kMessage},
      {S::kDot, 250, K::kSuccess, F::kNone},
      {S::kDot, 421, K::kTryNextHost, F::kConnection},
      {S::kDot, 451, K::kTransient, F::kMessage},
      {S::kDot, 552, K::kPermanent, F::kMessage},
      {S::kDot, 554, K::kPermanent, F::kMessage},
      {S::kRset, 250, K::kSuccess, F::kNone},
      {S::kRset, 500, K::kPermanent, F::kConnection},
      {S::kQuit, 221, K::kSuccess, F::kNone},
      {S::kQuit, 500, K::kSuccess, F::kNone},  // whatever QUIT gets, the work was done before it
  };
  for (const auto& c : cases) {
    DeliveryOutcome o = classify_reply(c.stage, reply(c.code, "", "x"));
    EXPECT_EQ(o.kind, c.kind) << stage_name(c.stage) << " " << c.code;
    EXPECT_EQ(o.scope, c.scope) << stage_name(c.stage) << " " << c.code;
    EXPECT_EQ(o.stage, c.stage);
    EXPECT_FALSE(o.local);
    EXPECT_EQ(o.reply.code, c.code);  // the full reply is kept
  }
}

TEST(DeliveryOutcome, WrongPositiveClassIsAProtocolError) {
  const std::pair<S, int> cases[] = {{S::kData, 250}, {S::kMail, 354}, {S::kDot, 354}, {S::kGreeting, 354}};
  for (auto [stage, code] : cases) {
    DeliveryOutcome o = classify_reply(stage, reply(code));
    EXPECT_TRUE(o.local) << code;
    EXPECT_NE(o.kind, K::kSuccess) << code;
    EXPECT_NE(o.kind, K::kPermanent) << code;
    EXPECT_EQ(o.reply.enhanced, "4.5.0");
  }
}

struct LossCase {
  S stage;
  K kind;
  F scope;
  bool duplicate;
};

TEST(DeliveryOutcome, ConnectionLossAndTimeoutPerStage) {
  const LossCase cases[] = {
      {S::kConnect, K::kTryNextHost, F::kConnection, false},
      {S::kGreeting, K::kTryNextHost, F::kConnection, false},
      {S::kEhlo, K::kTryNextHost, F::kConnection, false},
      {S::kMail, K::kTryNextHost, F::kConnection, false},
      {S::kRcpt, K::kTryNextHost, F::kConnection, false},
      {S::kData, K::kTryNextHost, F::kConnection, false},
      {S::kDataBlock, K::kTryNextHost, F::kConnection, false},
      {S::kDot, K::kTransient, F::kMessage, true},
      {S::kRset, K::kTransient, F::kConnection, false},
      {S::kIdle, K::kTransient, F::kConnection, false},
  };
  for (TransportFailure what : {TransportFailure::kLost, TransportFailure::kTimeout, TransportFailure::kProtocolError}) {
    for (const auto& c : cases) {
      DeliveryOutcome o = classify_transport_failure(c.stage, what, "detail");
      EXPECT_EQ(o.kind, c.kind) << stage_name(c.stage);
      EXPECT_EQ(o.scope, c.scope) << stage_name(c.stage);
      EXPECT_EQ(o.possible_duplicate, c.duplicate) << stage_name(c.stage);
      EXPECT_TRUE(o.local);
      EXPECT_EQ(o.reply.klass(), 4);
      EXPECT_NE(o.reply.text.find("detail"), std::string::npos);
    }
  }
  DeliveryOutcome t = classify_transport_failure(S::kDot, TransportFailure::kTimeout, {});
  EXPECT_EQ(t.reply.text, "timeout waiting for reply to end of data");
  EXPECT_EQ(classify_transport_failure(S::kConnect, TransportFailure::kConnectFailed, "refused").reply.enhanced, "4.4.1");
}

TEST(DeliveryOutcome, LocalRefusals) {
  DeliveryOutcome big = classify_local_refusal(LocalRefusal::kTooBig, 1000);
  EXPECT_EQ(big.kind, K::kPermanent);
  EXPECT_EQ(big.scope, F::kMessage);
  EXPECT_EQ(big.reply.code, 552);
  EXPECT_EQ(big.reply.enhanced, "5.3.4");
  EXPECT_NE(big.reply.text.find("1000"), std::string::npos);
  DeliveryOutcome eight = classify_local_refusal(LocalRefusal::kNeeds8BitMime, 0);
  EXPECT_EQ(eight.kind, K::kPermanent);
  EXPECT_EQ(eight.reply.enhanced, "5.6.3");
  DeliveryOutcome utf8 = classify_local_refusal(LocalRefusal::kNeedsSmtpUtf8, 0);
  EXPECT_EQ(utf8.kind, K::kPermanent);
  EXPECT_EQ(utf8.reply.enhanced, "5.6.7");
  DeliveryOutcome many = classify_local_refusal(LocalRefusal::kTooManyRecipients, 100);
  EXPECT_EQ(many.kind, K::kTransient);
  EXPECT_EQ(many.scope, F::kRecipient);
  EXPECT_EQ(many.reply.enhanced, "4.5.3");
  for (const auto* o : {&big, &eight, &utf8, &many}) {
    EXPECT_TRUE(o->local);
    EXPECT_EQ(o->stage, S::kLocal);
  }
}

TEST(DeliveryOutcome, Disposition) {
  struct Case {
    K kind;
    bool more_hosts;
    Disposition want;
  };
  const Case cases[] = {
      {K::kSuccess, false, Disposition::kDelivered},     {K::kTransient, true, Disposition::kDeferred},
      {K::kPermanent, true, Disposition::kFailed},       {K::kTryNextHost, true, Disposition::kTryNextHost},
      {K::kTryNextHost, false, Disposition::kDeferred},
  };
  for (const auto& c : cases) {
    DeliveryOutcome o;
    o.kind = c.kind;
    EXPECT_EQ(disposition(o, c.more_hosts), c.want);
  }
}

TEST(DeliveryOutcome, DescribeForLogsAndDsn) {
  DeliveryOutcome o = classify_reply(S::kRcpt, reply(550, "5.1.1", "no such\nuser"));
  EXPECT_EQ(describe(o), "host said: 550 5.1.1 no such user (in reply to RCPT TO)");
  DeliveryOutcome t = classify_transport_failure(S::kData, TransportFailure::kTimeout, {});
  EXPECT_EQ(describe(t), "451 4.4.2 timeout waiting for reply to DATA");
  EXPECT_EQ(describe(classify_reply(S::kMail, reply(451, "", "later"))), "host said: 451 later (in reply to MAIL FROM)");
}

}  // namespace
}  // namespace ringmail::smtp
