// SessionCache implementation (see session_cache.h).
#include "engine/tls/session_cache.h"

#include <openssl/ssl.h>

namespace ringmail::tls {

SessionCache::~SessionCache() {
  for (auto& [key, s] : map_) SSL_SESSION_free(s);
}

void SessionCache::store(std::string_view key, SSL_SESSION* session) {
  ++stores_;
  auto it = map_.find(key);
  if (it != map_.end()) {
    SSL_SESSION_free(it->second);
    it->second = session;
    return;
  }
  if (map_.size() >= capacity_) {
    // Full: drop an arbitrary entry. Next hops far outnumbering the capacity is rare, and a lost
    // entry only costs one full handshake.
    auto victim = map_.begin();
    SSL_SESSION_free(victim->second);
    map_.erase(victim);
  }
  map_.emplace(std::string(key), session);
}

SSL_SESSION* SessionCache::find(std::string_view key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : it->second;
}

void SessionCache::erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  SSL_SESSION_free(it->second);
  map_.erase(it);
}

}  // namespace ringmail::tls
