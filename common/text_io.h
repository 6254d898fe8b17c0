// Small text helpers shared by the daemon and the tools: JSON string quoting for machine-readable
// output, and replacing a file atomically (write a temporary, rename) so a reader — a test, a
// script polling a ready or stats file — never sees it half-written.
#pragma once

#include <string>
#include <string_view>

namespace ringmail {

// `s` as a JSON string literal, quotes included; valid UTF-8 passes through, control characters
// (and DEL) are escaped, and each octet that is not part of valid UTF-8 becomes U+FFFD, so the
// result is always valid JSON whatever bytes a peer sent.
std::string json_quote(std::string_view s);
// The same, appended to `out`.
void append_json_quoted(std::string& out, std::string_view s);

// The Message-ID header field's value of an RFC 5322 message ("" if there is none in its header
// section), unfolded, without the field name and surrounding white space; matched case-insensitively.
std::string message_id_of(std::string_view message);

// Writes `content` to `path` through `path`.tmp and rename(2). Returns false (errno set) on failure.
bool write_file_atomically(const std::string& path, std::string_view content);

}  // namespace ringmail
