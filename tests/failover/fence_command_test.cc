#include "failover/fence_command.h"

#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

namespace ftd {
namespace {
using namespace std::chrono_literals;

const FenceTarget kTarget{.vm = "web1", .peer = "hostB", .peer_address = "10.0.0.2:7400"};

TEST(FenceCommand, ExitZeroPassesIdentity) {
  FenceCommand cmd(
      {"sh", "-c", "echo vm=$FTD_VM peer=$FTD_PEER addr=$FTD_PEER_ADDRESS arg=$1", "fence"}, 2s);
  auto r = cmd.run(kTarget);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "vm=web1 peer=hostB addr=10.0.0.2:7400 arg=hostB");
}

TEST(FenceCommand, NonZeroIsAnError) {
  FenceCommand cmd({"sh", "-c", "echo cannot reach the PDU >&2; exit 3", "fence"}, 2s);
  auto r = cmd.run(kTarget);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("exited with 3"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("cannot reach the PDU"), std::string::npos);
}

TEST(FenceCommand, MissingProgramIsAnError) {
  FenceCommand cmd({"/nonexistent/fence-agent"}, 2s);
  auto r = cmd.run(kTarget);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
}

TEST(FenceCommand, HangIsKilledWithItsChildrenWithinTheLimit) {
  const std::string pidfile = ::testing::TempDir() + "/fence-child.pid";
  std::remove(pidfile.c_str());
  // The shell starts a grandchild that would outlive a plain kill of the shell.
  FenceCommand cmd({"sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait", "fence"}, 300ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = cmd.run(kTarget);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("hung"), std::string::npos) << r.error().message;
  EXPECT_LT(took, 1s);
  EXPECT_GE(took, 300ms);
  std::ifstream in(pidfile);
  pid_t child = 0;
  ASSERT_TRUE(in >> child);
  // Dead = gone or a zombie awaiting its reaper (init).
  auto alive = [&] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string pid, comm, state;
    return stat >> pid >> comm >> state && state != "Z";
  };
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive()) << "grandchild " << child << " survived";
}

}  // namespace
}  // namespace ftd

namespace ftd {
namespace {

// The shipped example against a real network namespace "host".
TEST(FenceCommand, KillNetnsHostScriptPowersOffANamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns";
  const std::string ns = "ftdfence" + std::to_string(::getpid());
  if (!run_command({"ip", "netns", "add", ns})) GTEST_SKIP() << "ip netns unavailable";
  struct Cleanup {
    std::string ns;
    ~Cleanup() {
      (void)run_command({"ip", "link", "del", ns + "h"});
      (void)run_command({"ip", "netns", "del", ns});
    }
  } cleanup{ns};
  ASSERT_TRUE(run_command(
      {"ip", "link", "add", ns + "h", "type", "veth", "peer", "name", "eth0", "netns", ns}));
  ASSERT_TRUE(run_command({"ip", "-n", ns, "link", "set", "eth0", "up"}));
  auto victim = Subprocess::spawn({.argv = {"sh", "-c", "sleep 60 & sleep 60"}, .netns = ns});
  ASSERT_TRUE(victim);
  ASSERT_TRUE(victim->running());
  const std::string src = std::getenv("FTD_SOURCE_DIR") ? std::getenv("FTD_SOURCE_DIR") : "..";
  FenceCommand cmd({src + "/deploy/fence/kill-netns-host.sh"}, 5s);
  auto r = cmd.run({.vm = "web1", .peer = ns});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_NE(r->output.find("powered off"), std::string::npos) << r->output;
  auto code = victim->wait(2s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 128 + SIGKILL);
  auto pids = run_command({"ip", "netns", "pids", ns});
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, "");
  auto up = run_command({"ip", "-n", ns, "-o", "link", "show", "up"});
  ASSERT_TRUE(up);
  EXPECT_EQ(up->find("eth0"), std::string::npos) << *up;
}

}  // namespace
}  // namespace ftd
