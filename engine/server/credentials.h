// The credentials of submission clients for SMTP AUTH (--auth-file): one "user:$6$salt$hash" line
// per user, the SHA-512-crypt form of /etc/shadow (make one with `openssl passwd -6`). Loaded once
// at start-up, read-only afterwards (shared by the workers). Passwords are never kept or logged;
// only the hashes are held. No plain-text passwords: a line without a $6$ hash is an error.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"

typedef struct evp_md_st EVP_MD;

namespace ringmail::engine {

class CredentialStore {
 public:
  // Reads the file. Refused (with the reason) when it cannot be read, is not a regular file, is
  // readable or writable by group or others, or has a bad line (reported as FILE:LINE).
  static Result<std::unique_ptr<CredentialStore>> load(const std::string& path);
  // Parses file text; `origin` names it in errors. No permission check (tests).
  static Result<std::unique_ptr<CredentialStore>> parse(std::string_view text, std::string_view origin);
  ~CredentialStore();
  CredentialStore(const CredentialStore&) = delete;
  CredentialStore& operator=(const CredentialStore&) = delete;

  // True when `user` exists and `password` hashes to its entry. Costs one SHA-512-crypt (5000
  // rounds by default: about 2.6 ms on the 2-vCPU build VM) whether or not the user exists, so the answer
  // time does not tell which user names exist. Thread-safe.
  bool verify(std::string_view user, std::string_view password) const;
  size_t size() const { return users_.size(); }

 private:
  CredentialStore();

  std::unordered_map<std::string, std::string> users_;  // user name → "$6$..." hash
  EVP_MD* sha512_ = nullptr;                             // fetched once (OpenSSL 3: no fetch per digest)
};

// SHA-512-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", the $6$ of glibc and
// `openssl passwd -6`): hashes `password` with the salt and rounds of `setting` ("$6$salt",
// "$6$rounds=N$salt", or a complete hash, whose hash part is ignored). Returns the full
// "$6$[rounds=N$]salt$hash" string, or an error for a malformed setting.
Result<std::string> sha512_crypt(std::string_view password, std::string_view setting, const EVP_MD* sha512 = nullptr);

}  // namespace ringmail::engine
