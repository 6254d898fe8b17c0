// Domain names for routing: normalisation (lower-case ASCII, one trailing dot dropped,
// internationalised U-labels converted to A-labels), syntax checks, and parsing of address-space
// patterns in Exchange's form. Matching against the table lives in routing/table.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/domain_name.h"  // domain_syntax_error, kMaxDomainLength, kMaxLabelLength
#include "common/result.h"
#include "routing/connector.h"

namespace ringmail::routing {

// True if every byte is 7-bit.
bool is_ascii(std::string_view s);

// Full normalisation of a domain from config or a recipient: drops one trailing dot, converts
// U-labels to A-labels (libidn2, IDNA2008 non-transitional), lower-cases, checks the syntax.
Result<std::string> normalize_domain(std::string_view name);

// Parses one address-space entry in Exchange's string form:
//   "SMTP:*.example.com;5", "*.example.com;5", "example.com" (cost 1), "*".
// Errors are reasons without file or line ("cost 0 is out of range 1-100").
Result<AddressSpace> parse_address_space(std::string_view text);

// Checks a bare pattern ("*", "*.example.com", "example.com") with an explicit cost.
Result<AddressSpace> make_address_space(std::string_view pattern, int64_t cost);

// Whether IDN conversion is compiled in (libidn2).
bool idn_supported();

}  // namespace ringmail::routing
