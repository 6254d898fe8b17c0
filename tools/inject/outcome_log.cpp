// The per-message outcome log of ringmail-inject (see outcome_log.h).
#include "tools/inject/outcome_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringmail::inject {

OutcomeLog::~OutcomeLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status OutcomeLog::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return make_error("cannot open log {}: {}", path, std::strerror(errno));
  return {};
}

bool OutcomeLog::write(const MessageOutcome& outcome) const {
  if (fd_ < 0) return true;
  char line[1024];
  std::string_view queue_id = outcome.queue_id.empty() ? std::string_view("-") : outcome.queue_id;
  auto r = fmt::format_to_n(line, sizeof line - 1, "{:03} {} {}", outcome.code, outcome.message_id,
                            queue_id.substr(0, 200));
  size_t n = std::min(r.size, sizeof line - 1);
  line[n++] = '\n';
  for (;;) {
    ssize_t w = ::write(fd_, line, n);
    if (w == ssize_t(n)) return true;
    if (w < 0 && errno == EINTR) continue;
    return false;  // a short write to a regular file means the disk is full
  }
}

}  // namespace ringmail::inject
