// The syntax of host and domain names (RFC 1035 lengths, letter-digit-hyphen labels, '_' allowed
// as seen in real names). Shared by routing (connector patterns, recipient domains) and the DNS
// parser (MX exchanges), so that both apply one rule.
#pragma once

#include <cstddef>
#include <string_view>

namespace ringmail {

inline constexpr size_t kMaxDomainLength = 253;  // RFC 1035 name length without the final dot
inline constexpr size_t kMaxLabelLength = 63;     // RFC 1035 label length

// The reason `name` (already lower-case ASCII, no trailing dot) is not a usable host or domain
// name, or an empty view if it is one. Labels: letters, digits, '-', '_'; no leading or trailing
// '-'; no empty label; lengths within RFC 1035.
std::string_view domain_syntax_error(std::string_view name);

}  // namespace ringmail
