// A libvirt domain protected through a real libvirtd started here (session
// mode, tests/libvirt/session_libvirtd.h): the domain (2 vCPUs, memfd shared
// backing, the test guest's kernel, a virtio-rng device, one bridge NIC) is
// defined in libvirtd; both ftd daemons read it with --libvirt-domain, run it
// (libvirt never starts it), the guest boots and answers pings through ftd's
// output-commit NIC with the domain's MAC; the primary host is SIGKILLed and
// `ftctl failover` activates the standby built from the same domain.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/e2e/client_probes.h"
#include "tests/e2e/process_tree.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"
#include "tests/libvirt/session_libvirtd.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

std::string domain_xml(const std::filesystem::path& guest) {
  return fmt::format(R"(<domain type='qemu'>
  <name>vm0</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel><initrd>{}</initrd>
    <cmdline>console=ttyS0 quiet ftd.ip={} ftd.tick=1</cmdline></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'><source bridge='br0'/><mac address='{}'/><model type='virtio'/></interface>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>)",
                     (guest / "vmlinuz").string(), (guest / "initrd.img").string(), kGuestCidr,
                     kGuestMac);
}

TEST(LibvirtPair, DomainFromARealLibvirtdIsProtectedAndFailsOver) {
  auto guest = guest_dir();
  ASSERT_TRUE(guest) << guest.error().to_string();
  auto libvirtd = SessionLibvirtd::start();
  ASSERT_TRUE(libvirtd) << libvirtd.error().to_string();
  ASSERT_TRUE((*libvirtd)->define(domain_xml(*guest))) << (*libvirtd)->log();

  auto pair = ProtectedPair::start(
      {.arbiter = "none",
       .extra_args = {"--libvirt-domain", "vm0", "--libvirt-uri", (*libvirtd)->uri()}});
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto& p = **pair;
  std::printf("[e2e] libvirt domain protected after %.1f s\n", p.sync_seconds());
  auto pri_qemus = qemu_children(p.primary().process().pid());
  ASSERT_EQ(pri_qemus.size(), 1u);

  const std::string& client = p.lan().ns(HostId::kClient);
  auto ping = PingProbe::start(client, kGuestIp, p.path("ping.log"));
  ASSERT_TRUE(ping) << ping.error().to_string();
  ASSERT_TRUE(wait_until([&] { return !ping->report().replies.empty(); }, 60s))
      << "the libvirt-defined guest never answered a ping\n"
      << p.logs();

  p.primary().process().kill(SIGKILL);
  for (pid_t q : pri_qemus) ASSERT_TRUE(kill_if_qemu(q));
  ASSERT_TRUE(p.primary().process().wait(5s));
  const double t_before = unix_now_s();
  auto fo = p.secondary().failover();
  ASSERT_TRUE(fo) << fo.error().to_string() << "\n" << p.tail("secondary.log");
  ASSERT_TRUE(wait_until(
      [&] { return replies_between(ping->report(), t_before, unix_now_s() + 1) >= 3; }, 30s))
      << "no ping reply from the activated standby\n"
      << p.tail("secondary.log");
  std::printf("[e2e] RESULT libvirt failover activation_ms=%.1f\n", fo->activation_us() / 1e3);
  RecordProperty("activation_ms", fmt::format("{:.1f}", fo->activation_us() / 1e3));
}

}  // namespace
}  // namespace ftd::testing
