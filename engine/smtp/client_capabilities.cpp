// EHLO keyword parsing for the outbound client. See client_capabilities.h.
#include "engine/smtp/client_capabilities.h"

#include <charconv>
#include <string_view>

#include "common/strings.h"

namespace ringmail::smtp {

ServerCapabilities parse_ehlo_capabilities(const Reply& ehlo_reply) {
  ServerCapabilities caps;
  caps.esmtp = true;
  std::string_view text = ehlo_reply.text;
  bool first = true;
  while (!text.empty() || first) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (first) {  // the greeting line: server name and free text
      first = false;
      continue;
    }
    size_t sp = line.find(' ');
    std::string_view keyword = line.substr(0, sp);
    std::string_view params = sp == std::string_view::npos ? std::string_view{} : trim(line.substr(sp + 1));
    if (iequals(keyword, "PIPELINING")) {
      caps.pipelining = true;
    } else if (iequals(keyword, "SIZE")) {
      caps.size = true;
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(params.data(), params.data() + params.size(), n);
      caps.max_size = (ec == std::errc() && end == params.data() + params.size()) ? n : 0;
    } else if (iequals(keyword, "8BITMIME")) {
      caps.eight_bit_mime = true;
    } else if (iequals(keyword, "SMTPUTF8")) {
      caps.smtputf8 = true;
    } else if (iequals(keyword, "ENHANCEDSTATUSCODES")) {
      caps.enhanced_status_codes = true;
    } else if (iequals(keyword, "STARTTLS")) {
      caps.starttls = true;
    } else if (iequals(keyword, "DSN")) {
      caps.dsn = true;
    } else if (iequals(keyword, "CHUNKING")) {
      caps.chunking = true;
    } else if (iequals(keyword, "AUTH")) {
      caps.auth_mechanisms.assign(params);
    }
  }
  return caps;
}

}  // namespace ringmail::smtp
