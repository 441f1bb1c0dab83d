// A VM defined by the operator's own spec (--vm-spec: 2 vCPUs, an explicit
// machine type and a virtio-rng device) protected by a real ftd pair on
// HostLan: both QEMUs run the spec, the primary host is SIGKILLed, `ftctl
// failover` loads the checkpointed device state (vCPU 1 and the rng device
// included: QEMU refuses a device state whose devices it does not have) into
// the standby, and the guest answers pings from it.
// With a replicated disk too: the same spec's VM writes fsynced records to
// its virtio-blk disk over a live TCP connection while the primary host is
// powered off; the connection carries on after the failover and every
// acknowledged record is on the replica disk.
// Two hosts with different specs (-smp 2 here, -smp 1 there) never pair:
// the secondary refuses the Hello naming both digests, both daemons keep
// running, the replica stays at epoch 0; the secondary restarted with the
// primary's spec syncs.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "common/file_util.h"
#include "proto/status_mapping.h"
#include "tests/e2e/disk_log_failover.h"
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

// An operator's spec file: 128 MiB, `vcpus` vCPUs, a virtio-rng device and
// whatever `devices` adds (one QEMU argument per line).
std::string write_spec(const TempDir& dir, const std::string& name, int vcpus,
                       const std::string& devices = "") {
  const std::string spec = (dir.path() / name).string();
  std::ofstream(spec) << fmt::format(
      "# the operator's VM\n-machine\npc,accel=tcg\n-m\n128\n-smp\n{}\n"
      "-device\nvirtio-rng-pci,id=rng0\n{}",
      vcpus, devices);
  return spec;
}

// The `digest=` of the last `vm_spec ...` line a daemon logged at start-up
// (a restarted daemon appends to its log).
std::string logged_spec_digest(const std::string& log) {
  const auto at = log.rfind("vm_spec options=");
  if (at == std::string::npos) return "";
  const auto d = log.find("digest=", at);
  if (d == std::string::npos) return "";
  const auto end = log.find_first_of(" \n", d);
  return log.substr(d + 7, end == std::string::npos ? std::string::npos : end - d - 7);
}

// `ftctl status` as an operator runs it on a host.
std::string ftctl_status(ProtectedPair& p, const std::string& ctl) {
  auto out =
      run_command({built_binary("tools/ftctl/ftctl"), "-c", "unix:" + p.path(ctl), "status"});
  return out ? *out : out.error().to_string();
}

TEST(VmSpecPair, SpecWithTwoVcpusAndRngIsProtectedAndFailsOver) {
  TempDir dir;
  const std::string spec = write_spec(dir, "vm0.spec", 2);
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

TEST(VmSpecPair, TwoVcpusDevicesAndReplicatedDiskKeepStreamAndRecords) {
  TempDir dir;
  const std::string spec = write_spec(dir, "vm0.spec", 2, "-device\npvpanic\n");
  auto pair =
      ProtectedPair::start({.arbiter = "none", .disk_mib = 64, .extra_args = {"--vm-spec", spec}});
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto& p = **pair;
  auto pri_qemus = qemu_children(p.primary().process().pid());
  ASSERT_EQ(pri_qemus.size(), 1u);
  const std::string pri_cmd = cmdline(pri_qemus[0]);
  for (const char* want : {"-smp 2", "virtio-rng-pci,id=rng0", "pvpanic", "ftd-disk0"})
    EXPECT_NE(pri_cmd.find(want), std::string::npos) << want << " missing: " << pri_cmd;
  const auto t0 = std::chrono::steady_clock::now();
  auto disk = wait_disk_protected(p.primary());
  ASSERT_TRUE(disk) << disk.error().to_string() << p.logs();
  std::printf("[e2e] RAM protected after %.1f s, disk %.1f s later\n", p.sync_seconds(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // The standby QEMU runs the same spec, on the replica disk.
  auto sec_qemus = qemu_children(p.secondary().process().pid());
  ASSERT_EQ(sec_qemus.size(), 1u);
  const std::string sec_cmd = cmdline(sec_qemus[0]);
  for (const char* want : {"-smp 2", "virtio-rng-pci,id=rng0", "pvpanic", "vm0.disk"})
    EXPECT_NE(sec_cmd.find(want), std::string::npos) << want << " missing: " << sec_cmd;

  auto log = DiskLogClient::connect(p.lan(), HostId::kClient, kGuestIp, kDiskLogPort, 60s);
  ASSERT_TRUE(log) << log.error().to_string();
  auto fo = kill_primary_host_fail_over_disk_log(p, **log, 100);
  ASSERT_TRUE(fo) << fo.error().to_string() << p.logs();
  std::printf(
      "[e2e] RESULT vcpus=2 records_at_kill=%lu final_record=%lu records_on_replica=%lu "
      "failover_epoch=%lu activation_ms=%.1f\n",
      static_cast<unsigned long>(fo->at_kill), static_cast<unsigned long>(fo->final_record),
      static_cast<unsigned long>(fo->on_replica), static_cast<unsigned long>(fo->reply.epoch()),
      fo->reply.activation_us() / 1e3);
  RecordProperty("activation_ms", fmt::format("{:.1f}", fo->reply.activation_us() / 1e3));
  // One TCP connection from before the kill to after: nothing lost, repeated
  // or reordered; the replica disk holds every record the guest reported.
  EXPECT_EQ(fo->end.breaks, 0u) << "record numbers lost, repeated or reordered on the stream";
  EXPECT_EQ(fo->end.last, fo->final_record);
  EXPECT_GT(fo->final_record, fo->at_kill);
  EXPECT_GE(fo->on_replica, fo->at_kill);
  EXPECT_EQ(fo->on_replica, fo->final_record);
}

TEST(VmSpecPair, DifferentSpecsNeverPairUntilFixed) {
  TempDir dir;
  const std::string two = write_spec(dir, "two.spec", 2);
  const std::string one = write_spec(dir, "one.spec", 1);
  auto pair = ProtectedPair::start({.arbiter = "none",
                                    .primary_extra_args = {"--vm-spec", two},
                                    .secondary_extra_args = {"--vm-spec", one},
                                    .wait_protected = false});
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto& p = **pair;
  const std::string pri_digest = logged_spec_digest(p.tail("primary.log", 1 << 20));
  const std::string sec_digest = logged_spec_digest(p.tail("secondary.log", 1 << 20));
  ASSERT_FALSE(pri_digest.empty()) << p.logs();
  ASSERT_FALSE(sec_digest.empty()) << p.logs();
  ASSERT_NE(pri_digest, sec_digest);

  // The primary (guest booting) keeps trying; each attempt is refused at the Hello.
  std::string detail;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = p.primary().status();
        if (s) detail = s->detail();
        return detail.find("spec mismatch") != std::string::npos;
      },
      120s))
      << "last detail: " << detail << p.logs();
  EXPECT_NE(detail.find(fmt::format("primary's VM spec digest {}, this secondary's {}", pri_digest,
                                    sec_digest)),
            std::string::npos)
      << detail;
  std::this_thread::sleep_for(3s);  // a few more refused attempts
  auto pri = p.primary().status();
  auto sec = p.secondary().status();
  ASSERT_TRUE(pri && sec);
  EXPECT_NE(pri->state(), v1::VM_STATE_PROTECTED) << state_name(pri->state());
  EXPECT_EQ(pri->acked_epoch(), 0u);
  EXPECT_EQ(sec->state(), v1::VM_STATE_WAITING) << state_name(sec->state());
  EXPECT_EQ(sec->epoch(), 0u) << "the replica must stay untouched";
  EXPECT_NE(p.tail("secondary.log").find("spec mismatch"), std::string::npos) << p.logs();
  const std::string pri_ftctl = ftctl_status(p, "primary.ctl");
  const std::string sec_ftctl = ftctl_status(p, "secondary.ctl");
  std::printf("[e2e] ftctl status, primary:\n%s[e2e] ftctl status, secondary:\n%s",
              pri_ftctl.c_str(), sec_ftctl.c_str());
  EXPECT_NE(pri_ftctl.find("spec mismatch"), std::string::npos) << pri_ftctl;
  EXPECT_EQ(pri_ftctl.find("state: protected"), std::string::npos) << pri_ftctl;
  EXPECT_NE(sec_ftctl.find("state: waiting"), std::string::npos) << sec_ftctl;
  EXPECT_NE(sec_ftctl.find("refused primary"), std::string::npos) << sec_ftctl;
  EXPECT_NE(sec_ftctl.find("spec mismatch"), std::string::npos) << sec_ftctl;
  // Nothing crashed: both daemons and both QEMUs still run.
  EXPECT_TRUE(p.primary().process().running());
  EXPECT_TRUE(p.secondary().process().running());
  EXPECT_EQ(qemu_children(p.primary().process().pid()).size(), 1u);
  EXPECT_EQ(qemu_children(p.secondary().process().pid()).size(), 1u);

  // The operator gives the secondary the primary's spec: the pair syncs.
  auto fixed = p.restart_secondary_daemon({"--vm-spec", two});
  ASSERT_TRUE(fixed) << fixed.error().to_string();
  std::string last;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = p.primary().status();
        if (s) last = std::string(state_name(s->state())) + " " + s->detail();
        return s && s->state() == v1::VM_STATE_PROTECTED;
      },
      240s))
      << "never protected after the fix; last: " << last << p.logs();
  EXPECT_EQ(logged_spec_digest(p.tail("secondary.log", 1 << 20)), pri_digest);
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = p.secondary().status();
        return s && s->epoch() > 0;
      },
      30s));
  std::printf("[e2e] RESULT spec mismatch refused (%s vs %s); after the fix: %s\n",
              pri_digest.c_str(), sec_digest.c_str(), ftctl_status(p, "primary.ctl").c_str());
}

}  // namespace
}  // namespace ftd::testing
