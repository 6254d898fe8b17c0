// DotDecoder implementation (see dot_decoder.h). The common case, the middle of a line, is a
// memchr for the next CR; only line starts and CRs go through the byte-wise state machine.
#include "tools/sink/dot_decoder.h"

#include <cstring>

namespace ringmail::sink {

size_t DotDecoder::feed(std::string_view in, std::string* body, bool* done) {
  *done = false;
  auto emit = [&](const char* p, size_t n) {
    size_ += n;
    if (body) body->append(p, n);
  };
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    char c = in[i];
    switch (state_) {
      case State::kMid: {
        const void* cr = std::memchr(in.data() + i, '\r', n - i);
        size_t end = cr ? static_cast<size_t>(static_cast<const char*>(cr) - in.data()) + 1 : n;
        emit(in.data() + i, end - i);
        i = end;
        if (cr) state_ = State::kCr;
        continue;
      }
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;  // stuffing or the terminator: not emitted
          ++i;
          continue;
        }
        break;  // an ordinary line: handled like kMid below
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
          continue;
        }
        break;  // the leading dot is dropped (RFC 5321 §4.5.2); c starts the line's content
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kLineStart;
          *done = true;
          return i + 1;
        }
        // ".\r" followed by something else: the dot was stuffing, the CR is content.
        emit("\r", 1);
        state_ = State::kCr;
        continue;  // c is examined again in kCr
      case State::kCr:
        emit(&in[i], 1);
        ++i;
        state_ = c == '\n' ? State::kLineStart : c == '\r' ? State::kCr : State::kMid;
        continue;
    }
    // First content byte of a line (kLineStart without a dot, or after a stuffing dot).
    emit(&in[i], 1);
    ++i;
    state_ = c == '\r' ? State::kCr : State::kMid;
  }
  return n;
}

}  // namespace ringmail::sink
