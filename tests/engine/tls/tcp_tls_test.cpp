// TcpConnection's TLS layer: a client and a server TcpConnection on one loop over a socketpair do a
// STARTTLS-style switch (clear "220", then the handshake), exchange data both ways and close with
// close_notify; a verification failure reaches the owner as on_tls_failed with the right kind.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

#include "engine/net/tcp_connection.h"
#include "tests/engine/tls/test_certs.h"

namespace ringmail::engine {
namespace {

using tls::testing::TestCertificates;

// Server side: sends a clear "220 go" and starts TLS at once; then echoes every plaintext line.
struct Server : TcpConnection::Handler {
  TcpConnection* conn = nullptr;
  tls::TlsContext* ctx = nullptr;
  std::string received;
  bool ready = false;
  std::string failed;
  bool released = false;
  int* live = nullptr;
  Loop* loop = nullptr;
  void greet() {
    conn->out() += "220 go\r\n";
    ASSERT_TRUE(conn->start_tls(*ctx, nullptr).ok());
  }
  void on_data(std::string_view b) override {
    received.append(b);
    conn->out().append(b);  // echo, encrypted
    conn->flush();
  }
  void on_tls_ready() override { ready = true; }
  void on_tls_failed(tls::FailureKind, std::string_view text) override {
    failed.assign(text);
    conn->abort();
  }
  void on_peer_closed(int) override { conn->close_after_flush(); }
  void on_released() override {
    released = true;
    if (--*live == 0) loop->stop();
  }
};

// Client side: waits for the clear 220, starts TLS, sends a line, closes after the echo.
struct Client : TcpConnection::Handler {
  TcpConnection* conn = nullptr;
  tls::TlsContext* ctx = nullptr;
  tls::ClientParams params;
  std::string clear, echoed;
  bool ready = false;
  tls::FailureKind failure = tls::FailureKind::kNone;
  std::string failed;
  std::string version, cipher;
  bool released = false;
  int* live = nullptr;
  Loop* loop = nullptr;
  void on_data(std::string_view b) override {
    if (!ready) {
      clear.append(b);
      if (clear.find("\r\n") != std::string::npos) {
        ASSERT_TRUE(conn->start_tls(*ctx, &params).ok());
      }
      return;
    }
    echoed.append(b);
    if (echoed.size() >= 12) conn->close_after_flush();
  }
  void on_tls_ready() override {
    ready = true;
    version = std::string(conn->tls()->version());
    cipher = std::string(conn->tls()->cipher());
    conn->out() += "EHLO tls.te\r\n";
    conn->flush();
  }
  void on_tls_failed(tls::FailureKind kind, std::string_view text) override {
    failure = kind;
    failed.assign(text);
    conn->abort();
  }
  void on_peer_closed(int) override { conn->abort(); }
  void on_released() override {
    released = true;
    if (--*live == 0) loop->stop();
  }
};

struct Rig {
  std::unique_ptr<Loop> loop;
  int sv[2] = {-1, -1};
  int live = 2;
  Server server;
  Client client;
  std::unique_ptr<TcpConnection> sconn, cconn;
  Rig(tls::TlsContext& sctx, tls::TlsContext& cctx, tls::ClientParams params) {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    auto l = Loop::create(LoopOptions{.sq_entries = 64, .cq_entries = 256, .buffer_count = 16, .buffer_size = 1024});
    EXPECT_TRUE(l.ok());
    loop = std::move(*l);
    server.ctx = &sctx;
    client.ctx = &cctx;
    client.params = params;
    server.live = client.live = &live;
    server.loop = client.loop = loop.get();
    sconn = std::make_unique<TcpConnection>(*loop, sv[0], server);
    cconn = std::make_unique<TcpConnection>(*loop, sv[1], client);
    server.conn = sconn.get();
    client.conn = cconn.get();
    sconn->start();
    cconn->start();
    server.greet();
    loop->run();
  }
};

TEST(TcpConnectionTls, StartTlsSwitchesBothEndsAndCarriesData) {
  TestCertificates certs;
  auto sctx = tls::TlsContext::server({certs.cert_file(), certs.key_file()});
  auto cctx = tls::TlsContext::client({certs.ca_file(), 16});
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  Rig rig(**sctx, **cctx, {"mx.example.test", true, "mx.example.test", "mx.example.test:25|verify"});
  EXPECT_EQ(rig.client.clear, "220 go\r\n");  // the greeting came in clear, before any record
  EXPECT_TRUE(rig.client.ready) << rig.client.failed;
  EXPECT_TRUE(rig.server.ready) << rig.server.failed;
  EXPECT_EQ(rig.server.received, "EHLO tls.te\r\n");
  EXPECT_EQ(rig.client.echoed, "EHLO tls.te\r\n");
  EXPECT_EQ(rig.client.version, "TLSv1.3");
  EXPECT_FALSE(rig.client.cipher.empty());
  EXPECT_TRUE(rig.client.released);
  EXPECT_TRUE(rig.server.released);
  // The ticket came with the echo and close_notify was sent: the next hop's session is cached.
  EXPECT_EQ((*cctx)->sessions().size(), 1u);
}

TEST(TcpConnectionTls, VerificationFailureReachesTheOwner) {
  TestCertificates certs;
  auto sctx = tls::TlsContext::server({certs.self_signed_cert_file(), certs.self_signed_key_file()});
  auto cctx = tls::TlsContext::client({certs.ca_file(), 16});
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  Rig rig(**sctx, **cctx, {"mx.example.test", true, "mx.example.test", {}});
  EXPECT_FALSE(rig.client.ready);
  EXPECT_EQ(rig.client.failure, tls::FailureKind::kChainInvalid) << rig.client.failed;
  EXPECT_NE(rig.client.failed.find("self-signed"), std::string::npos) << rig.client.failed;
  EXPECT_FALSE(rig.server.ready);
  EXPECT_TRUE(rig.server.received.empty());
  EXPECT_TRUE(rig.client.released && rig.server.released);
}

// release_idle_buffers() releases only after kIdleRelease without traffic: the server says it is
// idle after every echo; the client sends a second line 200 ms after the first echo (no release
// yet), then stays quiet for 800 ms (one release, 500 ms after the second echo), then closes.
struct IdleServer : Server {
  void on_output_drained() override {
    if (ready) conn->release_idle_buffers();
  }
};
struct After final : Timer {
  std::function<void()> fn;
  void fire() override { fn(); }
};
struct PausingClient : Client {
  After later;
  int lines = 0;
  unsigned server_releases_before_second = 99, server_releases_at_end = 99;
  TcpConnection* server_conn = nullptr;
  void on_data(std::string_view b) override {
    if (!ready) return Client::on_data(b);
    echoed.append(b);
    if (echoed.find("\r\n") == std::string::npos) return;
    echoed.clear();
    if (++lines == 1) {
      later.fn = [this] {
        server_releases_before_second = server_conn->idle_releases();
        conn->out() += "NOOP\r\n";
        conn->flush();
      };
      loop->timers().arm(later, loop->now(), std::chrono::milliseconds(200));
    } else {
      later.fn = [this] {
        server_releases_at_end = server_conn->idle_releases();
        conn->close_after_flush();
      };
      loop->timers().arm(later, loop->now(), std::chrono::milliseconds(800));
    }
  }
};

TEST(TcpConnectionTls, IdleBuffersAreReleasedOnlyAfterTheIdleTime) {
  TestCertificates certs;
  auto sctx = tls::TlsContext::server({certs.cert_file(), certs.key_file()});
  auto cctx = tls::TlsContext::client({certs.ca_file(), 16});
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  auto l = Loop::create(LoopOptions{.sq_entries = 64, .cq_entries = 256, .buffer_count = 16, .buffer_size = 1024});
  ASSERT_TRUE(l.ok());
  std::unique_ptr<Loop> loop = std::move(*l);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  int live = 2;
  IdleServer server;
  PausingClient client;
  server.ctx = sctx->get();
  client.ctx = cctx->get();
  client.params = {"mx.example.test", false, {}, {}};
  server.live = client.live = &live;
  server.loop = client.loop = loop.get();
  TcpConnection sconn(*loop, sv[0], server), cconn(*loop, sv[1], client);
  server.conn = &sconn;
  client.conn = &cconn;
  client.server_conn = &sconn;
  sconn.start();
  cconn.start();
  server.greet();
  loop->run();
  EXPECT_EQ(server.received, "EHLO tls.te\r\nNOOP\r\n");
  EXPECT_EQ(client.lines, 2);
  EXPECT_EQ(client.server_releases_before_second, 0u);  // 200 ms idle: buffers kept
  EXPECT_EQ(client.server_releases_at_end, 1u);         // 800 ms idle: released once
  EXPECT_EQ(cconn.idle_releases(), 0u);                 // the client never said it was idle
}

TEST(TcpConnectionTls, StartTlsWithTheWrongRoleIsRefused) {
  TestCertificates certs;
  auto cctx = tls::TlsContext::client({"", 16});
  ASSERT_TRUE(cctx.ok());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto loop = Loop::create(LoopOptions{.sq_entries = 16, .cq_entries = 64, .buffer_count = 4, .buffer_size = 1024});
  ASSERT_TRUE(loop.ok());
  Client h;
  TcpConnection conn(**loop, sv[0], h);
  EXPECT_FALSE(conn.start_tls(**cctx, nullptr).ok());  // client context, server role
  EXPECT_EQ(conn.tls(), nullptr);
  close(sv[1]);
}

}  // namespace
}  // namespace ringmail::engine
