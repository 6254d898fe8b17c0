// Server-side SMTP command line parsing: verbs, MAIL/RCPT paths with their syntax and length checks,
// ESMTP parameters. Replies and transaction rules are in server_session.cpp. See command_parser.h.
#include "engine/smtp/command_parser.h"

#include <arpa/inet.h>

#include <array>
#include <limits>
#include <string>

#include "common/strings.h"

namespace ringmail::smtp {
namespace {

constexpr size_t kMaxLocalPart = 64;   // RFC 5321 §4.5.3.1.1
constexpr size_t kMaxDomain = 255;     // RFC 5321 §4.5.3.1.2
constexpr size_t kMaxPath = 256;       // RFC 5321 §4.5.3.1.3, including the angle brackets
constexpr size_t kMaxHelo = 255;       // a domain or an address literal

struct VerbName {
  std::string_view text;  // upper-case verb as sent
  Verb verb;              // its enum value
};
constexpr std::array kVerbs{
    VerbName{"EHLO", Verb::kEhlo}, VerbName{"HELO", Verb::kHelo}, VerbName{"MAIL", Verb::kMail},
    VerbName{"RCPT", Verb::kRcpt}, VerbName{"DATA", Verb::kData}, VerbName{"RSET", Verb::kRset},
    VerbName{"NOOP", Verb::kNoop}, VerbName{"QUIT", Verb::kQuit}, VerbName{"VRFY", Verb::kVrfy},
    VerbName{"EXPN", Verb::kExpn}, VerbName{"HELP", Verb::kHelp}, VerbName{"STARTTLS", Verb::kStarttls},
    VerbName{"AUTH", Verb::kAuth},
};
static_assert(kVerbs.size() == static_cast<size_t>(Verb::kUnknown), "one name per verb");

constexpr bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
constexpr bool is_utf8(unsigned char c) { return c >= 0x80; }
constexpr bool is_blank(char c) { return c == ' ' || c == '\t'; }

// RFC 5322 atext, plus UTF-8 octets (RFC 6531); whether they are allowed is checked by the caller.
constexpr bool is_atext(unsigned char c) {
  if (is_alnum(c) || is_utf8(c)) return true;
  constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return specials.find(static_cast<char>(c)) != std::string_view::npos;
}

std::string_view skip_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  return s;
}

bool any_non_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (is_utf8(c)) return true;
  return false;
}

// Dot-string: atoms separated by single dots.
bool valid_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(c))) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Quoted-string: '"' *(qtextSMTP / "\" %d32-126) '"' (RFC 5321 §4.1.2), UTF-8 allowed.
bool valid_quoted_string(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (i + 2 >= s.size()) return false;  // the escape would swallow the closing quote
      auto e = static_cast<unsigned char>(s[++i]);
      if (e < 32 || e == 127) return false;
    } else if (c == '"' || c < 32 || c == 127) {
      return false;
    }
  }
  return true;
}

// Domain: dot-separated labels of letters, digits, '-' and '_' (lenient, as Postfix) or UTF-8.
bool valid_domain_name(std::string_view s) {
  if (s.empty()) return false;
  size_t label = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_alnum(c) || c == '-' || c == '_' || is_utf8(c)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

// Address literal: [a.b.c.d], [IPv6:...] or a general literal [tag:content] (RFC 5321 §4.1.3).
bool valid_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view inner = s.substr(1, s.size() - 2);
  char buf[64];
  unsigned char bin[16];
  if (inner.size() >= sizeof buf) return false;
  // inet_pton reads a C string: an embedded NUL would end it early and let the rest through.
  if (inner.find('\0') != std::string_view::npos) return false;
  if (istarts_with(inner, "IPv6:")) {
    inner.remove_prefix(5);
    inner.copy(buf, inner.size());
    buf[inner.size()] = '\0';
    return inet_pton(AF_INET6, buf, bin) == 1;
  }
  if (auto colon = inner.find(':'); colon != std::string_view::npos) {
    std::string_view tag = inner.substr(0, colon), content = inner.substr(colon + 1);
    if (tag.empty() || content.empty() || !is_alnum(static_cast<unsigned char>(tag.front()))) return false;
    for (unsigned char c : tag)
      if (!is_alnum(c) && c != '-') return false;
    for (unsigned char c : content)
      if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']') return false;
    return true;
  }
  inner.copy(buf, inner.size());
  buf[inner.size()] = '\0';
  return inet_pton(AF_INET, buf, bin) == 1;
}

// Finds the '>' closing a path that starts with '<', skipping quoted strings. npos if none.
size_t find_path_end(std::string_view s) {
  bool quoted = false;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Drops an RFC 5321 source route "@a,@b:" in front of the mailbox. False if it is malformed.
bool strip_source_route(std::string_view& address) {
  if (address.empty() || address.front() != '@') return true;
  size_t colon = address.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view route = address.substr(0, colon);
  while (!route.empty()) {
    if (route.front() != '@') return false;
    route.remove_prefix(1);
    size_t comma = route.find(',');
    std::string_view domain = route.substr(0, comma);
    if (!valid_domain_name(domain) && !valid_address_literal(domain)) return false;
    route = comma == std::string_view::npos ? std::string_view{} : route.substr(comma + 1);
    if (comma != std::string_view::npos && route.empty()) return false;
  }
  address.remove_prefix(colon + 1);
  return true;
}

}  // namespace

CommandLine split_command(std::string_view line) {
  CommandLine cmd;
  size_t end = 0;
  while (end < line.size() && !is_blank(line[end])) ++end;
  std::string_view verb = line.substr(0, end);
  for (const auto& v : kVerbs) {
    if (iequals(verb, v.text)) {
      cmd.verb = v.verb;
      break;
    }
  }
  std::string_view arg = skip_blanks(line.substr(end));
  while (!arg.empty() && is_blank(arg.back())) arg.remove_suffix(1);
  cmd.argument = arg;
  return cmd;
}

PathError check_mailbox(std::string_view mailbox, bool& non_ascii) {
  non_ascii = any_non_ascii(mailbox);
  size_t at;
  if (!mailbox.empty() && mailbox.front() == '"') {
    // The '@' right after the closing quote (a quoted local part may itself contain '@').
    size_t i = 1;
    while (i < mailbox.size() && mailbox[i] != '"') i += mailbox[i] == '\\' ? 2 : 1;
    at = i + 1;
    if (at >= mailbox.size() || mailbox[at] != '@') return PathError::kBadAddress;
  } else {
    at = mailbox.find('@');
    if (at == std::string_view::npos) return PathError::kBadAddress;
  }
  std::string_view local = mailbox.substr(0, at), domain = mailbox.substr(at + 1);
  if (local.empty() || domain.empty()) return PathError::kBadAddress;
  bool local_ok = local.front() == '"' ? valid_quoted_string(local) : valid_dot_string(local);
  bool domain_ok = domain.front() == '[' ? valid_address_literal(domain) : valid_domain_name(domain);
  if (!local_ok || !domain_ok) return PathError::kBadAddress;
  if (local.size() > kMaxLocalPart) return PathError::kLocalTooLong;
  if (domain.size() > kMaxDomain) return PathError::kDomainTooLong;
  return PathError::kNone;
}

PathError parse_path(std::string_view argument, std::string_view keyword, ParsedPath& out) {
  out = ParsedPath{};
  if (!istarts_with(argument, keyword)) return PathError::kMissingKeyword;
  std::string_view rest = skip_blanks(argument.substr(keyword.size()));
  if (rest.empty() || rest.front() != '<') return PathError::kMissingBrackets;
  size_t close = find_path_end(rest);
  if (close == std::string_view::npos) return PathError::kMissingBrackets;
  std::string_view path = rest.substr(0, close + 1);
  std::string_view after = rest.substr(close + 1);
  if (!after.empty() && !is_blank(after.front())) return PathError::kBadParameters;
  out.params = skip_blanks(after);

  std::string_view address = path.substr(1, path.size() - 2);
  if (!strip_source_route(address)) return PathError::kBadAddress;
  if (address.empty()) {
    if (path.size() != 2) return PathError::kBadAddress;  // "<@a:>"
    out.address = address;
    return PathError::kNone;
  }
  if (iequals(address, "postmaster")) {
    out.address = address;
    out.postmaster = true;
    return PathError::kNone;
  }
  PathError e = check_mailbox(address, out.non_ascii);
  if (e != PathError::kNone) return e;
  if (path.size() > kMaxPath) return PathError::kPathTooLong;
  out.address = address;
  return PathError::kNone;
}

bool ParamReader::next(Param& p) {
  rest_ = skip_blanks(rest_);
  if (rest_.empty() || failed_) return false;
  size_t end = 0;
  while (end < rest_.size() && !is_blank(rest_[end])) ++end;
  std::string_view word = rest_.substr(0, end);
  rest_.remove_prefix(end);
  size_t eq = word.find('=');
  p.keyword = word.substr(0, eq);
  p.has_value = eq != std::string_view::npos;
  p.value = p.has_value ? word.substr(eq + 1) : std::string_view{};
  bool ok = !p.keyword.empty() && is_alnum(static_cast<unsigned char>(p.keyword.front()));
  for (unsigned char c : p.keyword) ok = ok && (is_alnum(c) || c == '-');
  for (unsigned char c : p.value) ok = ok && c != '=' && (c > 32 && c != 127);
  if (p.has_value && p.value.empty()) ok = false;
  if (!ok) failed_ = true;
  return ok;
}

bool valid_helo_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHelo) return false;
  for (unsigned char c : name)
    if (c <= 32 || c == 127) return false;
  return true;
}

bool parse_size_value(std::string_view text, uint64_t& value) {
  if (text.empty()) return false;
  value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (char ch : text) {
    if (!is_digit(static_cast<unsigned char>(ch))) return false;
    auto d = static_cast<uint64_t>(ch - '0');
    value = value > (kMax - d) / 10 ? kMax : value * 10 + d;
  }
  return true;
}

}  // namespace ringmail::smtp
