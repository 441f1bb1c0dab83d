// `ftd --role primary --engine qmp` facing a run directory it cannot take
// over (issue 12): it must stop with a clear message and start nothing — not
// re-attach to a dead or foreign process, and never boot a second guest next
// to a live one. Runs the real ftd binary; a real QEMU plays the live guest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ReattachRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    run_ = dir_.path() / "run";
    std::filesystem::create_directories(run_);
    // Guest files only need to exist: nothing gets as far as booting them.
    for (const char* f : {"vmlinuz", "initrd.img"}) std::ofstream(dir_.path() / f) << "x";
  }
  // Runs ftd to its exit; returns (exit code, log).
  std::pair<int, std::string> run_ftd(std::vector<std::string> extra,
                                      const std::string& role = "primary") {
    std::vector<std::string> argv = {built_binary("daemon/ftd"),
                                     "--role",
                                     role,
                                     "--vm",
                                     "web1",
                                     "--engine",
                                     "qmp",
                                     "--memory-mib",
                                     "128",
                                     "--control",
                                     "unix:" + (dir_.path() / "ctl.sock").string(),
                                     "--peer",
                                     "127.0.0.1:1",
                                     "--listen",
                                     "127.0.0.1:1",
                                     "--run-dir",
                                     run_.string(),
                                     "--kernel",
                                     (dir_.path() / "vmlinuz").string(),
                                     "--initrd",
                                     (dir_.path() / "initrd.img").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = (dir_.path() / "ftd.log").string();
    std::filesystem::remove(log);
    auto p = Subprocess::spawn({.argv = argv, .log_path = log});
    EXPECT_TRUE(p) << p.error().to_string();
    if (!p) return {-1, ""};
    auto code = p->wait(30s);
    EXPECT_TRUE(code) << "ftd did not exit";
    return {code.value_or(-1), read_all(log)};
  }
  void write_pid_file(pid_t pid) { std::ofstream(run_ / "qemu.pid") << pid << "\n"; }

  TempDir dir_;
  std::filesystem::path run_;
};

TEST_F(ReattachRefusal, NoPidFile) {
  auto [code, log] = run_ftd({"--reattach"});
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("nothing to re-attach to: no pid file " + (run_ / "qemu.pid").string()),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("start without --reattach"), std::string::npos) << log;
}

TEST_F(ReattachRefusal, StalePidFileOfAGoneQemu) {
  auto gone = Subprocess::spawn({.argv = {"true"}});
  ASSERT_TRUE(gone);
  const pid_t pid = gone->pid();
  ASSERT_TRUE(gone->wait(5s));  // reaped: the pid names nobody now
  write_pid_file(pid);
  auto [code, log] = run_ftd({"--reattach"});
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find(fmt::format("stale pid file {}: QEMU pid {} is gone",
                                 (run_ / "qemu.pid").string(), pid)),
            std::string::npos)
      << log;
}

TEST_F(ReattachRefusal, PidReusedByAnotherProgram) {
  auto other = Subprocess::spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(other);
  write_pid_file(other->pid());
  auto [code, log] = run_ftd({"--reattach"});
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("is 'sleep', not a QEMU"), std::string::npos) << log;
  EXPECT_EQ(::kill(other->pid(), 0), 0) << "ftd must not touch a process that is not its QEMU";
}

TEST_F(ReattachRefusal, LiveGuestIsNotReplacedByASecondOne) {
  const std::string qmp = (run_ / "qmp.sock").string();
  auto qemu = Subprocess::spawn(
      {.argv = {"qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "128M", "-nodefaults",
                "-display", "none", "-S", "-qmp", "unix:" + qmp + ",server=on,wait=off", "-pidfile",
                (run_ / "qemu.pid").string()},
       .log_path = (dir_.path() / "qemu.log").string()});
  ASSERT_TRUE(qemu) << qemu.error().to_string();
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(run_ / "qemu.pid"); }, 15s));
  auto [code, log] = run_ftd({});
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find(fmt::format("the guest QEMU of VM 'web1' still runs (pid {}", qemu->pid())),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("restart with --reattach"), std::string::npos) << log;
  EXPECT_TRUE(qemu->running()) << "the live guest must survive the refusal";
}

TEST_F(ReattachRefusal, OnlyForAQmpPrimary) {
  auto [code, log] = run_ftd({"--reattach"}, "secondary");
  EXPECT_EQ(code, 2) << log;
  EXPECT_NE(log.find("--reattach needs --role primary --engine qmp"), std::string::npos) << log;
}

// The crashed daemon's disk mirror died with it: a re-attach cannot vouch
// for the writes made meanwhile, so it is refused before anything starts.
TEST_F(ReattachRefusal, NotWithADisk) {
  const std::string image = (dir_.path() / "disk.img").string();
  ASSERT_TRUE(run_command({"truncate", "-s", "8M", image}));
  auto [code, log] = run_ftd({"--reattach", "--disk", image});
  EXPECT_EQ(code, 2) << log;
  EXPECT_NE(log.find("--reattach with --disk is not supported"), std::string::npos) << log;
}

// A qmp primary's disk size is its image's: --disk-mib there is a mistake.
TEST_F(ReattachRefusal, DiskMibIsForTheSecondary) {
  auto [code, log] = run_ftd({"--disk-mib", "64"});
  EXPECT_EQ(code, 2) << log;
  EXPECT_NE(log.find("--disk-mib on a qmp primary"), std::string::npos) << log;
}

}  // namespace
}  // namespace ftd::testing
