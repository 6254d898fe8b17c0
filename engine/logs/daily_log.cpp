// DailyLog implementation (see daily_log.h).
#include "engine/logs/daily_log.h"

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

constexpr size_t kFlushAt = 64 * 1024;                    // buffered bytes that are written at once
constexpr std::chrono::milliseconds kFlushAfter{100};       // the longest a line waits

}  // namespace

DailyLog::DailyLog(Loop* loop, std::string dir, std::string prefix, unsigned worker, std::string header,
                   const Clock& clock)
    : loop_(loop),
      dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      worker_(worker),
      header_(std::move(header)),
      clock_(clock) {}

DailyLog::~DailyLog() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

std::string DailyLog::path_for_day(int day) const {
  return fmt::format("{}/{}-{}-w{}.log", dir_, prefix_, day, worker_);
}

std::string DailyLog::path_for(WallTime wall) const {
  std::time_t secs = std::chrono::system_clock::to_time_t(wall);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return path_for_day((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

std::string& DailyLog::begin_line(std::string_view* stamp) {
  using namespace std::chrono;
  const int64_t ms = duration_cast<milliseconds>(clock_.wall().time_since_epoch()).count();
  const int64_t second = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
  if (second != stamp_second_) {
    stamp_second_ = second;
    std::time_t secs = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    stamp_day_ = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    stamp_.clear();
    fmt::format_to(std::back_inserter(stamp_), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  const int milli = static_cast<int>(ms - second * 1000);
  stamp_[20] = static_cast<char>('0' + milli / 100);
  stamp_[21] = static_cast<char>('0' + milli / 10 % 10);
  stamp_[22] = static_cast<char>('0' + milli % 10);
  if (stamp_day_ != buf_day_ && !buf_.empty()) flush();  // each day's lines go to that day's file
  buf_day_ = stamp_day_;
  *stamp = stamp_;
  return buf_;
}

void DailyLog::end_line() {
  buf_.push_back('\n');
  if (buf_.size() >= kFlushAt) {
    flush();
  } else if (!flush_timer_.armed() && loop_ != nullptr) {
    loop_->timers().arm(flush_timer_, loop_->now(), kFlushAfter);
  }
}

bool DailyLog::open_for(int day) {
  if (fd_ >= 0 && day_ == day) return true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const std::string path = path_for_day(day);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    if (!failing_) log::warn("log {}: {}; its lines are dropped until it can be written", path, std::strerror(errno));
    failing_ = true;
    return false;
  }
  day_ = day;
  struct stat st {};
  if (!header_.empty() && ::fstat(fd_, &st) == 0 && st.st_size == 0) buf_.insert(0, header_ + "\n");
  return true;
}

void DailyLog::flush() {
  if (loop_ != nullptr && flush_timer_.armed()) loop_->timers().cancel(flush_timer_);
  if (buf_.empty()) return;
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
        log::warn("log {}: {}; its lines are dropped until it can be written", path_for_day(buf_day_),
                  n < 0 ? std::strerror(errno) : "short write");
      failing_ = true;
      buf_.clear();
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (failing_) log::info("log {}: writing again", path_for_day(buf_day_));
  failing_ = false;
  buf_.clear();
}

}  // namespace ringmail::engine
