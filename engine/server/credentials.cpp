// The AUTH credentials file and SHA-512-crypt over OpenSSL's SHA-512 (see credentials.h). The
// algorithm follows Drepper's specification step by step; the numbered comments are its steps.
#include "engine/server/credentials.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringmail::engine {
namespace {

constexpr std::string_view kPrefix = "$6$";
constexpr std::string_view kRoundsPrefix = "rounds=";
constexpr unsigned kDefaultRounds = 5000;
constexpr unsigned kMinRounds = 1000;
constexpr unsigned kMaxRounds = 999999999;
constexpr size_t kMaxSalt = 16;
constexpr size_t kHashChars = 86;             // 64 bytes in crypt's base64
constexpr size_t kMaxFileSize = 1 << 20;      // a credentials file is small; refuse anything huge
constexpr std::string_view kB64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Hashed for unknown users so that they cost as much as known ones.
constexpr std::string_view kUnknownUserSetting = "$6$ringmail.nouser";

using Digest = std::array<unsigned char, 64>;

// One SHA-512 computation at a time, reusing its context.
class Sha512 {
 public:
  explicit Sha512(const EVP_MD* md) : md_(md), ctx_(EVP_MD_CTX_new()) {}
  ~Sha512() { EVP_MD_CTX_free(ctx_); }
  bool ok() const { return md_ != nullptr && ctx_ != nullptr; }
  void begin() { EVP_DigestInit_ex(ctx_, md_, nullptr); }
  void add(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  void add(std::string_view s) { add(s.data(), s.size()); }
  void finish(Digest& d) {
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, d.data(), &len);
  }

 private:
  const EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

void append_b64_24(unsigned char b2, unsigned char b1, unsigned char b0, int n, std::string& out) {
  unsigned w = (unsigned{b2} << 16) | (unsigned{b1} << 8) | b0;
  while (n-- > 0) {
    out += kB64[w & 0x3f];
    w >>= 6;
  }
}

struct Setting {
  unsigned rounds = kDefaultRounds;  // iterations of the final loop
  bool rounds_given = false;         // "rounds=N$" was present (then it is repeated in the output)
  std::string_view salt;             // at most 16 characters
  std::string_view hash;             // what follows the salt's '$' (empty for a bare setting)
};

bool parse_setting(std::string_view s, Setting& out) {
  if (!s.starts_with(kPrefix)) return false;
  s.remove_prefix(kPrefix.size());
  if (s.starts_with(kRoundsPrefix)) {
    s.remove_prefix(kRoundsPrefix.size());
    size_t end = s.find('$');
    if (end == std::string_view::npos || end == 0) return false;
    unsigned long long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + end, n);
    if (ec != std::errc() || p != s.data() + end) return false;
    out.rounds = static_cast<unsigned>(n < kMinRounds ? kMinRounds : n > kMaxRounds ? kMaxRounds : n);
    out.rounds_given = true;
    s.remove_prefix(end + 1);
  }
  size_t end = s.find('$');
  out.salt = s.substr(0, std::min(end, kMaxSalt));
  out.hash = end == std::string_view::npos ? std::string_view{} : s.substr(end + 1);
  if (end != std::string_view::npos && end > kMaxSalt) return false;  // we would not reproduce it
  for (char c : out.salt)
    if (c == ':' || c == '\n' || c == '\r' || c == '\0') return false;
  return true;
}

bool well_formed_hash(std::string_view hash) {
  if (hash.size() != kHashChars) return false;
  for (char c : hash)
    if (kB64.find(c) == std::string_view::npos) return false;
  return true;
}

bool valid_user_name(std::string_view user) {
  if (user.empty() || user.size() > 255) return false;
  for (unsigned char c : user)
    if (c <= 32 || c == 127 || c == ':') return false;
  return true;
}

}  // namespace

Result<std::string> sha512_crypt(std::string_view key, std::string_view setting_text, const EVP_MD* md) {
  Setting setting;
  if (!parse_setting(setting_text, setting)) return make_error("not a SHA-512-crypt ($6$) setting");
  EVP_MD* fetched = nullptr;
  if (md == nullptr) md = fetched = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  Sha512 ctx(md), alt(md);
  if (!ctx.ok() || !alt.ok()) {
    EVP_MD_free(fetched);
    return make_error("SHA-512 is not available from OpenSSL");
  }
  std::string_view salt = setting.salt;
  Digest a, b, dp, ds;
  // Steps 1-8: digest B = SHA512(key salt key).
  alt.begin();
  alt.add(key);
  alt.add(salt);
  alt.add(key);
  alt.finish(b);
  // Steps 1-3, 9-12: digest A = SHA512(key salt B-repeated-to-key-length, then B or key per bit of the length).
  ctx.begin();
  ctx.add(key);
  ctx.add(salt);
  size_t n = key.size();
  for (; n > 64; n -= 64) ctx.add(b.data(), 64);
  ctx.add(b.data(), n);
  for (n = key.size(); n > 0; n >>= 1) {
    if (n & 1) ctx.add(b.data(), 64);
    else ctx.add(key);
  }
  ctx.finish(a);
  // Steps 13-16: the P sequence, from SHA512(key repeated key-length times).
  alt.begin();
  for (size_t i = 0; i < key.size(); ++i) alt.add(key);
  alt.finish(dp);
  std::string p(key.size(), '\0');
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>(dp[i % 64]);
  // Steps 17-20: the S sequence, from SHA512(salt repeated 16 + A[0] times).
  alt.begin();
  for (unsigned i = 0; i < 16u + a[0]; ++i) alt.add(salt);
  alt.finish(ds);
  std::string s(salt.size(), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(ds[i]);
  // Step 21: the rounds.
  for (unsigned r = 0; r < setting.rounds; ++r) {
    ctx.begin();
    if (r & 1) ctx.add(p);
    else ctx.add(a.data(), 64);
    if (r % 3 != 0) ctx.add(s);
    if (r % 7 != 0) ctx.add(p);
    if (r & 1) ctx.add(a.data(), 64);
    else ctx.add(p);
    ctx.finish(a);
  }
  std::string out(kPrefix);
  if (setting.rounds_given) out += std::string(kRoundsPrefix) + std::to_string(setting.rounds) + "$";
  out += salt;
  out += '$';
  // Step 22: crypt's base64 of A in the order the specification gives for SHA-512.
  static constexpr std::array<std::array<int, 3>, 21> kOrder{{
      {0, 21, 42},  {22, 43, 1},  {44, 2, 23},  {3, 24, 45},  {25, 46, 4},  {47, 5, 26},  {6, 27, 48},
      {28, 49, 7},  {50, 8, 29},  {9, 30, 51},  {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
      {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
  }};
  for (const auto& t : kOrder) append_b64_24(a[t[0]], a[t[1]], a[t[2]], 4, out);
  append_b64_24(0, 0, a[63], 2, out);
  OPENSSL_cleanse(p.data(), p.size());
  OPENSSL_cleanse(dp.data(), dp.size());
  EVP_MD_free(fetched);
  return out;
}

CredentialStore::CredentialStore() : sha512_(EVP_MD_fetch(nullptr, "SHA512", nullptr)) {}

CredentialStore::~CredentialStore() { EVP_MD_free(sha512_); }

Result<std::unique_ptr<CredentialStore>> CredentialStore::parse(std::string_view text, std::string_view origin) {
  std::unique_ptr<CredentialStore> store(new CredentialStore());
  if (store->sha512_ == nullptr) return make_error("{}: SHA-512 is not available from OpenSSL", origin);
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return make_error("{}:{}: expected user:$6$salt$hash (make the hash with `openssl passwd -6`)", origin, line_no);
    std::string_view user = line.substr(0, colon);
    std::string_view hash = line.substr(colon + 1);
    if (!valid_user_name(user))
      return make_error("{}:{}: bad user name (printable characters, no blanks or ':', at most 255)", origin, line_no);
    Setting setting;
    if (!parse_setting(hash, setting) || !well_formed_hash(setting.hash))
      return make_error("{}:{}: user {}: the password must be a SHA-512-crypt hash ($6$..., from `openssl passwd -6`); "
                        "plain-text passwords are not accepted",
                        origin, line_no, user);
    if (!store->users_.emplace(std::string(user), std::string(hash)).second)
      return make_error("{}:{}: user {} appears twice", origin, line_no, user);
  }
  return store;
}

Result<std::unique_ptr<CredentialStore>> CredentialStore::load(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return make_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("{}: not a regular file", path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return make_error("{}: is accessible by group or others (mode {:04o}); it holds password hashes: chmod 600 it",
                      path, st.st_mode & 07777);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileSize) {
    ::close(fd);
    return make_error("{}: larger than {} bytes", path, kMaxFileSize);
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t r = ::read(fd, text.data() + got, text.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  text.resize(got);
  return parse(text, path);
}

bool CredentialStore::verify(std::string_view user, std::string_view password) const {
  auto it = users_.find(std::string(user));
  std::string_view stored = it == users_.end() ? kUnknownUserSetting : std::string_view(it->second);
  auto computed = sha512_crypt(password, stored, sha512_);
  if (!computed || it == users_.end()) return false;
  return computed->size() == stored.size() && CRYPTO_memcmp(computed->data(), stored.data(), stored.size()) == 0;
}

}  // namespace ringmail::engine
