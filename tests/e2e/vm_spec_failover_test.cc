// A VM defined by the operator's own spec (--vm-spec: 2 vCPUs, an explicit
// machine type and a virtio-rng device) protected by a real ftd pair on
// HostLan: both QEMUs run the spec, the primary host is SIGKILLed, `ftctl
// failover` loads the checkpointed device state (vCPU 1 and the rng device
// included: QEMU refuses a device state whose devices it does not have) into
// the standby, and the guest answers pings from it.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "common/file_util.h"
#include "tests/e2e/manual_failover.h"
#include "tests/e2e/process_tree.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

std::string cmdline(pid_t pid) {
  auto raw = read_file(fmt::format("/proc/{}/cmdline", pid));
  if (!raw) return "";
  std::string s(reinterpret_cast<const char*>(raw->data()), raw->size());
  std::ranges::replace(s, '\0', ' ');
  return s;
}

TEST(VmSpecPair, SpecWithTwoVcpusAndRngIsProtectedAndFailsOver) {
  TempDir dir;
  const std::string spec = (dir.path() / "vm0.spec").string();
  std::ofstream(spec) << "# the operator's VM\n-machine\npc,accel=tcg\n-m\n128\n-smp\n2\n"
                         "-device\nvirtio-rng-pci,id=rng0\n";
  auto pair = ProtectedPair::start({.arbiter = "none", .extra_args = {"--vm-spec", spec}});
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto& p = **pair;
  std::printf("[e2e] protected after %.1f s\n", p.sync_seconds());

  auto pri_qemus = qemu_children(p.primary().process().pid());
  ASSERT_EQ(pri_qemus.size(), 1u);
  const std::string pri_cmd = cmdline(pri_qemus[0]);
  EXPECT_NE(pri_cmd.find("-smp 2"), std::string::npos) << pri_cmd;
  EXPECT_NE(pri_cmd.find("virtio-rng-pci,id=rng0"), std::string::npos) << pri_cmd;
  EXPECT_NE(pri_cmd.find("pc,accel=tcg,memory-backend=ram0"), std::string::npos) << pri_cmd;
  EXPECT_NE(p.tail("primary.log").find("vm_spec options=2 memory_mib=128"), std::string::npos);

  auto fo = ping_kill_primary_host_fail_over(p);
  ASSERT_TRUE(fo) << fo.error().to_string();
  std::printf("[e2e] failover: epoch %lu activation %.1f ms, %zu pings answered after\n",
              static_cast<unsigned long>(fo->reply.epoch()), fo->reply.activation_us() / 1e3,
              fo->pings_after);
  RecordProperty("activation_ms", fmt::format("{:.1f}", fo->reply.activation_us() / 1e3));

  auto sec_qemus = qemu_children(p.secondary().process().pid());
  ASSERT_EQ(sec_qemus.size(), 1u);
  const std::string sec_cmd = cmdline(sec_qemus[0]);
  EXPECT_NE(sec_cmd.find("-smp 2"), std::string::npos) << sec_cmd;
  EXPECT_NE(sec_cmd.find("virtio-rng-pci,id=rng0"), std::string::npos) << sec_cmd;
  EXPECT_NE(sec_cmd.find("-incoming defer"), std::string::npos) << sec_cmd;
}

}  // namespace
}  // namespace ftd::testing
