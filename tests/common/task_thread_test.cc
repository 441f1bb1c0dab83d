#include "common/task_thread.h"

#include <gtest/gtest.h>

#include <thread>

namespace ftd {
namespace {

// Every task runs on the same thread, not the caller's, and returns its result.
TEST(TaskThread, RunsTasksOnOneLongLivedThread) {
  TaskThread t;
  const auto first = t.run([] { return std::this_thread::get_id(); });
  EXPECT_NE(first, std::this_thread::get_id());
  std::thread other([&] { EXPECT_EQ(t.run([] { return std::this_thread::get_id(); }), first); });
  other.join();
  EXPECT_EQ(t.run([] { return 41 + 1; }), 42);
}

}  // namespace
}  // namespace ftd
