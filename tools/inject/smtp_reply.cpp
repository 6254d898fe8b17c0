// SMTP reply reading for ringmail-inject (see smtp_reply.h). Handles replies split across reads,
// several replies in one read (pipelining) and multi-line replies.
#include "tools/inject/smtp_reply.h"

#include "common/strings.h"

namespace ringmail::inject {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

ReadStatus ReplyReader::next(Reply* out) {
  for (;;) {
    size_t eol = buf_.find('\n', pos_);
    if (eol == std::string::npos) {
      if (buf_.size() - pos_ > kMaxLine) return ReadStatus::kMalformed;
      // Compact so the buffer does not grow over a long connection.
      if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      return ReadStatus::kNeedMore;
    }
    std::string_view line(buf_.data() + pos_, eol - pos_);
    pos_ = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine || line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) ||
        !is_digit(line[2]))
      return ReadStatus::kMalformed;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 100) return ReadStatus::kMalformed;
    char sep = line.size() > 3 ? line[3] : ' ';
    if (sep != ' ' && sep != '-') return ReadStatus::kMalformed;
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (lines_ == 0) {
      pending_.code = code;
      pending_.all_text.clear();
    } else if (code != pending_.code) {
      return ReadStatus::kMalformed;  // continuation lines must repeat the code
    } else {
      pending_.all_text.push_back('\n');
    }
    pending_.all_text.append(text);
    if (++lines_ > kMaxLines) return ReadStatus::kMalformed;
    if (sep == '-') continue;
    pending_.last_line.assign(text);
    *out = std::move(pending_);
    pending_ = Reply{};
    lines_ = 0;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    return ReadStatus::kReply;
  }
}

Capabilities parse_ehlo_capabilities(const Reply& ehlo_reply) {
  Capabilities caps;
  std::string_view all = ehlo_reply.all_text;
  bool first = true;  // the first line is the server's greeting name, not a keyword
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all = nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
    if (first) {
      first = false;
      continue;
    }
    line = trim(line);
    std::string_view keyword = line.substr(0, line.find(' '));
    if (iequals(keyword, "PIPELINING")) caps.pipelining = true;
    if (iequals(keyword, "8BITMIME")) caps.eightbitmime = true;
    if (iequals(keyword, "SIZE")) caps.size = true;
    if (iequals(keyword, "STARTTLS")) caps.starttls = true;
  }
  return caps;
}

std::string_view queued_as_id(std::string_view reply_text) {
  static constexpr std::string_view kPhrase = "queued as";
  if (reply_text.size() < kPhrase.size()) return {};
  size_t at = std::string_view::npos;
  for (size_t i = 0; i + kPhrase.size() <= reply_text.size(); ++i) {
    if (istarts_with(reply_text.substr(i), kPhrase)) {
      at = i;
      break;
    }
  }
  if (at == std::string_view::npos) return {};
  std::string_view rest = trim(reply_text.substr(at + kPhrase.size()));
  size_t space = rest.find_last_of(" \t");
  return space == std::string_view::npos ? rest : rest.substr(space + 1);
}

}  // namespace ringmail::inject
