// Received: header and RFC 5322 date formatting, with folding of long lines. What the fields hold
// is decided by the session. See received_header.h.
#include "engine/smtp/received_header.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <initializer_list>
#include <iterator>

namespace ringmail::smtp {
namespace {

constexpr size_t kMaxLine = 997;  // octets before CRLF we allow ourselves (RFC 5322 §2.1.1: < 998)

// Writes space-separated words, starting a continuation line ("\r\n\t") before a word that would
// make the current line too long. A single word longer than a line is written unbroken.
class FoldingWriter {
 public:
  explicit FoldingWriter(std::string& out) : out_(out) {}
  void word(std::initializer_list<std::string_view> parts) {
    size_t n = 0;
    for (auto p : parts) n += p.size();
    if (!at_line_start_) {
      if (line_length_ + 1 + n > kMaxLine) {
        out_ += "\r\n\t";
        line_length_ = 1;
      } else {
        out_ += ' ';
        ++line_length_;
      }
    }
    for (auto p : parts) out_ += p;
    line_length_ += n;
    at_line_start_ = false;
  }
  void continuation_line() {  // ends the line and starts a folded one
    out_ += "\r\n\t";
    line_length_ = 1;
    at_line_start_ = true;
  }
  void end() { out_ += "\r\n"; }

 private:
  std::string& out_;           // where the header goes
  size_t line_length_ = 0;     // octets on the current line
  bool at_line_start_ = true;  // no word yet on this line
};

// Writes the date into buf (which holds the longest date: "Wed, 31 Dec -32767 23:59:59 +0000");
// returns its length.
size_t format_rfc5322_date(WallTime when, std::array<char, 48>& buf) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto secs = floor<seconds>(when);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  hh_mm_ss hms{secs - day};
  weekday wd{day};
  auto r = fmt::format_to_n(buf.data(), buf.size(), "{}, {} {} {} {:02}:{:02}:{:02} +0000",
                            kDays[wd.c_encoding()], static_cast<unsigned>(ymd.day()),
                            kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                            hms.hours().count(), hms.minutes().count(), hms.seconds().count());
  return std::min(r.size, buf.size());
}

}  // namespace

void append_rfc5322_date(WallTime when, std::string& out) {
  std::array<char, 48> buf;
  out.append(buf.data(), format_rfc5322_date(when, buf));
}

void append_received_header(const ReceivedFields& f, std::string& out) {
  FoldingWriter w(out);
  w.word({"Received:"});
  w.word({"from"});
  w.word({f.helo});
  w.word({"(", f.peer, ")"});
  w.continuation_line();
  if (!f.tls_version.empty()) {
    w.word({"(using"});
    w.word({f.tls_version});
    w.word({"with"});
    w.word({"cipher"});
    w.word({f.tls_cipher, ")"});
    w.continuation_line();
  }
  w.word({"by"});
  w.word({f.hostname});
  w.word({"(ringmail)"});
  w.word({"with"});
  w.word({f.protocol});
  w.word({"id"});
  if (f.recipient.empty()) {
    w.word({f.queue_id, ";"});
    w.continuation_line();
  } else {
    w.word({f.queue_id});
    w.continuation_line();
    w.word({"for"});
    w.word({"<", f.recipient, ">;"});
  }
  std::array<char, 48> buf;
  // The date is written word by word so it may fold like any other part of the header.
  std::string_view rest(buf.data(), format_rfc5322_date(f.date, buf));
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    w.word({rest.substr(0, sp)});
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  w.end();
}

std::string peer_address_literal(const SocketAddress& address) {
  if (address.family() != AF_INET && address.family() != AF_INET6) return "[unknown]";
  std::string host = address.host();
  if (address.family() == AF_INET6) {
    constexpr std::string_view kMapped = "::ffff:";
    if (host.starts_with(kMapped) && host.find('.') != std::string::npos) return "[" + host.substr(kMapped.size()) + "]";
    return "[IPv6:" + host + "]";
  }
  return "[" + host + "]";
}

}  // namespace ringmail::smtp
