// The SMTP reply parser: line framing, `ddd[ -]` syntax, multi-line assembly and the enhanced
// status code split. See reply_parser.h.
#include "engine/smtp/reply_parser.h"

#include <algorithm>
#include <array>

namespace ringmail::smtp {
namespace {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One to three digits at the front of `s`; returns how many, 0 if none or more than three.
size_t digit_run(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  return n <= 3 ? n : 0;
}

}  // namespace

std::string_view reply_error_name(ReplyError e) {
  static constexpr std::array<std::string_view, 5> kNames{
      "none", "malformed reply line", "reply line too long", "too many reply lines", "reply codes differ between lines"};
  return kNames[static_cast<size_t>(e)];
}

std::string_view take_enhanced_code(std::string_view& text, int klass) {
  // class "." subject "." detail, subject and detail 1-3 digits (RFC 3463 §2).
  if (text.size() < 5 || text[0] != static_cast<char>('0' + klass) || text[1] != '.') return {};
  if (klass != 2 && klass != 4 && klass != 5) return {};
  size_t pos = 2;
  size_t n = digit_run(text.substr(pos));
  if (n == 0 || pos + n >= text.size() || text[pos + n] != '.') return {};
  pos += n + 1;
  n = digit_run(text.substr(pos));
  if (n == 0) return {};
  pos += n;
  if (pos < text.size() && text[pos] != ' ') return {};
  std::string_view code = text.substr(0, pos);
  text.remove_prefix(pos < text.size() ? pos + 1 : pos);
  return code;
}

void ReplyParser::reset() {
  line_.clear();
  reply_.clear();
  lines_ = 0;
  error_ = ReplyError::kNone;
}

ReplyParser::Status ReplyParser::fail(ReplyError e) {
  error_ = e;
  line_.clear();
  return Status::kError;
}

ReplyParser::Status ReplyParser::parse(std::string_view& input) {
  if (error_ != ReplyError::kNone) return Status::kError;
  while (!input.empty()) {
    size_t lf = input.find('\n');
    if (lf == std::string_view::npos) {
      if (line_.size() + input.size() > kMaxLine) return fail(ReplyError::kLineTooLong);
      line_.append(input);
      input = {};
      return Status::kNeedMore;
    }
    if (line_.size() + lf + 1 > kMaxLine) return fail(ReplyError::kLineTooLong);
    std::string_view line;
    if (line_.empty()) {
      line = input.substr(0, lf);  // common case: the whole line is in this chunk, no copy
    } else {
      line_.append(input.substr(0, lf));
      line = line_;
    }
    input.remove_prefix(lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Status s = take_line(line);
    line_.clear();
    if (s != Status::kNeedMore) return s;
  }
  return Status::kNeedMore;
}

ReplyParser::Status ReplyParser::take_line(std::string_view line) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) || line[0] < '2' ||
      line[0] > '5')
    return fail(ReplyError::kBadLine);
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return fail(ReplyError::kBadLine);
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  bool last = line.size() == 3 || line[3] == ' ';
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};

  if (lines_ == 0) {
    reply_.clear();
    reply_.code = code;
  } else if (code != reply_.code) {
    return fail(ReplyError::kCodeMismatch);
  }
  if (++lines_ > kMaxLines) return fail(ReplyError::kTooManyLines);

  // RFC 2034 §4: every line of the reply starts with the enhanced code; strip it wherever it is.
  std::string_view rest = text;
  std::string_view enhanced = take_enhanced_code(rest, code / 100);
  if (!enhanced.empty()) {
    if (lines_ == 1) reply_.enhanced.assign(enhanced);
    text = rest;
  }
  if (lines_ > 1) reply_.text += '\n';
  reply_.text.append(text);

  if (!last) return Status::kNeedMore;
  lines_ = 0;
  return Status::kReply;
}

}  // namespace ringmail::smtp
