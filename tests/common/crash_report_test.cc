// A process that dies of an uncaught exception leaves the exception and a
// symbolized stack on stderr (what a daemon's log keeps).
#include "common/crash_report.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

namespace ftd {
namespace {

[[noreturn]] __attribute__((noinline)) void crash_with_an_uncaught_exception() {
  throw std::runtime_error("the bug under test");
}

TEST(CrashReport, UncaughtExceptionLeavesTheStackOnStderr) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer builds keep the sanitizer's own reports";
#endif
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    install_crash_report("/proc/self/exe");
    // On a thread of its own: gtest would catch it on this one.
    std::thread(crash_with_an_uncaught_exception).join();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << err;
  EXPECT_EQ(WTERMSIG(status), SIGABRT) << "the process must still die of the crash";
  EXPECT_NE(err.find("the bug under test"), std::string::npos) << err;
  EXPECT_NE(err.find("ftd crash"), std::string::npos) << err;
  EXPECT_NE(err.find("crash_with_an_uncaught_exception"), std::string::npos)
      << "no symbolized frame:\n"
      << err;
}

}  // namespace
}  // namespace ftd
