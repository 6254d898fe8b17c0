// The syntax of host and domain names (see domain_name.h).
#include "common/domain_name.h"

#include <array>
#include <cstdint>

namespace ringmail {

namespace {
// Byte classes for domain_syntax_error: one table look-up per byte instead of a chain of tests.
enum : uint8_t { kBad = 0, kLabelByte = 1, kHyphen = 2, kDot = 3, kStar = 4 };
constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kLabelByte;
  for (int c = '0'; c <= '9'; ++c) t[c] = kLabelByte;
  t['_'] = kLabelByte;
  t['-'] = kHyphen;
  t['.'] = kDot;
  t['*'] = kStar;
  return t;
}();
}  // namespace

std::string_view domain_syntax_error(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > kMaxDomainLength) return "name longer than 253 characters";
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    const uint8_t cls =
        i == name.size() ? uint8_t{kDot} : kByteClass[static_cast<unsigned char>(name[i])];
    if (cls == kLabelByte) continue;
    if (cls == kDot) {  // end of a label: check it as a whole
      const size_t length = i - label_start;
      if (length == 0) return "empty label";
      if (length > kMaxLabelLength) return "label longer than 63 characters";
      if (name[label_start] == '-' || name[i - 1] == '-') return "label starts or ends with '-'";
      label_start = i + 1;
      continue;
    }
    if (cls == kHyphen) continue;
    // A bad byte: this label's length and hyphen errors still come first, then the byte's own.
    size_t end = name.find('.', i);
    if (end == std::string_view::npos) end = name.size();
    const size_t length = end - label_start;
    if (length == 0) return "empty label";
    if (length > kMaxLabelLength) return "label longer than 63 characters";
    if (name[label_start] == '-' || name[end - 1] == '-') return "label starts or ends with '-'";
    return cls == kStar ? "'*' is only allowed as a whole first label"
                        : "character not allowed in a domain name";
  }
  return {};
}

}  // namespace ringmail
