// FaultInjector implementation (see fault_injector.h): reply validation and the deterministic
// splitmix64 stream behind every fault decision.
#include "tools/sink/fault_injector.h"

namespace ringmail::sink {

Result<std::string> make_reply_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.remove_suffix(1);
  bool digits = text.size() >= 3 && text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
                text[2] >= '0' && text[2] <= '9';
  if (!digits || (text.size() > 3 && text[3] != ' '))
    return make_error("reply '{}' must start with a code 200-599 followed by a space and text", text);
  for (char c : text)
    if (c == '\r' || c == '\n') return make_error("reply '{}' must be a single line", text);
  return std::string(text) + "\r\n";
}

FaultInjector::FaultInjector(const FaultConfig& config, uint64_t stream)
    : config_(config), state_(config.seed ^ (stream * 0x9E3779B97F4A7C15ull)) {}

bool FaultInjector::draw(double rate) {
  if (rate <= 0.0) return false;
  if (rate >= 1.0) return true;
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < rate;  // 53 random bits in [0, 1)
}

const std::string* FaultInjector::rcpt_fault(std::string_view recipient) {
  const FaultReply& f = config_.rcpt;
  if (f.line.empty()) return nullptr;
  if (!f.match.empty() && recipient.find(f.match) == std::string_view::npos) return nullptr;
  return draw(f.rate) ? &f.line : nullptr;
}

const std::string* FaultInjector::data_fault(std::string_view mail_from, const std::vector<std::string>& rcpts) {
  const FaultReply& f = config_.data;
  if (f.line.empty()) return nullptr;
  if (!f.match.empty()) {
    bool eligible = mail_from.find(f.match) != std::string_view::npos;
    for (const auto& r : rcpts) eligible = eligible || r.find(f.match) != std::string::npos;
    if (!eligible) return nullptr;
  }
  return draw(f.rate) ? &f.line : nullptr;
}

bool FaultInjector::drop_mid_data() { return draw(config_.drop_mid_data_rate); }

}  // namespace ringmail::sink
