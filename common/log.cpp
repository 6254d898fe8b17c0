// Implementation of the line logger declared in log.h.
#include "common/log.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>

namespace ringmail::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
thread_local std::string t_name = "main";
thread_local fmt::memory_buffer t_buf;

constexpr const char* kLevelNames[] = {"debug", "info", "warn", "error"};
static_assert(std::size(kLevelNames) == static_cast<size_t>(Level::kError) + 1);
}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_thread_name(std::string_view name) { t_name.assign(name); }

bool parse_level(std::string_view text, Level* out) {
  for (int i = 0; i < static_cast<int>(std::size(kLevelNames)); ++i) {
    if (text == kLevelNames[i]) {
      *out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write_line(Level l, fmt::string_view format, fmt::format_args args) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  t_buf.clear();
  fmt::format_to(std::back_inserter(t_buf), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z ringmail[{}] {}: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms, t_name,
                 kLevelNames[static_cast<int>(l)]);
  fmt::vformat_to(std::back_inserter(t_buf), format, args);
  t_buf.push_back('\n');
  // One write per line keeps lines whole across threads; a short write to stderr is not retried.
  ssize_t rc = ::write(STDERR_FILENO, t_buf.data(), t_buf.size());
  (void)rc;
}

}  // namespace ringmail::log
