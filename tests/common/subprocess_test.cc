#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace ftd {
namespace {

TEST(Subprocess, RunCommandCapturesOutputAndFailure) {
  auto out = run_command({"sh", "-c", "echo hello"});
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(*out, "hello\n");
  auto bad = run_command({"sh", "-c", "echo oops; exit 3"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("exited with 3"), std::string::npos);
  EXPECT_NE(bad.error().message.find("oops"), std::string::npos);
}

TEST(Subprocess, KillReportsSignal) {
  auto p = Subprocess::spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->running());
  p->kill(SIGKILL);
  auto code = p->wait(std::chrono::seconds(5));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(Subprocess, WaitTimesOut) {
  auto p = Subprocess::spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(p);
  auto code = p->wait(std::chrono::milliseconds(50));
  ASSERT_FALSE(code);
  EXPECT_EQ(code.error().code, ErrorCode::kTimeout);
}

}  // namespace
}  // namespace ftd
