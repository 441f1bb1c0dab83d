#include "failover/fence_command.h"

#include <gtest/gtest.h>
#include <signal.h>

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
