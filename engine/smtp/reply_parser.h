// Incremental parser of SMTP server replies (RFC 5321 §4.2) for the outbound client: feed it the
// bytes the server sent, in chunks split anywhere, and it yields complete (possibly multi-line)
// replies with the enhanced status code (RFC 2034/3463) taken apart. Bounded line length and line
// count; anything that is not `ddd[ -]text` is a protocol error. What a reply means belongs to
// delivery_outcome, what to do next to client_session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringmail::smtp {

// One complete server reply.
struct Reply {
  int code = 0;            // 3-digit reply code, 200..599
  std::string enhanced;    // "4.3.0" when the reply carries an enhanced status code, else empty
  std::string text;        // all lines' text joined with "\n", without codes and without CRLF

  int klass() const { return code / 100; }  // 2, 3, 4 or 5
  bool positive() const { return code >= 200 && code < 400; }
  void clear() {
    code = 0;
    enhanced.clear();
    text.clear();
  }
};

// What went wrong when parse() returns kError.
enum class ReplyError : uint8_t {
  kNone,          // no error
  kBadLine,       // a line that is not `ddd`, `ddd text` or `ddd-text` with a code in 200..599
  kLineTooLong,   // a line longer than kMaxLine octets including its line end
  kTooManyLines,  // a reply of more than kMaxLines lines
  kCodeMismatch,  // the lines of one multi-line reply carry different codes
};

std::string_view reply_error_name(ReplyError e);

class ReplyParser {
 public:
  enum class Status : uint8_t {
    kNeedMore,  // every byte of the input was consumed, no complete reply yet
    kReply,     // reply() holds a complete reply; the input view starts after its last line
    kError,     // protocol error (error() says which); the parser stays in error until reset()
  };
  static constexpr size_t kMaxLine = 4096;  // octets per reply line including CRLF (RFC 5321 says 512)
  static constexpr size_t kMaxLines = 128;  // lines per reply (a long EHLO reply has ~20)

  // Consumes bytes from the front of `input` up to the end of the first complete reply, or all of
  // it. Lines end with CRLF; a bare LF is accepted too (many servers' 421 on close).
  Status parse(std::string_view& input);
  // The last complete reply; valid after kReply until the next parse() call.
  const Reply& reply() const { return reply_; }
  ReplyError error() const { return error_; }
  // True while some bytes of an unfinished reply are held (the server closed mid-reply if the
  // connection ends now).
  bool partial() const { return !line_.empty() || lines_ > 0; }
  // Forgets everything (buffers keep their capacity).
  void reset();

 private:
  Status take_line(std::string_view line);  // one line without its line end
  Status fail(ReplyError e);

  std::string line_;               // the unfinished line carried over between parse() calls
  Reply reply_;                    // the reply being assembled / the last complete one
  size_t lines_ = 0;               // lines of the reply being assembled
  ReplyError error_ = ReplyError::kNone;  // sticky error
};

// Splits an RFC 3463 status code from the front of `text` ("5.1.1 User unknown"): returns the code
// ("5.1.1") and advances `text` past it and one space, or returns empty and leaves `text` alone.
// `klass` is the reply's first digit; a status code of another class is not taken.
std::string_view take_enhanced_code(std::string_view& text, int klass);

}  // namespace ringmail::smtp
