// RFC 3461 parameter parsing and RFC 3464 report composition (see dsn.h). Every line we write is
// CRLF-terminated and at most 998 octets: our own fields are folded or wrapped, and lines of the
// returned original that break the limit are split (a conforming original never has any).
#include "queue/dsn.h"

#include <fmt/format.h>

#include <ctime>

#include "common/strings.h"

namespace ringmail::queue::dsn {
namespace {

constexpr size_t kMaxLine = 998;     // RFC 5322 §2.1.1 hard limit, CRLF excluded
constexpr size_t kFoldAt = 78;       // preferred width of folded fields and wrapped text
constexpr std::string_view kCrlf = "\r\n";

bool is_xchar(unsigned char c) { return c >= 33 && c <= 126 && c != '+' && c != '='; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool has_eight_bit(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

// Remote replies and addresses end up in header-like fields: no CR, LF or other controls.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    bool ctl = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    if (ctl || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Appends `text` (one logical line, no controls) broken at spaces into lines of about `width`
// octets; the first line starts after `used` octets already on it and later lines start with
// `indent`. A word longer than the hard limit is cut.
void append_wrapped(std::string& out, std::string_view text, size_t used, std::string_view indent,
                    size_t width) {
  size_t col = used;
  bool line_has_word = false;
  auto new_line = [&] {
    out += kCrlf;
    out += indent;
    col = indent.size();
    line_has_word = false;
  };
  while (!text.empty()) {
    size_t sp = text.find(' ');
    std::string_view word = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    if (word.empty()) continue;
    if (line_has_word && col + 1 + word.size() > width) new_line();
    if (line_has_word) {
      out += ' ';
      ++col;
    }
    // A word that cannot fit even on a line of its own is cut at the hard limit.
    while (col + word.size() > kMaxLine) {
      size_t room = kMaxLine - col;
      out += word.substr(0, room);
      word.remove_prefix(room);
      new_line();
    }
    out += word;
    col += word.size();
    line_has_word = true;
  }
  out += kCrlf;
}

// "Name: value" folded with a leading space on continuation lines (RFC 5322 §2.2.3).
void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  append_wrapped(out, one_line(value), name.size() + 2, " ", kFoldAt);
}

// Copies `in` converting bare CR or LF to CRLF, splitting lines longer than the limit, and ending
// with CRLF.
void append_normalised(std::string& out, std::string_view in) {
  size_t col = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
      out += kCrlf;
      col = 0;
      continue;
    }
    if (col == kMaxLine) {
      out += kCrlf;
      col = 0;
    }
    out += c;
    ++col;
  }
  if (col != 0) out += kCrlf;
}

// The header section of a message: everything before the first empty line (the whole message
// when it has no body).
std::string_view header_section(std::string_view msg) {
  if (msg.starts_with("\r\n") || msg.starts_with("\n")) return {};
  for (size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] != '\n') continue;
    size_t next = i + 1;
    if (next < msg.size() && msg[next] == '\n') return msg.substr(0, next);
    if (next + 1 < msg.size() && msg[next] == '\r' && msg[next + 1] == '\n') return msg.substr(0, next);
  }
  return msg;
}

bool valid_status(std::string_view s, char* class_digit) {
  // class "." subject "." detail; class 2/4/5, subject and detail 1-3 digits (RFC 3463 §2).
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  size_t pos = 2;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos, ++digits;
    if (digits == 0 || digits > 3) return false;
    if (part == 0) {
      if (pos >= s.size() || s[pos] != '.') return false;
      ++pos;
    }
  }
  *class_digit = s[0];
  return pos == s.size();
}

bool status_fits(Action a, char cls) {
  switch (a) {
    case Action::kFailed: return cls == '5' || cls == '4';  // 4.x.x: expired after temporary failures
    case Action::kDelayed: return cls == '4';
    case Action::kDelivered:
    case Action::kRelayed: return cls == '2';
  }
  return false;
}

std::string address_field(std::string_view address) {
  // RFC 6533 uses the "utf-8" type for internationalised addresses.
  return fmt::format("{}; {}", has_eight_bit(address) ? "utf-8" : "rfc822", one_line(address));
}

bool is_epoch(WallTime t) { return t.time_since_epoch().count() == 0; }

const char* subject_for(ReportKind k) {
  switch (k) {
    case ReportKind::kFailure: return "Undelivered Mail Returned to Sender";
    case ReportKind::kDelay: return "Delayed Mail (still being retried)";
    case ReportKind::kSuccess: return "Successful Mail Delivery Report";
  }
  return "Delivery Status Notification";
}

std::string human_part(const Report& r, bool full_returned) {
  std::string text;
  auto para = [&text](std::string_view s) {
    append_wrapped(text, s, 0, "", kFoldAt);
    text += kCrlf;
  };
  para(fmt::format("This is the mail system at host {}.", one_line(r.reporting_mta)));
  std::string attached = full_returned ? "The original message is attached." : "The headers of the original message are attached.";
  switch (r.kind) {
    case ReportKind::kFailure:
      para("I'm sorry to have to inform you that your message could not be delivered to one or more "
           "recipients. " + attached);
      break;
    case ReportKind::kDelay:
      para("Your message could not be delivered yet to one or more recipients. The mail system will "
           "keep trying; you do not need to send it again. " + attached);
      break;
    case ReportKind::kSuccess:
      para("Your message was successfully delivered to the recipients listed below, as you asked. " + attached);
      break;
  }
  if (!r.queue_id.empty()) para(fmt::format("Queue id: {}", one_line(r.queue_id)));
  for (const RecipientReport& rc : r.recipients) {
    std::string line = fmt::format("<{}>: {}", one_line(rc.address), action_name(rc.action));
    if (!rc.remote_mta.empty() && !rc.diagnostic.empty())
      line += fmt::format(", host {} said: {}", one_line(rc.remote_mta), one_line(rc.diagnostic));
    else if (!rc.diagnostic.empty())
      line += fmt::format(": {}", one_line(rc.diagnostic));
    if (rc.action == Action::kDelayed && !is_epoch(rc.will_retry_until))
      line += fmt::format(" (will retry until {})", rfc5322_date(rc.will_retry_until));
    append_wrapped(text, line, 0, "    ", kFoldAt);
  }
  return text;
}

std::string status_part(const Report& r) {
  std::string s;
  append_field(s, "Reporting-MTA", "dns; " + r.reporting_mta);
  if (!r.envid.empty()) append_field(s, "Original-Envelope-Id", r.envid);
  if (!is_epoch(r.arrival)) append_field(s, "Arrival-Date", rfc5322_date(r.arrival));
  for (const RecipientReport& rc : r.recipients) {
    s += kCrlf;  // per-recipient groups follow the per-message group, separated by blank lines
    if (!rc.orcpt.type.empty())
      append_field(s, "Original-Recipient", fmt::format("{}; {}", rc.orcpt.type, rc.orcpt.address));
    append_field(s, "Final-Recipient", address_field(rc.address));
    append_field(s, "Action", action_name(rc.action));
    append_field(s, "Status", rc.status);
    if (!rc.remote_mta.empty()) append_field(s, "Remote-MTA", "dns; " + rc.remote_mta);
    if (!rc.diagnostic.empty()) append_field(s, "Diagnostic-Code", "smtp; " + rc.diagnostic);
    if (!is_epoch(rc.last_attempt)) append_field(s, "Last-Attempt-Date", rfc5322_date(rc.last_attempt));
    if (rc.action == Action::kDelayed && !is_epoch(rc.will_retry_until))
      append_field(s, "Will-Retry-Until", rfc5322_date(rc.will_retry_until));
  }
  return s;
}

}  // namespace

// ---- xtext and parameters -----------------------------------------------------------------

Result<std::string> xtext_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '+') {
      int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
      return make_error("malformed xtext \"{}\": '+' must be followed by two hex digits", one_line(text));
    }
    if (!is_xchar(c))
      return make_error("malformed xtext \"{}\": byte 0x{:02X} must be written as +{:02X}", one_line(text), c, c);
    out += static_cast<char>(c);
  }
  return out;
}

std::string xtext_encode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (is_xchar(c)) out += ch;
    else fmt::format_to(std::back_inserter(out), "+{:02X}", c);
  }
  return out;
}

Result<Ret> parse_ret(std::string_view value) {
  if (iequals(value, "FULL")) return Ret::kFull;
  if (iequals(value, "HDRS")) return Ret::kHeaders;
  return make_error("RET must be FULL or HDRS, not \"{}\"", one_line(value));
}

Result<std::string> parse_envid(std::string_view value) {
  if (value.empty()) return make_error("ENVID must not be empty");
  if (value.size() > kMaxEnvidLength)
    return make_error("ENVID is {} characters long; at most {} are allowed", value.size(), kMaxEnvidLength);
  Result<std::string> decoded = xtext_decode(value);
  if (!decoded) return make_error("ENVID: {}", decoded.error().message());
  for (char c : *decoded) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 32 && c != '\t') || u > 126)
      return make_error("ENVID must decode to printable US-ASCII; it holds byte 0x{:02X}", u);
  }
  return decoded;
}

Result<uint8_t> parse_notify(std::string_view value) {
  uint8_t bits = 0;
  std::string_view rest = value;
  if (rest.empty()) return make_error("NOTIFY must not be empty");
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    uint8_t bit = 0;
    if (iequals(item, "NEVER")) bit = kNotifyNever;
    else if (iequals(item, "SUCCESS")) bit = kNotifySuccess;
    else if (iequals(item, "FAILURE")) bit = kNotifyFailure;
    else if (iequals(item, "DELAY")) bit = kNotifyDelay;
    else
      return make_error("NOTIFY=\"{}\": \"{}\" is not NEVER, SUCCESS, FAILURE or DELAY", one_line(value),
                        one_line(item));
    if (bits & bit) return make_error("NOTIFY=\"{}\" names {} twice", one_line(value), one_line(item));
    bits |= bit;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if ((bits & kNotifyNever) && bits != kNotifyNever)
    return make_error("NOTIFY=\"{}\": NEVER cannot be combined with other values", one_line(value));
  return bits;
}

Result<OriginalRecipient> parse_orcpt(std::string_view value) {
  if (value.size() > kMaxOrcptLength)
    return make_error("ORCPT is {} characters long; at most {} are allowed", value.size(), kMaxOrcptLength);
  size_t semi = value.find(';');
  if (semi == std::string_view::npos || semi == 0)
    return make_error("ORCPT=\"{}\" must be addr-type;address (e.g. rfc822;user@example.com)", one_line(value));
  std::string_view type = value.substr(0, semi);
  for (char c : type) {
    bool atext = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
    if (!atext) return make_error("ORCPT address type \"{}\" is not an atom", one_line(type));
  }
  std::string_view encoded = value.substr(semi + 1);
  if (encoded.empty()) return make_error("ORCPT=\"{}\" has an empty address", one_line(value));
  Result<std::string> address = xtext_decode(encoded);
  if (!address) return make_error("ORCPT: {}", address.error().message());
  return OriginalRecipient{to_lower_ascii(type), std::move(*address)};
}

bool is_mail_keyword(std::string_view k) { return iequals(k, "RET") || iequals(k, "ENVID"); }
bool is_rcpt_keyword(std::string_view k) { return iequals(k, "NOTIFY") || iequals(k, "ORCPT"); }

Status MailParams::apply(std::string_view keyword, std::string_view value) {
  if (iequals(keyword, "RET")) {
    if (ret != Ret::kUnspecified) return make_error("RET given twice");
    Result<Ret> r = parse_ret(value);
    if (!r) return r.error();
    ret = *r;
    return {};
  }
  if (iequals(keyword, "ENVID")) {
    if (has_envid) return make_error("ENVID given twice");
    Result<std::string> e = parse_envid(value);
    if (!e) return e.error();
    envid = std::move(*e);
    has_envid = true;
    return {};
  }
  return make_error("{} is not a DSN parameter of MAIL", one_line(keyword));
}

Status RcptParams::apply(std::string_view keyword, std::string_view value) {
  if (iequals(keyword, "NOTIFY")) {
    if (notify != 0) return make_error("NOTIFY given twice");
    Result<uint8_t> n = parse_notify(value);
    if (!n) return n.error();
    notify = *n;
    return {};
  }
  if (iequals(keyword, "ORCPT")) {
    if (!orcpt.type.empty()) return make_error("ORCPT given twice");
    Result<OriginalRecipient> o = parse_orcpt(value);
    if (!o) return o.error();
    orcpt = std::move(*o);
    return {};
  }
  return make_error("{} is not a DSN parameter of RCPT", one_line(keyword));
}

std::string format_mail_params(const MailParams& p) {
  std::string out;
  if (p.ret == Ret::kFull) out += " RET=FULL";
  if (p.ret == Ret::kHeaders) out += " RET=HDRS";
  if (p.has_envid) out += " ENVID=" + xtext_encode(p.envid);
  return out;
}

std::string format_rcpt_params(const RcptParams& p) {
  std::string out;
  if (p.notify != 0) {
    out += " NOTIFY=";
    if (p.notify & kNotifyNever) {
      out += "NEVER";
    } else {
      std::string_view sep;
      for (auto [bit, name] : {std::pair{kNotifySuccess, "SUCCESS"}, {kNotifyFailure, "FAILURE"},
                               {kNotifyDelay, "DELAY"}}) {
        if (!(p.notify & bit)) continue;
        out += sep;
        out += name;
        sep = ",";
      }
    }
  }
  if (!p.orcpt.type.empty()) out += fmt::format(" ORCPT={};{}", p.orcpt.type, xtext_encode(p.orcpt.address));
  return out;
}

// ---- Decision -----------------------------------------------------------------------------

bool report_wanted(std::string_view envelope_sender, uint8_t notify, ReportKind kind) {
  if (envelope_sender.empty()) return false;  // null sender: bounces of bounces never happen
  if (notify & kNotifyNever) return false;
  if (notify == 0) return kind != ReportKind::kSuccess;  // RFC 3461 §4.1 default: FAILURE (+DELAY)
  switch (kind) {
    case ReportKind::kFailure: return notify & kNotifyFailure;
    case ReportKind::kDelay: return notify & kNotifyDelay;
    case ReportKind::kSuccess: return notify & kNotifySuccess;
  }
  return false;
}

// ---- Composition --------------------------------------------------------------------------

const char* action_name(Action a) {
  switch (a) {
    case Action::kFailed: return "failed";
    case Action::kDelayed: return "delayed";
    case Action::kDelivered: return "delivered";
    case Action::kRelayed: return "relayed";
  }
  return "failed";
}

std::string rfc5322_date(WallTime t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

Result<ComposedReport> compose(const Report& r, std::string_view original, const ComposeOptions& opt) {
  if (r.envelope_sender.empty())
    return make_error("no report for a message with the null sender (it may itself be a report)");
  if (r.recipients.empty()) return make_error("a report needs at least one recipient");
  if (r.reporting_mta.empty()) return make_error("a report needs the reporting MTA's name");
  for (const RecipientReport& rc : r.recipients) {
    char cls = 0;
    if (!valid_status(rc.status, &cls))
      return make_error("recipient <{}>: \"{}\" is not an enhanced status code", one_line(rc.address),
                        one_line(rc.status));
    if (!status_fits(rc.action, cls))
      return make_error("recipient <{}>: status {} does not fit action {}", one_line(rc.address), rc.status,
                        action_name(rc.action));
  }

  // RET applies to failures only (RFC 3461 §4.3): delay and success reports carry the headers.
  // A huge message is returned as headers too.
  bool full = r.kind == ReportKind::kFailure && r.ret == Ret::kFull && original.size() <= opt.max_full_bytes;
  std::string returned;
  append_normalised(returned, full ? original : header_section(original));
  std::string human = human_part(r, full);
  std::string status = status_part(r);

  std::string boundary;
  for (uint32_t attempt = 0;; ++attempt) {
    boundary = fmt::format("=_ringmail_{:016x}_{}", opt.unique, attempt);
    bool clash = returned.find(boundary) != std::string::npos || human.find(boundary) != std::string::npos ||
                 status.find(boundary) != std::string::npos;
    if (!clash) break;
  }

  bool human8 = has_eight_bit(human);
  bool status8 = has_eight_bit(status);
  bool returned8 = has_eight_bit(returned);
  ComposedReport out;
  out.rcpt_to = r.envelope_sender;
  out.smtputf8 = has_eight_bit(r.envelope_sender);
  for (const RecipientReport& rc : r.recipients) out.smtputf8 = out.smtputf8 || has_eight_bit(rc.address);
  out.eight_bit = human8 || status8 || returned8 || out.smtputf8;

  std::string& m = out.message;
  m.reserve(returned.size() + human.size() + status.size() + 1024);
  append_field(m, "From", fmt::format("Mail Delivery System <MAILER-DAEMON@{}>", r.reporting_mta));
  append_field(m, "To", fmt::format("<{}>", r.envelope_sender));
  append_field(m, "Subject", subject_for(r.kind));
  append_field(m, "Date", rfc5322_date(opt.now));
  append_field(m, "Message-ID", fmt::format("<dsn.{:016x}.{}@{}>", opt.unique,
                                            std::chrono::system_clock::to_time_t(opt.now), r.reporting_mta));
  append_field(m, "Auto-Submitted", "auto-replied");  // RFC 3834: no automatic answer to this
  append_field(m, "MIME-Version", "1.0");
  m += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{}\"\r\n",
                   boundary);
  if (out.eight_bit) m += "Content-Transfer-Encoding: 8bit\r\n";
  m += kCrlf;
  m += "This is a MIME-encapsulated message.\r\n\r\n";

  m += fmt::format("--{}\r\n", boundary);
  m += fmt::format("Content-Description: Notification\r\nContent-Type: text/plain; charset={}\r\n",
                   human8 ? "utf-8" : "us-ascii");
  if (human8) m += "Content-Transfer-Encoding: 8bit\r\n";
  m += kCrlf;
  m += human;

  m += fmt::format("\r\n--{}\r\n", boundary);
  m += "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n";
  if (status8) m += "Content-Transfer-Encoding: 8bit\r\n";
  m += kCrlf;
  m += status;

  m += fmt::format("\r\n--{}\r\n", boundary);
  if (full) m += "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n";
  else m += "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n";
  if (returned8) m += "Content-Transfer-Encoding: 8bit\r\n";
  m += kCrlf;
  m += returned;
  m += fmt::format("\r\n--{}--\r\n", boundary);
  return out;
}

}  // namespace ringmail::queue::dsn
