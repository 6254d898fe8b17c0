// JSON quoting and atomic file replacement (see text_io.h).
#include "common/text_io.h"

#include "common/strings.h"

#include <fmt/format.h>

#include <cstdio>

namespace ringmail {

namespace {

// Length of the valid UTF-8 sequence at the front of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when the first octet does not start one.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second octet
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if ((b(i) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

void append_json_quoted(std::string& out, std::string_view s) {
  out += '"';
  while (!s.empty()) {
    const unsigned char c = static_cast<unsigned char>(s[0]);
    size_t used = 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else if (c < 0x80) {
          out += static_cast<char>(c);
        } else if (size_t n = utf8_sequence(s); n > 0) {
          out.append(s.substr(0, n));
          used = n;
        } else {
          out += "\\ufffd";
        }
    }
    s.remove_prefix(used);
  }
  out += '"';
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_quoted(out, s);
  return out;
}

std::string message_id_of(std::string_view message) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find('\n', pos);
    if (eol == std::string_view::npos) eol = message.size();
    std::string_view line = message.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return {};  // end of the header section
    if (istarts_with(line, "Message-ID:")) {
      std::string value(trim(line.substr(11)));
      // Folded continuation lines start with white space (RFC 5322 §2.2.3).
      size_t next = eol + 1;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        size_t e = message.find('\n', next);
        if (e == std::string_view::npos) e = message.size();
        std::string_view more = trim(message.substr(next, e - next));
        if (!value.empty() && !more.empty()) value += ' ';
        value += more;
        next = e + 1;
      }
      return value;
    }
    pos = eol + 1;
  }
  return {};
}

bool write_file_atomically(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = std::fclose(f) == 0 && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace ringmail
