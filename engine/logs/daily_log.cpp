// DailyLog implementation (see daily_log.h).
#include "engine/logs/daily_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

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

int ymd_of(const std::tm& tm) { return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday; }

// The UTC day (YYYYMMDD) of `secs`.
int ymd_at(std::time_t secs) {
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return ymd_of(tm);
}

}  // namespace

DailyLog::DailyLog(Loop* loop, std::string dir, std::string prefix, unsigned worker, std::string header,
                   const Clock& clock, unsigned max_age_days)
    : loop_(loop),
      dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      worker_(worker),
      header_(std::move(header)),
      clock_(clock),
      max_age_days_(max_age_days) {}

DailyLog::~DailyLog() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

std::string DailyLog::path_for_day(int day) const {
  return fmt::format("{}/{}-{}-w{}.log", dir_, prefix_, day, worker_);
}

std::string DailyLog::path_for(WallTime wall) const {
  return path_for_day(ymd_at(std::chrono::system_clock::to_time_t(wall)));
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
    stamp_day_ = ymd_of(tm);
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
  if (max_age_days_ > 0) remove_old_files(day);
  struct stat st {};
  if (!header_.empty() && ::fstat(fd_, &st) == 0 && st.st_size == 0) buf_.insert(0, header_ + "\n");
  return true;
}

// Runs once per day per writer (when the day's file is opened), so a directory scan is fine here.
void DailyLog::remove_old_files(int today) {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return;
  // The oldest day kept, as YYYYMMDD: numeric order is date order, so names compare as numbers.
  std::tm midnight{};
  midnight.tm_year = today / 10000 - 1900;
  midnight.tm_mon = today / 100 % 100 - 1;
  midnight.tm_mday = today % 100;
  const int oldest = ymd_at(timegm(&midnight) - static_cast<std::time_t>(max_age_days_) * 86400);
  const std::string suffix = fmt::format("-w{}.log", worker_);
  const std::string head = prefix_ + "-";
  size_t removed = 0;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    // Exactly <prefix>-YYYYMMDD-w<worker>.log
    if (name.size() != head.size() + 8 + suffix.size() || name.substr(0, head.size()) != head ||
        name.substr(name.size() - suffix.size()) != suffix)
      continue;
    std::string_view digits = name.substr(head.size(), 8);
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
    if (std::stoi(std::string(digits)) >= oldest) continue;
    if (::unlinkat(::dirfd(d), e->d_name, 0) == 0) ++removed;
  }
  ::closedir(d);
  if (removed > 0) log::info("log {}: removed {} file(s) older than {} days", dir_, removed, max_age_days_);
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
