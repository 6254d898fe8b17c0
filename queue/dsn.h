// Delivery status notifications: the RFC 3461 parameters the listener receives (RET, ENVID on MAIL;
// NOTIFY, ORCPT on RCPT) with their xtext coding, the rules that decide whether a report is owed,
// and the composition of an RFC 3464 report as a complete RFC 5322 message (multipart/report).
// Pure functions over plain data: no spool, no clock, no I/O. Queueing the report and the
// "delay notice once" bookkeeping belong to the scheduler.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace ringmail::queue::dsn {

// ---- RFC 3461 parameters ------------------------------------------------------------------

// What to return with a failure report (MAIL ... RET=).
enum class Ret : uint8_t {
  kUnspecified = 0,  // no RET parameter: headers only (RFC 3461 §4.3 leaves it to us)
  kFull = 1,         // RET=FULL: the whole message
  kHeaders = 2,      // RET=HDRS: the header section only
};

// NOTIFY= bits (RCPT). No bit set means "not specified": failures and delays are reported.
inline constexpr uint8_t kNotifyNever = 1u << 0;    // NOTIFY=NEVER (alone)
inline constexpr uint8_t kNotifySuccess = 1u << 1;  // NOTIFY=...SUCCESS...
inline constexpr uint8_t kNotifyFailure = 1u << 2;  // NOTIFY=...FAILURE...
inline constexpr uint8_t kNotifyDelay = 1u << 3;    // NOTIFY=...DELAY...

inline constexpr size_t kMaxEnvidLength = 100;  // RFC 3461 §4.4: ENVID value, in xtext form
inline constexpr size_t kMaxOrcptLength = 500;  // RFC 3461 §4.2: ORCPT value, in xtext form

// ORCPT=addr-type;xtext after decoding: Original-Recipient of the report.
struct OriginalRecipient {
  std::string type;     // address type, lower case ("rfc822", "utf-8"); empty = none given
  std::string address;  // the xtext-decoded address
  bool operator==(const OriginalRecipient&) const = default;
};

// The DSN parameters of one MAIL command. apply() takes one keyword=value pair at a time.
struct MailParams {
  Ret ret = Ret::kUnspecified;  // RET=
  std::string envid;            // ENVID= decoded (printable US-ASCII); empty = none
  bool has_envid = false;       // ENVID= was given (an empty ENVID is refused anyway)

  // Handles RET and ENVID (case-insensitive keyword). Other keywords are not ours: returns an
  // error the caller can ignore by checking is_dsn_keyword() first. Duplicates are errors.
  Status apply(std::string_view keyword, std::string_view value);
  bool operator==(const MailParams&) const = default;
};

// The DSN parameters of one RCPT command.
struct RcptParams {
  uint8_t notify = 0;       // kNotify* bits; 0 = not specified
  OriginalRecipient orcpt;  // ORCPT=, decoded; type empty = not given

  // Handles NOTIFY and ORCPT (case-insensitive keyword). Duplicates are errors.
  Status apply(std::string_view keyword, std::string_view value);
  bool operator==(const RcptParams&) const = default;
};

// True for RET, ENVID (MAIL) and NOTIFY, ORCPT (RCPT), in any case.
bool is_mail_keyword(std::string_view keyword);
bool is_rcpt_keyword(std::string_view keyword);

// Single-value parsers; errors name the parameter and the offending text.
Result<Ret> parse_ret(std::string_view value);
Result<std::string> parse_envid(std::string_view value);
Result<uint8_t> parse_notify(std::string_view value);
Result<OriginalRecipient> parse_orcpt(std::string_view value);

// RFC 3461 §4 xtext: "+XX" escapes a byte; every other byte must be printable ASCII (33..126)
// other than '+' and '='. Decoding accepts lower-case hex; encoding writes upper case.
Result<std::string> xtext_decode(std::string_view text);
std::string xtext_encode(std::string_view raw);

// The parameters to pass on to a next hop that advertises DSN, each with a leading space
// (" RET=HDRS ENVID=abc", " NOTIFY=FAILURE,DELAY ORCPT=rfc822;a+2Bb@x"); empty when none.
std::string format_mail_params(const MailParams& p);
std::string format_rcpt_params(const RcptParams& p);

// ---- When a report is owed ----------------------------------------------------------------

// The kind of report a recipient's outcome can produce.
enum class ReportKind : uint8_t {
  kFailure = 0,  // permanent failure or expiry: Action failed
  kDelay = 1,    // still being retried after the delay-notice time: Action delayed
  kSuccess = 2,  // delivered (or relayed to a next hop without DSN): only when NOTIFY=SUCCESS
};

// Whether a recipient with `notify` bits whose message came from `envelope_sender` gets a report
// of `kind`: never for the null sender (which is how a DSN about a DSN is never produced), never
// for NOTIFY=NEVER, failures and delays by default, success only when asked for.
bool report_wanted(std::string_view envelope_sender, uint8_t notify, ReportKind kind);

// ---- Composing the report -----------------------------------------------------------------

// What happened to one recipient (one per-recipient group of the report).
enum class Action : uint8_t { kFailed, kDelayed, kDelivered, kRelayed };
const char* action_name(Action a);  // "failed", "delayed", "delivered", "relayed"

struct RecipientReport {
  std::string address;        // the forward path we tried (Final-Recipient)
  OriginalRecipient orcpt;    // from ORCPT=; empty type = omit Original-Recipient
  Action action = Action::kFailed;  // must fit the status class (failed 4/5, delayed 4, others 2)
  std::string status;         // enhanced status "5.1.1" (RFC 3463)
  std::string remote_mta;     // host name or [ip] of the next hop that answered; empty = none
  std::string diagnostic;     // the SMTP reply as received ("550 5.1.1 no such user"); empty = none
  WallTime last_attempt{};    // epoch = no attempt made
  WallTime will_retry_until{};  // delays: when the message expires; epoch = omit
};

struct Report {
  ReportKind kind = ReportKind::kFailure;  // decides the subject and the human-readable text
  std::string envelope_sender;            // original MAIL FROM: the report's recipient (never empty)
  std::string envid;                      // original ENVID (decoded); empty = omit
  Ret ret = Ret::kUnspecified;            // what to return of the original (failure reports only)
  WallTime arrival{};                     // when we accepted the message
  std::string reporting_mta;              // our host name (Reporting-MTA, From, Message-ID)
  std::string queue_id;                   // original queue id, shown in the text; may be empty
  std::vector<RecipientReport> recipients;  // at least one
};

// Per-report values the caller chooses so the output is reproducible in tests.
struct ComposeOptions {
  WallTime now{};                        // Date: header
  uint64_t unique = 0;                   // feeds Message-ID and the MIME boundary (e.g. a new queue id)
  size_t max_full_bytes = 10u << 20;     // RET=FULL larger than this returns headers only
};

// A report ready for the spool: envelope and message.
struct ComposedReport {
  std::string mail_from;          // always empty: the null reverse-path (RFC 5321 §4.5.5)
  std::string rcpt_to;            // the original envelope sender
  std::string message;            // RFC 5322 message, CRLF line ends, lines ≤ 998 octets
  bool eight_bit = false;         // the message holds 8-bit data: send with BODY=8BITMIME
  bool smtputf8 = false;          // an address is not ASCII: needs a next hop with SMTPUTF8
};

// Builds the report. Errors: empty sender (a null-sender message gets no report), no recipients,
// a malformed status, or a status that does not fit the action.
Result<ComposedReport> compose(const Report& report, std::string_view original_message,
                               const ComposeOptions& options);

// RFC 5322 date-time in UTC, "Sat, 28 Nov 2026 05:00:00 +0000".
std::string rfc5322_date(WallTime t);

}  // namespace ringmail::queue::dsn
