// Incremental decoder for the SMTP DATA phase (RFC 5321 §4.1.1.4, §4.5.2): finds the only valid end,
// <CR><LF>.<CR><LF>, removes dot-stuffing, and notes what makes the message unacceptable (bare CR or
// LF — the SMTP smuggling defence —, NUL, over-long lines, over-size). Input may arrive split at any
// byte. Replies and transaction state belong to ServerSession, not here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringmail::smtp {

// Why a message read to its end must be refused; the first that applies is reported.
enum class DataVerdict : uint8_t {
  kAccept,       // the message may be committed
  kBareLineEnd,  // a CR not followed by LF or an LF not preceded by CR (SMTP smuggling)
  kNul,          // a NUL octet in the data
  kLongLine,     // a line over max_text_line octets including CRLF (counted as sent, before unstuffing)
  kTooBig,       // more than max_message_size octets after unstuffing
};

class DataDecoder {
 public:
  // Starts a new message: limits for this message; findings and position are cleared.
  void reset(uint64_t max_message_size, size_t max_text_line);
  // Consumes bytes up to and including the final ".\r\n" (or all of `input` if the end is not in it),
  // appending the unstuffed data to `message` while the message is still acceptable (the data stops
  // being stored at the first finding, so `message` never grows beyond max_message_size).
  // Returns the number of bytes consumed; done() tells whether the end was reached.
  size_t feed(std::string_view input, std::string& message);
  bool done() const { return state_ == State::kDone; }
  DataVerdict verdict() const;
  uint64_t size() const { return size_; }  // unstuffed octets seen so far (stored or not)

 private:
  enum class State : uint8_t {
    kLineStart,  // after CRLF (or at the start of data)
    kDot,        // a '.' at the start of a line
    kDotCr,      // ".\r" at the start of a line
    kInLine,     // inside a line
    kCr,         // a CR inside a line, waiting for its LF
    kDone,       // the final ".\r\n" was consumed
  };
  void emit(const char* bytes, size_t n, std::string& message);
  void note_line_end();

  State state_ = State::kLineStart;  // position in the line grammar
  uint64_t max_size_ = 0;            // limit on unstuffed octets
  size_t max_line_ = 0;              // limit on one line as sent, including CRLF
  uint64_t size_ = 0;                // unstuffed octets seen
  size_t line_length_ = 0;           // octets of the current line as sent
  bool bare_line_end_ = false;       // a bare CR or LF was seen
  bool nul_ = false;                 // a NUL was seen
  bool long_line_ = false;           // a line exceeded max_line_
  bool too_big_ = false;             // size_ exceeded max_size_
};

}  // namespace ringmail::smtp
