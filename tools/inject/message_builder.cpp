// Test message generation and dot-stuffing for ringmail-inject (see message_builder.h).
#include "tools/inject/message_builder.h"

#include <fmt/format.h>

#include <cstring>

namespace ringmail::inject {
namespace {

constexpr size_t kLineBytes = 78;  // 76 printable characters + CRLF
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+=/:;,!?()";

// Replaces {n}, {m}, {r} in `format`; unknown braces are copied as they are.
void expand_format(std::string_view format, uint64_t n, uint64_t m, int r, std::string* out) {
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '{' && i + 2 < format.size() && format[i + 2] == '}') {
      char key = format[i + 1];
      if (key == 'n' || key == 'm' || key == 'r') {
        fmt::format_to(std::back_inserter(*out), "{}", key == 'n' ? n : key == 'm' ? m : uint64_t(r));
        i += 2;
        continue;
      }
    }
    out->push_back(format[i]);
  }
}

}  // namespace

MessageBuilder::MessageBuilder(MessageSpec spec, uint64_t seed, long pid)
    : spec_(std::move(spec)), rng_(seed ? seed : 0x9e3779b97f4a7c15ULL), pid_(pid) {
  size_t lines = spec_.size / kLineBytes + 2;
  filler_.reserve(lines * kLineBytes);
  for (size_t l = 0; l < lines; ++l) {
    for (size_t c = 0; c < kLineBytes - 2; ++c) filler_.push_back(kAlphabet[(l * 7 + c) % kAlphabet.size()]);
    filler_.append("\r\n");
  }
}

uint64_t MessageBuilder::next_random() {
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1DULL;
}

void MessageBuilder::append_recipient(uint64_t number, int index, std::string* out) const {
  uint64_t counter = number * uint64_t(spec_.rcpts) + uint64_t(index);
  size_t start = out->size();
  expand_format(spec_.to_format, counter, number, index, out);
  if (spec_.domains > 0) {
    size_t at = out->find('@', start);
    if (at != std::string::npos) out->resize(at + 1);
    else out->push_back('@');
    fmt::format_to(std::back_inserter(*out), "d{}.example.com", counter % uint64_t(spec_.domains));
  }
}

void MessageBuilder::build(uint64_t number, std::string_view date, std::string* out,
                           std::string* message_id) {
  message_id->clear();
  fmt::format_to(std::back_inserter(*message_id), "<ringmail-inject.{}.{}.{:016x}@inject.local>", pid_,
                 number, next_random());
  out->clear();
  auto o = std::back_inserter(*out);
  fmt::format_to(o, "From: <{}>\r\nTo: <", spec_.from);
  append_recipient(number, 0, out);
  fmt::format_to(o, ">\r\nSubject: ringmail-inject test message {}\r\nDate: {}\r\nMessage-ID: {}\r\n",
                 number, date, *message_id);
  if (spec_.eightbit)
    out->append("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n");
  fmt::format_to(o, "\r\nringmail-inject test message {}.\r\n", number);
  // Lines that start with a dot: the sender must dot-stuff them, and a lone "." would end the
  // DATA early at the receiver if it did not.
  out->append(".This line starts with a dot to exercise dot-stuffing.\r\n.\r\n");
  if (spec_.eightbit) out->append("Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln: 8BITMIME-Zeile \xe2\x80\x94 \xe2\x9c\x93\r\n");
  if (out->size() >= spec_.size) return;
  size_t need = spec_.size - out->size();
  size_t whole = std::min(need / kLineBytes, filler_.size() / kLineBytes);
  out->append(filler_.data(), whole * kLineBytes);
  size_t rest = need - whole * kLineBytes;
  if (rest >= 3 && rest < kLineBytes) {
    out->append(filler_.data(), rest - 2);
    out->append("\r\n");
  }
}

void append_dot_stuffed(std::string_view raw, std::string* out) {
  out->reserve(out->size() + raw.size() + 64);
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw[pos] == '.') out->push_back('.');
    const void* nl = std::memchr(raw.data() + pos, '\n', raw.size() - pos);
    size_t eol = nl ? size_t(static_cast<const char*>(nl) - raw.data()) : raw.size();
    size_t content_end = (eol > pos && raw[eol - 1] == '\r') ? eol - 1 : eol;
    out->append(raw.data() + pos, content_end - pos);
    out->append("\r\n");
    pos = nl ? eol + 1 : raw.size();
  }
  out->append(".\r\n");
}

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return std::string(buf, n);
}

}  // namespace ringmail::inject
