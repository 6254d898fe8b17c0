// One inbound SMTP connection: glues the protocol state machine (smtp::ServerSession, pure) to a
// TcpConnection on the worker's ring, a protocol timer, and the worker's spool writer. The
// listener's promise lives here: the 250 for a message is produced only by the spool's commit
// callback, i.e. after the fdatasync that covers the message. STARTTLS: the session's kStartTls
// switches the connection to TLS with the worker's server context; the protocol timer bounds the
// handshake; a failed or timed-out handshake is logged and the connection dropped (no clear-text 421).
#pragma once

#include <string>

#include "engine/loop/loop.h"
#include "engine/net/tcp_connection.h"
#include "engine/smtp/server_session.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"

namespace ringmail::engine {

class Worker;

class InboundSession final : public TcpConnection::Handler,
                             public smtp::ServerHooks,
                             public queue::CommitCallback,
                             private Timer {
 public:
  InboundSession(Worker& worker, int fd, const smtp::PeerInfo& peer);
  ~InboundSession() override;

  void start();
  // Worker shutdown: idle sessions get 421 now; a session in DATA or waiting for the spool is
  // allowed to finish its message first (the worker aborts stragglers after a grace period).
  void shutdown();
  void abort() { conn_.abort(); }
  bool busy() const { return commit_pending_ || session_.in_data(); }

  // Intrusive membership in the worker's session list.
  InboundSession* prev = nullptr;
  InboundSession* next = nullptr;

 private:
  // TcpConnection::Handler
  void on_data(std::string_view bytes) override;
  void on_peer_closed(int error) override;
  void on_released() override;
  void on_output_drained() override;
  void on_tls_ready() override;
  void on_tls_failed(tls::FailureKind kind, std::string_view text) override;
  // smtp::ServerHooks
  std::string new_queue_id() override;
  void on_reject(std::string_view command, std::string_view argument, std::string_view reply) override;
  WallTime now() override;
  bool verify_credentials(std::string_view user, std::string_view password) override;
  // queue::CommitCallback
  void committed(queue::QueueId id, Status status) override;
  // Timer
  void fire() override;

  void act(smtp::Action action);
  void start_tls();
  void maybe_free();

  Worker& worker_;
  smtp::PeerInfo peer_;             // remote address and relay permission
  smtp::ServerSession session_;     // the protocol
  TcpConnection conn_;              // the socket
  std::string out_;                 // replies produced by the protocol, moved into conn_.out()
  bool commit_pending_ = false;     // a message is in the spool writer, waiting for its sync
  bool connection_released_ = false;// the TcpConnection finished; free when no commit is pending
  bool shutting_down_ = false;      // 421 sent or to be sent after the current message
  queue::QueueId current_id_ = 0;   // queue id handed out for the current transaction
  queue::StoredEnvelope committing_;  // the envelope being committed (handed to delivery after)
  queue::MessageLocation committing_at_;  // where the spool writes it
  std::string committing_message_id_;     // its Message-ID, when the worker keeps a tracking log
};

}  // namespace ringmail::engine
