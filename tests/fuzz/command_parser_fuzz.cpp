// Fuzz target: the server's command-line parsing (engine/smtp/command_parser.h) on arbitrary lines.
// Whatever the line, an accepted path is a piece of the line within RFC 5321's length limits and
// holds no control octets (no CR, LF or NUL can reach an envelope address, a log line or a DSN),
// parameters are well-formed keywords, an accepted EHLO name is one printable token, and SIZE=
// values agree with a reference conversion.
//
// Input: the argument of a command line (everything after "MAIL FROM:" etc. is taken from it too).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "engine/smtp/command_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace smtp = ringmail::smtp;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

void check_path(std::string_view argument, std::string_view keyword) {
  smtp::ParsedPath p;
  smtp::PathError e = smtp::parse_path(argument, keyword, p);
  if (e != smtp::PathError::kNone) return;
  FUZZ_CHECK(inside(p.address, argument));
  FUZZ_CHECK(inside(p.params, argument));
  FUZZ_CHECK(p.address.size() <= 254);  // 256 with the brackets
  FUZZ_CHECK(!has_control(p.address));
  bool non_ascii = false;
  for (unsigned char c : p.address) non_ascii |= c >= 0x80;
  FUZZ_CHECK(p.non_ascii == non_ascii);
  if (!p.address.empty() && !p.postmaster) {
    // The '@' before the domain; a general address literal ("[tag:content]") may hold '@' itself.
    size_t at = p.address.back() == ']' ? p.address.rfind('@', p.address.rfind('[')) : p.address.rfind('@');
    FUZZ_CHECK(at != std::string_view::npos);
    FUZZ_CHECK(at <= 64 + 2);  // local part, quotes included only if quoted
    FUZZ_CHECK(p.address.size() - at - 1 <= 255);
    bool again = false;
    FUZZ_CHECK(smtp::check_mailbox(p.address, again) == smtp::PathError::kNone);
  }
  smtp::ParamReader r(p.params);
  smtp::ParamReader::Param param;
  while (r.next(param)) {
    FUZZ_CHECK(!param.keyword.empty());
    FUZZ_CHECK(inside(param.keyword, p.params) && inside(param.value, p.params));
    for (char c : param.keyword)
      FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-');
    FUZZ_CHECK(param.keyword.front() != '-');
    FUZZ_CHECK(!has_control(param.value));
    FUZZ_CHECK(param.value.find(' ') == std::string_view::npos && param.value.find('=') == std::string_view::npos);
    FUZZ_CHECK(param.has_value || param.value.empty());
  }
}

void check_size(std::string_view text) {
  uint64_t v = 0;
  bool ok = smtp::parse_size_value(text, v);
  bool digits = !text.empty();
  unsigned __int128 ref = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    ref = ref * 10 + static_cast<unsigned>(c - '0');
    if (ref > std::numeric_limits<uint64_t>::max()) ref = static_cast<unsigned __int128>(std::numeric_limits<uint64_t>::max()) + 1;
  }
  FUZZ_CHECK(ok == digits);
  if (ok) FUZZ_CHECK(v == (ref > std::numeric_limits<uint64_t>::max() ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(ref)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  smtp::CommandLine cl = smtp::split_command(line);
  FUZZ_CHECK(inside(cl.argument, line));
  check_path(line, "FROM:");
  check_path(line, "TO:");
  check_path(cl.argument, "FROM:");
  check_path(cl.argument, "TO:");
  if (smtp::valid_helo_name(line)) {
    FUZZ_CHECK(!line.empty() && line.size() <= 255);
    FUZZ_CHECK(!has_control(line) && line.find(' ') == std::string_view::npos);
  }
  check_size(line);
  return 0;
}
