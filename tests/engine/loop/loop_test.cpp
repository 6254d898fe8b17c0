#include "engine/loop/loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ringmail::engine {
namespace {

TEST(Loop, ProbeSucceedsOnThisKernel) {
  auto st = probe_io_uring();
  EXPECT_TRUE(st.ok()) << st.error().message();
}

// Other threads reach a worker only through post(); a burst of posts from several threads must all
// run, on the loop thread, and wake a loop that is blocked in io_uring_enter.
TEST(Loop, PostFromOtherThreadsWakesAndRunsEverything) {
  std::atomic<Loop*> loop_ptr{nullptr};
  std::atomic<int> ran{0};
  std::thread::id loop_thread;
  std::atomic<bool> wrong_thread{false};
  std::thread t([&] {
    auto l = Loop::create(LoopOptions{});
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_thread = std::this_thread::get_id();
    loop_ptr = l->get();
    (*l)->run();
  });
  while (!loop_ptr.load()) std::this_thread::yield();
  constexpr int kThreads = 4, kPosts = 2000;
  std::vector<std::thread> posters;
  for (int i = 0; i < kThreads; ++i)
    posters.emplace_back([&] {
      for (int j = 0; j < kPosts; ++j)
        loop_ptr.load()->post([&] {
          if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
          ran.fetch_add(1);
        });
    });
  for (auto& p : posters) p.join();
  loop_ptr.load()->post([&] { loop_ptr.load()->stop(); });
  t.join();
  EXPECT_EQ(ran.load(), kThreads * kPosts);
  EXPECT_FALSE(wrong_thread.load());
}

}  // namespace
}  // namespace ringmail::engine
