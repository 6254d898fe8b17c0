// One outbound SMTP connection: connects (io_uring CONNECT linked to a timeout), then glues the
// client protocol state machine (smtp::ClientSession, pure) to a TcpConnection and a protocol
// timer, taking transactions from its next hop's queue and reporting results to Delivery. It also
// applies the connector's TLS policy (none / opportunistic / required / verify) with this worker's
// client TLS contexts and session cache, and hands the session the smart-host credentials.
#pragma once

#include <linux/time_types.h>

#include <memory>
#include <string>

#include "common/net.h"
#include "engine/delivery/delivery.h"
#include "engine/loop/loop.h"
#include "engine/net/tcp_connection.h"
#include "engine/smtp/client_session.h"

namespace ringmail::engine {

class OutboundSession final : public TcpConnection::Handler, public smtp::ClientHooks, private Timer {
 public:
  // host_name: the MX exchange `host` belongs to (TLS name check and SNI), or empty.
  OutboundSession(Delivery& delivery, NextHop& hop, const SocketAddress& host, const std::string& host_name = {});
  ~OutboundSession() override;

  void start();                 // connect
  void offer();                 // new work for an idle session
  void shutdown(bool now = false);  // QUIT if idle, finish a transaction under way, else cut (now: cut)
  NextHop& hop() { return hop_; }

 private:
  struct ConnectOp final : Completion {
    OutboundSession* s = nullptr;
    void on_complete(const io_uring_cqe& cqe) override { s->on_connect(cqe.res); }
  };
  struct TimeoutOp final : Completion {
    OutboundSession* s = nullptr;
    void on_complete(const io_uring_cqe&) override { s->on_connect_timeout_cqe(); }
  };

  // TcpConnection::Handler
  void on_data(std::string_view bytes) override;
  void on_peer_closed(int error) override;
  void on_output_drained() override;
  void on_released() override;
  void on_tls_ready() override;
  void on_tls_failed(tls::FailureKind kind, std::string_view text) override;
  // smtp::ClientHooks
  const smtp::OutboundTransaction* next_transaction() override;
  void on_recipient_result(const smtp::OutboundTransaction& txn, size_t rcpt_index,
                           const smtp::DeliveryOutcome& outcome) override;
  void on_transaction_done(const smtp::OutboundTransaction& txn) override;
  void on_session_result(const smtp::DeliveryOutcome& outcome) override;
  void on_transcript(smtp::TranscriptKind kind, std::string_view line) override;
  // Timer
  void fire() override;

  void on_connect(int res);
  void on_connect_timeout_cqe();
  void act(smtp::ClientAction action);
  void connect_failed(std::string why);
  void maybe_release();
  Status start_tls();
  void log_line(char event, std::string_view text);  // to the protocol log, if this connector has one

  Delivery& delivery_;
  NextHop& hop_;
  SocketAddress host_;                    // where we connect
  std::string host_text_;                 // "[ip]:port" for logs and DSN Remote-MTA
  std::string tls_name_;                  // verify: the name the certificate must carry; also the SNI
  smtp::ClientConfig config_;             // hop.client plus this host's STARTTLS policy and credentials
  smtp::ClientSession client_;            // the protocol
  std::unique_ptr<TcpConnection> conn_;   // after the connect succeeded
  std::string out_;                       // protocol output, moved into conn_
  int fd_ = -1;                           // socket until handed to conn_
  __kernel_timespec connect_timeout_{};   // must live until the SQE is submitted
  ConnectOp connect_op_;
  TimeoutOp timeout_op_;
  unsigned connect_cqes_pending_ = 0;     // CONNECT and LINK_TIMEOUT completions to wait for
  DeliveryWork* current_ = nullptr;       // the transaction in progress
  bool was_idle_ = false;                 // registered as idle with the next hop
  bool opening_ = true;                   // connecting / greeting / EHLO / STARTTLS / AUTH: counted in NextHop::opening
  bool released_ = false;                 // handed back to Delivery
  bool closed_ = false;                   // finished: no more protocol events
  ProtocolLog* protocol_log_ = nullptr;   // the connector has protocol_log = true (and the daemon a directory)
  std::string log_name_;                  // this session's name in the protocol log
};

}  // namespace ringmail::engine
