// ProtocolLog implementation (see protocol_log.h).
#include "engine/delivery/protocol_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iterator>

#include <fmt/format.h>

#include "common/log.h"
#include "engine/loop/loop.h"

namespace ringmail::engine {
namespace {

constexpr size_t kFlushAt = 64 * 1024;  // buffered bytes that are written at once

struct Civil {
  int day;         // YYYYMMDD
  std::tm tm;      // broken down, UTC
  int64_t second;  // since the epoch
  int ms;
};

Civil civil(WallTime wall) {
  using namespace std::chrono;
  const auto since = duration_cast<milliseconds>(wall.time_since_epoch()).count();
  Civil c{};
  c.second = since / 1000 - (since % 1000 < 0 ? 1 : 0);
  c.ms = static_cast<int>(since - c.second * 1000);
  std::time_t secs = static_cast<std::time_t>(c.second);
  gmtime_r(&secs, &c.tm);
  c.day = (c.tm.tm_year + 1900) * 10000 + (c.tm.tm_mon + 1) * 100 + c.tm.tm_mday;
  return c;
}

}  // namespace

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

ProtocolLog::ProtocolLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock)
    : loop_(loop), dir_(std::move(dir)), worker_(worker), clock_(clock) {}

ProtocolLog::~ProtocolLog() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

std::string ProtocolLog::path_for(WallTime wall) const { return path_for_day(civil(wall).day); }

std::string ProtocolLog::path_for_day(int day) const { return fmt::format("{}/send-{}-w{}.log", dir_, day, worker_); }

void ProtocolLog::write(std::string_view session, std::string_view connector, std::string_view remote, char event,
                        std::string_view text) {
  const WallTime wall = clock_.wall();
  const Civil c = civil(wall);
  if (c.day != buf_day_ && !buf_.empty()) flush();  // each day's lines go to that day's file
  buf_day_ = c.day;
  if (c.second != stamp_second_) {
    stamp_second_ = c.second;
    stamp_.clear();
    fmt::format_to(std::back_inserter(stamp_), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.tm.tm_year + 1900,
                   c.tm.tm_mon + 1, c.tm.tm_mday, c.tm.tm_hour, c.tm.tm_min, c.tm.tm_sec);
  }
  fmt::format_to(std::back_inserter(buf_), "{}.{:03}Z\t", stamp_, c.ms);
  append_log_escaped(buf_, session);
  buf_.push_back('\t');
  append_log_escaped(buf_, connector);
  buf_.push_back('\t');
  append_log_escaped(buf_, remote);
  buf_.push_back('\t');
  buf_.push_back(event);
  buf_.push_back('\t');
  append_log_escaped(buf_, text);
  buf_.push_back('\n');
  if (buf_.size() >= kFlushAt) {
    flush();
  } else if (!flush_pending_ && loop_ != nullptr) {
    flush_pending_ = true;
    loop_->defer([this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;  // destroyed (and flushed) before the end of the iteration
      flush_pending_ = false;
      flush();
    });
  }
}

bool ProtocolLog::open_for(int day) {
  if (fd_ >= 0 && day_ == day) return true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const std::string path = path_for_day(day);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    if (!failing_) log::warn("protocol log {}: {}; its lines are dropped until it can be written", path, std::strerror(errno));
    failing_ = true;
    return false;
  }
  day_ = day;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size == 0) {
    buf_.insert(0, fmt::format("# ringmail outbound protocol log, worker {}. Tab-separated: time session connector "
                               "remote event text; events: + connected, > sent, < received, * note, - closed\n",
                               worker_));
  }
  return true;
}

void ProtocolLog::flush() {
  if (buf_.empty()) return;
  // The day of the buffered lines, not of now: lines written just before midnight stay in their day.
  if (!open_for(buf_day_)) {
    buf_.clear();
    return;
  }
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!failing_)
        log::warn("protocol log {}: {}; its lines are dropped until it can be written", path_for_day(buf_day_),
                  n < 0 ? std::strerror(errno) : "short write");
      failing_ = true;
      buf_.clear();
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (failing_) log::info("protocol log {}: writing again", path_for_day(buf_day_));
  failing_ = false;
  buf_.clear();
}

}  // namespace ringmail::engine
