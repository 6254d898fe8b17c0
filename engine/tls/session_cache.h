// Client TLS session-resumption cache of one worker, keyed by next hop ("host:port|policy"), as
// platform-notes §2.2 describes: OpenSSL's internal store is off and this map owns one reference to
// each SSL_SESSION. Single-threaded (one per worker's client TlsContext); bounded in size.
// Deciding when a session may be resumed is OpenSSL's job; this is only the storage.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

typedef struct ssl_session_st SSL_SESSION;

namespace ringmail::tls {

class SessionCache {
 public:
  explicit SessionCache(size_t capacity = 4096) : capacity_(capacity) {}
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  // Takes ownership of one reference to `session` (replacing what `key` held).
  void store(std::string_view key, SSL_SESSION* session);
  // The session for `key` (still owned by the cache; SSL_set_session takes its own reference), or null.
  SSL_SESSION* find(std::string_view key) const;
  // Forgets `key` (a broken or refused handshake must not be resumed).
  void erase(std::string_view key);
  size_t size() const { return map_.size(); }
  uint64_t stores() const { return stores_; }  // sessions received since start (for stats)

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  size_t capacity_;                                                         // entries kept at most
  std::unordered_map<std::string, SSL_SESSION*, Hash, std::equal_to<>> map_;  // key → owned reference
  uint64_t stores_ = 0;                                                     // store() calls
};

}  // namespace ringmail::tls
