// Re-attaching to a QEMU an earlier daemon launched (issue 12), against real
// QEMU (BIOS only): found through its pid file, checked through a pidfd, its
// RAM mapped again; stale and foreign pid files are refused with the reason;
// a re-attached QEMU the daemon adopted ends with it.
#include "qemu/qemu_reattach.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "qemu/qemu_identity.h"
#include "qemu_test_util.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;

QemuConfig surviving_config(const testing::TempDir& dir) {
  auto c = testing::bios_only_config(dir);
  c.pid_file = dir.file("qemu.pid");
  c.survive_daemon = true;
  return c;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Launches a QEMU as the daemon does and lets go of its QMP connection, as a
// dying daemon does (QMP serves one client at a time); once its pid file exists.
Result<QemuProcess> launch_then_let_go(const QemuConfig& config) {
  FTD_ASSIGN_OR_RETURN(QemuProcess q, QemuProcess::launch(config));
  q.qmp() = QmpClient{};
  if (!wait_for([&] { return std::filesystem::exists(config.pid_file); }, 5s))
    return make_error(ErrorCode::kTimeout, "QEMU wrote no pid file {}", config.pid_file);
  return q;
}

TEST(QemuReattach, FindsTheLaunchedQemuAndMapsTheSameRam) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  auto launched = launch_then_let_go(config);
  ASSERT_TRUE(launched) << launched.error().to_string();
  auto found = find_run_dir_qemu(config.pid_file, config.qmp_socket_path);
  EXPECT_EQ(found.kind, RunDirQemu::Kind::kLive) << found.detail;
  EXPECT_EQ(found.pid, launched->pid());
  const pid_t pid = launched->pid();
  auto again = reattach_to_run_dir_qemu(config);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->pid(), pid);
  EXPECT_EQ(again->ram_bytes(), 128u << 20);
  EXPECT_TRUE(again->alive());
  // Both map the one memfd: the same inode.
  EXPECT_EQ(again->ram_inode(), launched->ram_inode());
  auto status = again->qmp().execute("query-status");
  ASSERT_TRUE(status) << status.error().to_string();
}

TEST(QemuReattach, RefusesOtherRamSize) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  auto launched = launch_then_let_go(config);
  ASSERT_TRUE(launched) << launched.error().to_string();
  auto other = config;
  other.memory_mib = 256;
  auto r = reattach_to_run_dir_qemu(other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("has 128 MiB of guest RAM, the options say 256 MiB"),
            std::string::npos)
      << r.error().message;
}

TEST(QemuReattach, StalePidFileOfADeadQemu) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  pid_t pid = -1;
  {
    auto launched = launch_then_let_go(config);
    ASSERT_TRUE(launched) << launched.error().to_string();
    pid = launched->pid();
    launched->kill();  // SIGKILL: QEMU cannot remove its pid file
  }
  ASSERT_TRUE(std::filesystem::exists(config.pid_file));
  auto found = find_run_dir_qemu(config.pid_file, config.qmp_socket_path);
  EXPECT_EQ(found.kind, RunDirQemu::Kind::kStale);
  EXPECT_NE(found.detail.find(fmt::format("QEMU pid {} is gone", pid)), std::string::npos)
      << found.detail;
  auto r = reattach_to_run_dir_qemu(config);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("nothing to re-attach to: stale pid file"), std::string::npos)
      << r.error().message;
}

TEST(QemuReattach, AnotherVmsQemuIsNotOurs) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  auto launched = QemuProcess::launch(config);
  ASSERT_TRUE(launched) << launched.error().to_string();
  auto pidfd = open_qemu_pidfd(launched->pid(), dir.file("other.qmp"));
  ASSERT_FALSE(pidfd);
  EXPECT_NE(pidfd.error().message.find("not this VM's"), std::string::npos)
      << pidfd.error().message;
  auto mine = open_qemu_pidfd(launched->pid(), config.qmp_socket_path);
  ASSERT_TRUE(mine) << mine.error().to_string();
  EXPECT_FALSE(pidfd_exited(mine->get()));
  launched->kill();
  EXPECT_TRUE(pidfd_exited(mine->get()));
}

TEST(QemuReattach, NoPidFile) {
  testing::TempDir dir;
  auto found = find_run_dir_qemu(dir.file("qemu.pid"), dir.file("vm.qmp"));
  EXPECT_EQ(found.kind, RunDirQemu::Kind::kNone);
  auto garbage = dir.file("garbage.pid");
  std::ofstream(garbage) << "not-a-pid\n";
  found = find_run_dir_qemu(garbage, dir.file("vm.qmp"));
  EXPECT_EQ(found.kind, RunDirQemu::Kind::kStale);
  EXPECT_NE(found.detail.find("holds 'not-a-pid'"), std::string::npos) << found.detail;
}

// The daemon adopts the QEMU it re-attached to: stopping the daemon cleanly
// ends the guest, as it does for one it launched.
TEST(QemuReattach, AdoptedQemuEndsWithItsObject) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  auto launched = launch_then_let_go(config);
  ASSERT_TRUE(launched) << launched.error().to_string();
  {
    auto adopted = reattach_to_run_dir_qemu(config);
    ASSERT_TRUE(adopted) << adopted.error().to_string();
  }
  EXPECT_TRUE(wait_for([&] { return !launched->alive(); }, 5s));
}

void make_ram_file(const std::string& path) {
  std::ofstream(path).close();
  std::filesystem::resize_file(path, uint64_t{128} << 20);
}

// A guest on a RAM file (an activated standby runs on the replica image):
// re-attaching finds the file on QEMU's command line and maps it.
TEST(QemuReattach, FindsFileBackedRamOnTheCommandLine) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  config.ram_file = dir.file("replica,ram");  // a comma: QEMU's ',,' escape
  make_ram_file(config.ram_file);
  auto launched = launch_then_let_go(config);
  ASSERT_TRUE(launched) << launched.error().to_string();
  EXPECT_EQ(qemu_ram_file(launched->pid()), config.ram_file);
  auto as_primary = config;
  as_primary.ram_file.clear();  // what a restarted primary daemon knows
  auto again = reattach_to_run_dir_qemu(as_primary);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->config().ram_file, config.ram_file);
  EXPECT_EQ(again->ram_inode(), launched->ram_inode());
}

// A standby left by a dead daemon: killed if it never ran, refused (and left
// alone) once it runs the guest.
TEST(QemuReattach, LeftoverStandbyIsRetiredARunningGuestIsNot) {
  testing::TempDir dir;
  auto config = surviving_config(dir);
  config.ram_file = dir.file("replica.ram");
  make_ram_file(config.ram_file);
  config.incoming = true;
  auto standby = launch_then_let_go(config);
  ASSERT_TRUE(standby) << standby.error().to_string();
  ASSERT_TRUE(retire_leftover_standby(config));
  EXPECT_TRUE(wait_for([&] { return !standby->alive(); }, 5s));

  config.incoming = false;
  auto running = launch_then_let_go(config);
  ASSERT_TRUE(running) << running.error().to_string();
  auto refused = retire_leftover_standby(config);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("--reattach"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(running->alive());
  // Nothing in the run directory: nothing to do.
  running->kill();
  EXPECT_TRUE(retire_leftover_standby(config));
}

}  // namespace
}  // namespace ftd
