// The SMTP service extensions a server announced in its EHLO reply (RFC 5321 §4.1.1.1), as the
// outbound client needs them: which ones change what we send (PIPELINING, SIZE, 8BITMIME,
// SMTPUTF8, DSN, STARTTLS, AUTH) and which are recorded for later work (CHUNKING). Parsing only;
// deciding what to do with them is client_session's job.
#pragma once

#include <cstdint>
#include <string>

#include "engine/smtp/reply_parser.h"

namespace ringmail::smtp {

struct ServerCapabilities {
  bool esmtp = false;                 // EHLO was accepted (false after a HELO fallback: no extensions)
  bool pipelining = false;            // RFC 2920
  bool size = false;                  // RFC 1870 SIZE announced (with or without a limit)
  uint64_t max_size = 0;              // the SIZE limit in octets; 0 = none announced
  bool eight_bit_mime = false;        // RFC 6152 8BITMIME
  bool smtputf8 = false;              // RFC 6531 SMTPUTF8
  bool enhanced_status_codes = false; // RFC 2034
  bool starttls = false;              // RFC 3207 STARTTLS offered
  bool dsn = false;                   // RFC 3461 (NOTIFY/ORCPT/RET/ENVID may be passed on)
  bool chunking = false;              // RFC 3030 BDAT (recorded, not used)
  std::string auth_mechanisms;        // RFC 4954 "AUTH PLAIN LOGIN" → "PLAIN LOGIN"
};

// Reads the keywords from a positive EHLO reply (first line: the server's name; one keyword and
// its parameters per following line, case-insensitive). Unknown keywords are ignored; a SIZE
// parameter that is not a number counts as "no limit".
ServerCapabilities parse_ehlo_capabilities(const Reply& ehlo_reply);

}  // namespace ringmail::smtp
