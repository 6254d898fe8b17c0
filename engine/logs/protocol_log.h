// The outbound SMTP protocol log of connectors with `protocol_log = true` (Exchange's send
// protocol log): one line per command sent, reply line received and session event, so an operator
// can see what a next hop said without a packet capture. Each worker writes its own file per UTC
// day (DailyLog): --protocol-log-dir/send-YYYYMMDD-w<worker>.log. Lines are tab-separated:
//   time (UTC, ms)  session  connector  remote  event  text
// with events `+` connected, `>` sent, `<` received, `*` note (TLS, message data size), `-` closed.
// Message data and AUTH credentials are never written (smtp::ClientSession masks them); every
// octet outside printable ASCII, the tab and the backslash is written as \xHH (`\\` for a
// backslash), so a line is one line whatever a server sends.
#pragma once

#include <string>
#include <string_view>

#include "engine/logs/daily_log.h"

namespace ringmail::engine {

class ProtocolLog {
 public:
  // loop: whose timer writes buffered lines within 100 ms (null: flush(), 64 KiB or the destructor).
  // max_age_days: older files of this worker are removed when a new day begins (0: kept).
  ProtocolLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock = SystemClock::instance(),
              unsigned max_age_days = 0);

  void write(std::string_view session, std::string_view connector, std::string_view remote, char event,
             std::string_view text);
  void flush() { file_.flush(); }
  std::string path_for(WallTime wall) const { return file_.path_for(wall); }  // the file lines of `wall` go to

 private:
  DailyLog file_;
};

// Appends `text` to `out` with every octet outside printable ASCII, and the backslash, escaped
// (\xHH, \\). Shared with tests.
void append_log_escaped(std::string& out, std::string_view text);

}  // namespace ringmail::engine
