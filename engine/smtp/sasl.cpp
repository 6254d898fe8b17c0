// Base64 and SASL PLAIN parsing for the server's AUTH command. See sasl.h.
#include "engine/smtp/sasl.h"

#include <string.h>  // explicit_bzero (glibc)

#include <array>
#include <cstdint>

namespace ringmail::smtp {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, 64 for '=', 255 for anything else.
constexpr std::array<uint8_t, 256> make_decode_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = 255;
  for (size_t i = 0; i < kAlphabet.size(); ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<uint8_t>(i);
  t['='] = 64;
  return t;
}
constexpr std::array<uint8_t, 256> kDecode = make_decode_table();

}  // namespace

bool decode_base64(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint8_t v[4];
    for (size_t k = 0; k < 4; ++k) v[k] = kDecode[static_cast<unsigned char>(text[i + k])];
    bool last = i + 4 == text.size();
    if (v[0] > 63 || v[1] > 63) return false;
    // '=' only in the last quantum, only in the last one or two places, and "=x" is not allowed.
    if (v[2] == 64 || v[3] == 64) {
      if (!last || v[3] != 64) return false;
    }
    if (v[2] == 255 || v[3] == 255) return false;
    uint32_t n = (uint32_t{v[0]} << 18) | (uint32_t{v[1]} << 12);
    out += static_cast<char>(n >> 16);
    if (v[2] == 64) {
      if ((v[1] & 0x0f) != 0) return false;  // pad bits must be zero (one canonical encoding)
      break;
    }
    n |= uint32_t{v[2]} << 6;
    out += static_cast<char>((n >> 8) & 0xff);
    if (v[3] == 64) {
      if ((v[2] & 0x03) != 0) return false;
      break;
    }
    n |= v[3];
    out += static_cast<char>(n & 0xff);
  }
  return true;
}

void append_base64(std::string_view bytes, std::string& out) {
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 0) return;
  uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
  if (rest == 2) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
  out += kAlphabet[(n >> 18) & 63];
  out += kAlphabet[(n >> 12) & 63];
  out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
  out += '=';
}

bool parse_sasl_plain(std::string_view message, SaslPlain& out) {
  size_t first = message.find('\0');
  if (first == std::string_view::npos) return false;
  size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos) return false;
  out.authzid = message.substr(0, first);
  out.authcid = message.substr(first + 1, second - first - 1);
  out.password = message.substr(second + 1);
  return !out.authcid.empty() && !out.password.empty();
}

void wipe(std::string& secret) {
  if (secret.capacity() > 0) explicit_bzero(secret.data(), secret.capacity());
  secret.clear();
}

}  // namespace ringmail::smtp
