// ProtocolLog implementation (see protocol_log.h).
#include "engine/logs/protocol_log.h"

#include <fmt/format.h>

namespace ringmail::engine {

void append_log_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

ProtocolLog::ProtocolLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock, unsigned max_age_days)
    : file_(loop, std::move(dir), "send", worker,
            fmt::format("# ringmail outbound protocol log, worker {}. Tab-separated: time session connector remote "
                        "event text; events: + connected, > sent, < received, * note, - closed",
                        worker),
            clock, max_age_days) {}

void ProtocolLog::write(std::string_view session, std::string_view connector, std::string_view remote, char event,
                        std::string_view text) {
  std::string_view stamp;
  std::string& line = file_.begin_line(&stamp);
  line += stamp;
  line.push_back('\t');
  append_log_escaped(line, session);
  line.push_back('\t');
  append_log_escaped(line, connector);
  line.push_back('\t');
  append_log_escaped(line, remote);
  line.push_back('\t');
  line.push_back(event);
  line.push_back('\t');
  append_log_escaped(line, text);
  file_.end_line();
}

}  // namespace ringmail::engine
