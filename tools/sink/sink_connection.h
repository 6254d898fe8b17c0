// One inbound connection of ringmail-sink: glues the pure Responder to a TcpConnection on the
// worker's ring, applies --delay-ms with an intrusive timer, switches to TLS after STARTTLS, and
// reports accepted messages and handshakes to the counters and the recorder. Freed only from
// on_released() (never inside its own handlers).
#pragma once

#include <string>

#include "common/net.h"
#include "engine/loop/timer_wheel.h"
#include "engine/net/tcp_connection.h"
#include "tools/sink/responder.h"

namespace ringmail::sink {

class SinkWorker;

class SinkConnection final : public engine::TcpConnection::Handler, public ResponderHooks, private engine::Timer {
 public:
  SinkConnection(SinkWorker& worker, int fd, const std::string& listen_name, const SocketAddress& peer);
  ~SinkConnection() override = default;

  void start();
  // Worker shutdown: send what is queued (delayed replies too); the client may still QUIT.
  void stop();
  void abort();

  // Intrusive membership in the worker's connection list.
  SinkConnection* prev = nullptr;
  SinkConnection* next = nullptr;

 private:
  // TcpConnection::Handler
  void on_data(std::string_view bytes) override;
  void on_peer_closed(int error) override;
  void on_tls_ready() override;
  void on_tls_failed(tls::FailureKind kind, std::string_view text) override;
  void on_released() override;
  // ResponderHooks
  uint64_t next_message_number() override;
  void message_accepted(const Transaction& t, uint64_t number) override;
  void fault_injected(FaultKind kind) override;
  // Timer: --delay-ms elapsed
  void fire() override;

  void act(Verdict v);
  void begin_tls();             // after the 220 to STARTTLS: switch the connection to TLS
  std::string& reply_buffer();  // where the responder writes: the socket, or the delay queue

  SinkWorker& worker_;
  const std::string& listen_name_;  // the listener this connection came in on
  SocketAddress peer_;              // the client
  Responder responder_;             // the protocol
  engine::TcpConnection conn_;      // the socket
  std::string delayed_;             // replies held back by --delay-ms
  bool close_when_sent_ = false;    // QUIT/421 seen while replies are delayed
};

}  // namespace ringmail::sink
