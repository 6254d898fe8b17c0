// Domain normalisation and address-space pattern parsing (see domain.h). Runs at config load and
// on the explain path; the allocation-free ASCII lookup path is in table.cpp.
#include "routing/domain.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "common/domain_name.h"
#include "common/strings.h"

#ifdef RINGMAIL_HAVE_IDN2
#include <idn2.h>
#endif

namespace ringmail::routing {

std::string AddressSpace::pattern() const {
  switch (kind) {
    case PatternKind::kAll: return "*";
    case PatternKind::kWildcard: return "*." + domain;
    case PatternKind::kExact: return domain;
  }
  return domain;
}

bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

bool idn_supported() {
#ifdef RINGMAIL_HAVE_IDN2
  return true;
#else
  return false;
#endif
}

static Result<std::string> to_a_labels(std::string_view utf8) {
  // libidn2 reads a C string: an embedded NUL would end the name early and let the rest through.
  if (utf8.find('\0') != std::string_view::npos) return make_error("NUL character in a domain name");
#ifdef RINGMAIL_HAVE_IDN2
  std::string input(utf8);
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(input.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) return make_error("not a valid internationalised name: {}", idn2_strerror(rc));
  std::string result(out);
  idn2_free(out);
  return result;
#else
  (void)utf8;
  return make_error("internationalised names need libidn2, which this build lacks");
#endif
}

Result<std::string> normalize_domain(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out;
  if (is_ascii(name)) {
    out.assign(name);
    for (char& c : out) c = ascii_lower(c);
  } else {
    auto converted = to_a_labels(name);
    if (!converted) return converted.error();
    out = to_lower_ascii(*converted);
  }
  if (auto why = domain_syntax_error(out); !why.empty()) return make_error("{}", why);
  return out;
}

Result<AddressSpace> make_address_space(std::string_view pattern, int64_t cost) {
  if (cost < 1 || cost > 100) return make_error("cost {} is out of range 1-100", cost);
  AddressSpace space;
  space.cost = static_cast<uint8_t>(cost);
  pattern = trim(pattern);
  if (pattern == "*") {
    space.kind = PatternKind::kAll;
    return space;
  }
  std::string_view rest = pattern;
  if (rest.starts_with("*.")) {
    space.kind = PatternKind::kWildcard;
    rest.remove_prefix(2);
  } else if (rest.starts_with("*")) {
    return make_error("bad pattern '{}': a wildcard must be a whole label, as in '*.example.com'",
                      pattern);
  }
  if (rest.find('*') != std::string_view::npos)
    return make_error("bad pattern '{}': '*' is only allowed as the first label", pattern);
  auto domain = normalize_domain(rest);
  if (!domain) return make_error("bad pattern '{}': {}", pattern, domain.error().message());
  space.domain = std::move(*domain);
  return space;
}

Result<AddressSpace> parse_address_space(std::string_view text) {
  std::string_view rest = trim(text);
  if (size_t colon = rest.find(':'); colon != std::string_view::npos) {
    std::string_view type = trim(rest.substr(0, colon));
    if (!iequals(type, "SMTP"))
      return make_error("address space type '{}' is not supported (only SMTP)", type);
    rest = trim(rest.substr(colon + 1));
  }
  int64_t cost = 1;
  if (size_t semi = rest.rfind(';'); semi != std::string_view::npos) {
    std::string_view cost_text = trim(rest.substr(semi + 1));
    rest = trim(rest.substr(0, semi));
    auto [end, ec] = std::from_chars(cost_text.data(), cost_text.data() + cost_text.size(), cost);
    if (ec != std::errc() || end != cost_text.data() + cost_text.size() || cost_text.empty())
      return make_error("bad cost '{}' in address space '{}'", cost_text, text);
  }
  if (rest.empty()) return make_error("empty address space '{}'", text);
  return make_address_space(rest, cost);
}

}  // namespace ringmail::routing
