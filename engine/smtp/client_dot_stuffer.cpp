// Dot-stuffing for the outbound DATA phase. See client_dot_stuffer.h.
#include "engine/smtp/client_dot_stuffer.h"

#include <algorithm>

namespace ringmail::smtp {

void DotStuffer::start(std::string_view body) {
  body_ = body;
  pos_ = 0;
  at_line_start_ = true;
  finished_ = false;
}

bool DotStuffer::produce(std::string& out, size_t max_bytes) {
  if (finished_) return true;
  size_t budget = std::max<size_t>(max_bytes, 1);
  while (pos_ < body_.size() && budget > 0) {
    if (at_line_start_ && body_[pos_] == '.') {
      // The extra dot counts against the budget; the body's own dot then goes out as plain text.
      out += '.';
      at_line_start_ = false;
      if (--budget == 0) break;
    }
    // Copy up to the end of this line (or the budget) in one piece.
    size_t lf = body_.find('\n', pos_);
    size_t line_end = lf == std::string_view::npos ? body_.size() : lf + 1;
    size_t n = std::min(line_end - pos_, budget);
    out.append(body_.substr(pos_, n));
    pos_ += n;
    budget -= n;
    at_line_start_ = body_[pos_ - 1] == '\n';
  }
  if (pos_ < body_.size()) return false;
  // A body that does not end with a line end gets one, so the dot stands on its own line.
  out.append(at_line_start_ ? ".\r\n" : "\r\n.\r\n");
  finished_ = true;
  return true;
}

}  // namespace ringmail::smtp
