// Logging for ringmail: one line per event to stderr, written with a single write(2) so lines
// from several worker threads never interleave. Formatting uses a thread-local buffer.
// Message tracking and protocol logs (structured, per message) do not belong here.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <string_view>

namespace ringmail::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// The threshold below which lines are dropped; default kInfo.
void set_level(Level level);
Level level();
// Parses "debug|info|warn|error"; returns false on anything else.
bool parse_level(std::string_view text, Level* out);
// A short name for this thread shown on every line ("main", "w0", ...).
void set_thread_name(std::string_view name);

void write_line(Level level, fmt::string_view format, fmt::format_args args);

inline bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(level()); }

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug)) write_line(Level::kDebug, f, fmt::make_format_args(args...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo)) write_line(Level::kInfo, f, fmt::make_format_args(args...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarn)) write_line(Level::kWarn, f, fmt::make_format_args(args...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError)) write_line(Level::kError, f, fmt::make_format_args(args...));
}

}  // namespace ringmail::log
