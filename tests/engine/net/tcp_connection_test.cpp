#include "engine/net/tcp_connection.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace ringmail::engine {
namespace {

// An echo handler: everything received is sent back; released when the peer closes.
struct Echo : TcpConnection::Handler {
  Loop& loop;
  TcpConnection* conn = nullptr;
  size_t received = 0;
  bool released = false;
  explicit Echo(Loop& l) : loop(l) {}
  void on_data(std::string_view b) override {
    received += b.size();
    conn->out().append(b);
    conn->flush();
  }
  void on_peer_closed(int) override { conn->close_after_flush(); }
  void on_released() override {
    released = true;
    loop.stop();
  }
};

TEST(TcpConnection, EchoesLargeTransfersInOrderAndReleasesAfterClose) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto loop = Loop::create(LoopOptions{.sq_entries = 64, .cq_entries = 256, .buffer_count = 8, .buffer_size = 1024});
  ASSERT_TRUE(loop.ok());
  Echo echo(**loop);
  TcpConnection conn(**loop, sv[0], echo);
  echo.conn = &conn;
  conn.start();
  // 2 MiB through 8 buffers of 1 KiB forces -ENOBUFS re-arms and short sends.
  std::string payload(2 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 % 251);
  std::string back;
  std::thread peer([&] {
    std::thread writer([&] {
      size_t off = 0;
      while (off < payload.size()) {
        ssize_t n = write(sv[1], payload.data() + off, std::min<size_t>(65536, payload.size() - off));
        ASSERT_GT(n, 0);
        off += static_cast<size_t>(n);
      }
      shutdown(sv[1], SHUT_WR);
    });
    char buf[65536];
    for (;;) {
      ssize_t n = read(sv[1], buf, sizeof buf);
      if (n <= 0) break;
      back.append(buf, static_cast<size_t>(n));
    }
    writer.join();
  });
  (*loop)->run();
  peer.join();
  close(sv[1]);
  EXPECT_TRUE(echo.released);
  EXPECT_EQ(echo.received, payload.size());
  EXPECT_EQ(back.size(), payload.size());
  EXPECT_TRUE(back == payload);
}

}  // namespace
}  // namespace ringmail::engine
