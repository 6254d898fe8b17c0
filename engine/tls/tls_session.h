// One TLS session over our own in-memory BIO (the pattern of platform-notes §2.1 without the copies
// of BIO_s_mem), for either role. It has no I/O of its own: the transport hands it the ciphertext
// it received (read_input, or feed + read) and gets plaintext back, hands
// it plaintext to encrypt (write) and sends whatever ciphertext it produced (take_output). The
// handshake advances inside read(); its result says which check failed when it fails. Never
// throws; OpenSSL's error queue is emptied into the failure text. Not thread-safe (one worker).
//
// Client use: start_client({sni, verify, verify_name, cache_key}) → take_output (ClientHello) →
// feed/read until established() → write/read; close() before destruction after a clean end so the
// cached session stays resumable (platform-notes §2.2 pitfall). Server use: start_server().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "engine/tls/tls_context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct ssl_session_st SSL_SESSION;

namespace ringmail::tls {

// Which check failed (for logs, DSN diagnostics and policy decisions).
enum class FailureKind : uint8_t {
  kNone,           // no failure
  kNoCertificate,  // the peer presented no certificate although we verify
  kChainInvalid,   // the chain does not lead to a trusted CA (self-signed, expired, unknown issuer, ...)
  kNameMismatch,   // the chain is fine but the certificate does not carry the expected name
  kHandshake,      // the handshake itself failed (no shared protocol/cipher, alert from the peer, garbage)
  kClosed,         // the peer closed the connection before the handshake finished
  kProtocol,       // a TLS error after the handshake (bad record, MAC failure)
};
std::string_view failure_kind_name(FailureKind k);  // "certificate name mismatch", ...

struct ClientParams {
  std::string_view sni;          // server name sent in the ClientHello (empty: none, e.g. an IP)
  bool verify = false;           // check chain and name; a failure ends the handshake
  std::string_view verify_name;  // the name the certificate must carry (verify only)
  std::string_view cache_key;    // next hop key for resumption; empty: no resumption
};

enum class TlsState : uint8_t {
  kIdle,         // not started
  kHandshaking,  // handshake in progress
  kEstablished,  // application data flows
  kClosed,       // the peer sent close_notify or EOF after the handshake
  kFailed,       // see failure()
};

class TlsSession {
 public:
  explicit TlsSession(TlsContext& context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Starts the handshake in the client role; the ClientHello is then in take_output().
  Status start_client(const ClientParams& params);
  // Starts in the server role; waits for the ClientHello.
  Status start_server();

  // Ciphertext received from the peer (copied). Call read() afterwards.
  void feed(std::string_view ciphertext);
  // The peer closed its side of the TCP connection.
  void feed_eof();
  // Advances the handshake and appends any decrypted application data to `plain`. Returns the state
  // afterwards; output (handshake messages, alerts) may be waiting in take_output() either way.
  TlsState read(std::string& plain);
  // feed() + read() without the copy: OpenSSL reads `ciphertext` in place during the call, and
  // only the bytes it leaves (a partial record) are kept for next time.
  TlsState read_input(std::string_view ciphertext, std::string& plain);
  // Encrypts `plain` (only once established; otherwise an error). The records go to take_output().
  Status write(std::string_view plain);
  // Queues close_notify, so the session may be resumed later; harmless in any state.
  void close();

  bool has_output() const;
  // Appends the ciphertext waiting to be sent to `out` (swaps when `out` is empty) and empties ours.
  void take_output(std::string& out);
  // Returns OpenSSL's record buffers and our empty input/output strings to the allocator (idle).
  void release_buffers();

  TlsState state() const { return state_; }
  bool established() const { return state_ == TlsState::kEstablished; }
  FailureKind failure() const { return failure_; }
  const std::string& failure_text() const { return failure_text_; }  // "certificate name mismatch: ..."

  // Facts about the established session (empty before).
  std::string_view version() const;  // "TLSv1.3"
  std::string_view cipher() const;   // "TLS_AES_256_GCM_SHA384"
  int cipher_bits() const;
  bool resumed() const;
  bool peer_has_certificate() const;
  std::string peer_subject() const;  // one line, e.g. "CN=mx.example.com"
  std::string_view sni() const;      // server role: the name the client asked for

  // Internal: called from the context's new-session callback. Takes ownership when it returns true.
  bool on_new_session(SSL_SESSION* session);

 private:
  struct Io;  // our BIO method: reads in_, appends to out_
  Status start_common();
  TlsState advance(std::string& plain);  // the handshake, then SSL_read until in_ is used up
  void fail(FailureKind kind, std::string text);
  void classify_handshake_failure();

  TlsContext& context_;        // role, trust store, session cache
  SSL* ssl_ = nullptr;         // owns our BIO (one object both ways)
  std::string_view in_;        // ciphertext OpenSSL reads next (a received chunk or held_in_), during read only
  std::string held_in_;        // ciphertext received but not yet read (feed(), or a partial record)
  std::string out_;            // ciphertext OpenSSL produced, not yet taken
  TlsState state_ = TlsState::kIdle;      // see TlsState
  FailureKind failure_ = FailureKind::kNone;  // set with state_ = kFailed
  std::string failure_text_;   // which check failed, with OpenSSL's words
  std::string cache_key_;      // client: next hop key for the session cache
  bool verify_ = false;        // client: chain and name are checked
  bool clean_ = false;         // close() queued close_notify: SSL_free keeps the session resumable
  bool eof_fed_ = false;       // feed_eof() was called: read() must go on until OpenSSL reports it
};

}  // namespace ringmail::tls
