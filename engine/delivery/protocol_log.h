// The outbound SMTP protocol log of connectors with `protocol_log = true` (Exchange's send
// protocol log): one line per command sent, reply line received and session event, so an operator
// can see what a next hop said without a packet capture. Each worker writes its own file (no locks)
// in --protocol-log-dir, one per UTC day: send-YYYYMMDD-w<worker>.log. Lines are tab-separated:
//   time (UTC, ms)  session  connector  remote  event  text
// with events `+` connected, `>` sent, `<` received, `*` note (TLS, message data size), `-` closed.
// Message data and AUTH credentials are never written (smtp::ClientSession masks them); every
// octet outside printable ASCII, the tab and the backslash is written as \xHH (`\\` for a
// backslash), so a line is one line whatever a server sends.
//
// Lines are buffered and written with one write(2) at the end of the loop iteration that made them
// (or once 64 KiB are waiting), so a crash loses at most the lines of that iteration. A failed write
// is reported once in the daemon log and those lines are dropped: the log never holds up delivery.
// Files are not deleted by ringmail; remove old days with cron (e.g. `find DIR -mtime +30 -delete`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace ringmail::engine {

class Loop;

class ProtocolLog {
 public:
  // loop: where the flush after each iteration runs (null: the caller flushes). Nothing is opened
  // until the first line.
  ProtocolLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock = SystemClock::instance());
  ~ProtocolLog();  // flushes
  ProtocolLog(const ProtocolLog&) = delete;
  ProtocolLog& operator=(const ProtocolLog&) = delete;

  void write(std::string_view session, std::string_view connector, std::string_view remote, char event,
             std::string_view text);
  void flush();
  // The file lines of `wall` go to.
  std::string path_for(WallTime wall) const;

 private:
  std::string path_for_day(int day) const;  // day = YYYYMMDD (UTC)
  bool open_for(int day);

  Loop* loop_;
  std::string dir_;
  unsigned worker_;
  const Clock& clock_;
  int fd_ = -1;                 // the open file, -1 before the first line or after a failure
  int day_ = 0;                 // YYYYMMDD of fd_ (UTC)
  int64_t stamp_second_ = -1;   // the second `stamp_` was formatted for
  int stamp_day_ = 0;           // its YYYYMMDD
  std::string stamp_;           // "2026-11-28T15:40:01" for stamp_second_
  std::string buf_;             // lines not yet written
  int buf_day_ = 0;             // the day the buffered lines belong to
  bool flush_pending_ = false;  // a flush is deferred to the end of this iteration
  bool failing_ = false;        // the last open or write failed (reported once)
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // the deferred flush checks this still exists
};

// Appends `text` to `out` with every octet outside printable ASCII, and the backslash, escaped
// (\xHH, \\). Shared with tests.
void append_log_escaped(std::string& out, std::string_view text);

}  // namespace ringmail::engine
