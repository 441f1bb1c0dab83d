// libftd_uffd_preload.so really leaves a userfaultfd where it was asked to,
// and ftd can take it from outside.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/subprocess.h"
#include "tracking/uffd.h"
#include "tracking/uffd_preload_env.h"
#include "tracking/uffd_preload_path.h"

namespace ftd {
namespace {

std::string fd_target(pid_t pid, int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink(fmt::format("/proc/{}/fd/{}", pid, fd), ec).string();
}

TEST(UffdPreload, ConstructorLeavesAUserfaultfdAtTheRequestedFd) {
  const std::string lib = default_uffd_preload_library();
  ASSERT_TRUE(std::filesystem::exists(lib)) << lib;
  auto child =
      Subprocess::spawn({.argv = {"sleep", "30"},
                         .env = {"LD_PRELOAD=" + lib, std::string(FTD_UFFD_FD_ENV) + "=777"}});
  ASSERT_TRUE(child) << child.error().to_string();
  std::string target;
  for (int i = 0; i < 200 && target != "anon_inode:[userfaultfd]"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    target = fd_target(child->pid(), 777);
  }
  EXPECT_EQ(target, "anon_inode:[userfaultfd]");
  auto uffd = take_fd_from(child->pid(), 777);
  ASSERT_TRUE(uffd) << uffd.error().to_string();
  EXPECT_EQ(fd_target(::getpid(), uffd->get()), "anon_inode:[userfaultfd]");
}

TEST(UffdPreload, WithoutTheVariableItDoesNothing) {
  auto child = Subprocess::spawn(
      {.argv = {"sleep", "30"}, .env = {"LD_PRELOAD=" + default_uffd_preload_library()}});
  ASSERT_TRUE(child) << child.error().to_string();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(fd_target(child->pid(), FTD_UFFD_DEFAULT_FD), "");
}

}  // namespace
}  // namespace ftd
