// The DATA phase decoder: end-of-data detection, dot-unstuffing, smuggling and limit checks.
// See data_decoder.h.
#include "engine/smtp/data_decoder.h"

namespace ringmail::smtp {
namespace {

constexpr bool is_special(char c) { return c == '\r' || c == '\n' || c == '\0'; }

}  // namespace

void DataDecoder::reset(uint64_t max_message_size, size_t max_text_line) {
  *this = DataDecoder{};
  max_size_ = max_message_size;
  max_line_ = max_text_line;
}

DataVerdict DataDecoder::verdict() const {
  if (bare_line_end_) return DataVerdict::kBareLineEnd;
  if (nul_) return DataVerdict::kNul;
  if (long_line_) return DataVerdict::kLongLine;
  if (too_big_) return DataVerdict::kTooBig;
  return DataVerdict::kAccept;
}

void DataDecoder::emit(const char* bytes, size_t n, std::string& message) {
  size_ += n;
  if (size_ > max_size_) too_big_ = true;
  if (line_length_ > max_line_) long_line_ = true;
  // Once the message is known to be refused nothing more is stored: memory stays bounded by the
  // size limit and a refused message costs no copying.
  if (!bare_line_end_ && !nul_ && !long_line_ && !too_big_) message.append(bytes, n);
}

void DataDecoder::note_line_end() {
  if (line_length_ > max_line_) long_line_ = true;
  line_length_ = 0;
}

// Only <CR><LF>.<CR><LF> ends the data: kLineStart is entered after a CRLF and nowhere else, so a
// bare LF or CR before a dot (<LF>.<LF>, <LF>.<CR><LF>, <CR>.<CR>, ...) never reaches kDone.
size_t DataDecoder::feed(std::string_view input, std::string& message) {
  const char* p = input.data();
  const char* const end = p + input.size();
  while (p < end && state_ != State::kDone) {
    const char c = *p;
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
          ++line_length_;
          ++p;
        } else {
          state_ = State::kInLine;  // c is read again as line content
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
          ++line_length_;
          ++p;
        } else {
          state_ = State::kInLine;  // the leading dot was stuffing and is dropped (§4.5.2)
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kDone;
          ++p;
        } else {
          bare_line_end_ = true;  // ".<CR>x": the CR is bare
          emit("\r", 1, message);
          state_ = State::kInLine;
        }
        break;
      case State::kCr:
        if (c == '\n') {
          ++line_length_;
          emit("\r\n", 2, message);
          note_line_end();
          state_ = State::kLineStart;
          ++p;
        } else {
          bare_line_end_ = true;
          emit("\r", 1, message);
          state_ = State::kInLine;
        }
        break;
      case State::kInLine: {
        const char* q = p;
        while (q < end && !is_special(*q)) ++q;
        if (q != p) {
          line_length_ += static_cast<size_t>(q - p);
          emit(p, static_cast<size_t>(q - p), message);
          p = q;
          break;
        }
        ++p;
        if (c == '\r') {
          ++line_length_;
          state_ = State::kCr;
        } else if (c == '\n') {
          bare_line_end_ = true;  // stays kInLine: a bare LF never starts a line that could end data
          emit("\n", 1, message);
          note_line_end();
        } else {
          nul_ = true;
          ++line_length_;
          emit("\0", 1, message);
        }
        break;
      }
      case State::kDone:
        break;
    }
  }
  return static_cast<size_t>(p - input.data());
}

}  // namespace ringmail::smtp
