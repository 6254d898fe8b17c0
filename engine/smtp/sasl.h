// The byte-level parts of SMTP AUTH (RFC 4954) that the server session needs: base64 (RFC 4648,
// strict: padding required, no whitespace), and the SASL PLAIN message (RFC 4616). Pure functions;
// which replies to give and whether the credentials are right are decided elsewhere.
#pragma once

#include <string>
#include <string_view>

namespace ringmail::smtp {

// Decodes strict base64 into `out` (replacing its contents). False on any character outside the
// alphabet, a length that is not a multiple of 4, misplaced padding or non-zero pad bits.
bool decode_base64(std::string_view text, std::string& out);

// Appends the base64 form of `bytes` to `out`.
void append_base64(std::string_view bytes, std::string& out);

// RFC 4616 PLAIN: [authzid] NUL authcid NUL passwd. The views point into the decoded message.
struct SaslPlain {
  std::string_view authzid;   // identity to act as; empty = the same as authcid
  std::string_view authcid;   // user name
  std::string_view password;  // the password (never log it)
};

// Splits a decoded PLAIN message. False if it does not have exactly two NULs, or authcid or password is empty.
bool parse_sasl_plain(std::string_view message, SaslPlain& out);

// Overwrites the string's bytes (also beyond size(), up to capacity()) before clearing it, so a
// password does not linger in a reused buffer.
void wipe(std::string& secret);

}  // namespace ringmail::smtp
