// Parsing of SMTP server-side command lines (RFC 5321 §4.1, RFC 1869/6531 parameters): the verb, the
// EHLO/HELO name, the path of MAIL FROM / RCPT TO with its syntax and length checks, and the
// keyword[=value] parameters. Pure functions over string_views; no allocation, no replies (the session
// decides what to answer), no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringmail::smtp {

enum class Verb : uint8_t {
  kEhlo, kHelo, kMail, kRcpt, kData, kRset, kNoop, kQuit, kVrfy, kExpn, kHelp,
  kStarttls,  // RFC 3207
  kAuth,      // RFC 4954
  kUnknown,
};

struct CommandLine {
  Verb verb = Verb::kUnknown;  // recognised verb (case-insensitive), kUnknown otherwise
  std::string_view argument;   // text after the verb and its separating space(s), trailing blanks removed
};

// Splits a command line (without its line end) into verb and argument.
CommandLine split_command(std::string_view line);

// Outcome of checking one path (the <...> of MAIL FROM or RCPT TO).
enum class PathError : uint8_t {
  kNone,
  kMissingKeyword,   // no "FROM:" / "TO:" after the verb
  kMissingBrackets,  // address not enclosed in <>
  kBadAddress,       // address syntax (local-part, domain, literal, source route)
  kLocalTooLong,     // local-part over 64 octets (RFC 5321 §4.5.3.1.1)
  kDomainTooLong,    // domain over 255 octets (§4.5.3.1.2)
  kPathTooLong,      // path with <> over 256 octets (§4.5.3.1.3)
  kBadParameters,    // text after '>' that is not " keyword[=value]..."
};

struct ParsedPath {
  std::string_view address;   // the mailbox without <> and without a source route; empty = null path <>
  std::string_view params;    // the parameters after '>', leading blanks removed (may be empty)
  bool non_ascii = false;     // the address holds octets >= 0x80 (needs SMTPUTF8)
  bool postmaster = false;    // the address is the bare "postmaster" (no domain), any case
};

// Parses the argument of MAIL ("FROM:<a@b> SIZE=1") or RCPT ("TO:<a@b>"); keyword is "FROM:" or "TO:".
// Lenient where Postfix is: blanks after the colon are accepted, and an RFC 5321 source route
// (<@relay,@relay:user@domain>) is accepted and dropped. Angle brackets are required.
// The null path "<>" parses to an empty address; the caller decides if it is allowed.
PathError parse_path(std::string_view argument, std::string_view keyword, ParsedPath& out);

// Checks a mailbox "local@domain" (quoted local parts and address literals allowed); also used by
// parse_path. Returns kNone, kBadAddress, kLocalTooLong or kDomainTooLong. Sets non_ascii.
PathError check_mailbox(std::string_view mailbox, bool& non_ascii);

// Iterates over " KEYWORD[=value]" parameters (RFC 5321 §4.1.2 esmtp-param). Usage:
//   ParamReader r(path.params); ParamReader::Param p; while (r.next(p)) {...}; if (r.failed()) ...
class ParamReader {
 public:
  struct Param {
    std::string_view keyword;  // alphanumerics and '-', starting with an alphanumeric
    std::string_view value;    // after '=' (printable, no '=' or SP; UTF-8 allowed); empty if none
    bool has_value = false;    // "KEY=" or "KEY=v" rather than "KEY"
  };
  explicit ParamReader(std::string_view params) : rest_(params) {}
  bool next(Param& p);                   // false at the end or on a syntax error
  bool failed() const { return failed_; }  // the parameter text was malformed

 private:
  std::string_view rest_;  // unread parameter text
  bool failed_ = false;    // a malformed parameter was met
};

// Checks an EHLO/HELO argument: one token of printable ASCII or UTF-8 octets, at most 255 octets.
bool valid_helo_name(std::string_view name);

// Parses a decimal SIZE= value; values over uint64 clamp to UINT64_MAX. False if not all digits.
bool parse_size_value(std::string_view text, uint64_t& value);

}  // namespace ringmail::smtp
