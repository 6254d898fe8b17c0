#include "engine/loop/ring_file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ringmail::engine {
namespace {

// Records the result and stops the loop, so run() returns exactly when the operation completed.
struct Recorder : queue::FileIo::Op {
  Loop* loop = nullptr;
  int result = 1;
  bool done = false;
  void complete(int r) override {
    result = r;
    done = true;
    if (loop) loop->stop();
  }
};

TEST(RingFileIo, WriteSyncReadRoundTrip) {
  char path[] = "/tmp/ringmail-fileio-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  auto loop = Loop::create(LoopOptions{});
  ASSERT_TRUE(loop.ok());
  RingFileIo io(**loop);
  std::string data(1 << 20, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  Recorder w, s, r;
  std::string back(data.size(), '\0');
  io.write(fd, data.data(), data.size(), 4096, &w);
  EXPECT_FALSE(w.done);  // never completes inside the call
  // Drive the loop until each operation completes (the recorder stops it); ctest's timeout bounds a hang.
  auto spin = [&](Recorder& rec) {
    rec.loop = loop->get();
    if (!rec.done) (*loop)->run();
  };
  spin(w);
  ASSERT_TRUE(w.done);
  EXPECT_EQ(w.result, static_cast<int>(data.size()));
  io.datasync(fd, &s);
  spin(s);
  EXPECT_EQ(s.result, 0);
  io.read(fd, back.data(), back.size(), 4096, &r);
  spin(r);
  EXPECT_EQ(r.result, static_cast<int>(back.size()));
  EXPECT_EQ(back, data);
  // Reading past the end is an error, not a silent short read.
  Recorder past;
  io.read(fd, back.data(), back.size(), 8 << 20, &past);
  spin(past);
  EXPECT_LT(past.result, 0);
  EXPECT_EQ(io.in_flight(), 0u);
  close(fd);
  unlink(path);
}

TEST(RingFileIo, ErrorsAreReported) {
  auto loop = Loop::create(LoopOptions{});
  ASSERT_TRUE(loop.ok());
  RingFileIo io(**loop);
  Recorder w;
  char c = 'x';
  w.loop = loop->get();
  io.write(-1, &c, 1, 0, &w);  // bad descriptor
  (*loop)->run();
  ASSERT_TRUE(w.done);
  EXPECT_EQ(w.result, -EBADF);
}

}  // namespace
}  // namespace ringmail::engine
