// A libvirt domain protected through a real libvirtd started here (session
// mode, tests/libvirt/session_libvirtd.h): the domain (2 vCPUs, memfd shared
// backing, the test guest's kernel, a virtio-rng device, one bridge NIC) is
// defined in libvirtd; both ftd daemons read it with --libvirt-domain, run it
// (libvirt never starts it), the guest boots and answers pings through ftd's
// output-commit NIC with the domain's MAC; the primary host is SIGKILLed and
// `ftctl failover` activates the standby built from the same domain.
#include <gtest/gtest.h>

#include "tests/e2e/manual_failover.h"
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
  auto fo = ping_kill_primary_host_fail_over(p);
  ASSERT_TRUE(fo) << fo.error().to_string();
  std::printf("[e2e] RESULT libvirt failover activation_ms=%.1f pings_after=%zu\n",
              fo->reply.activation_us() / 1e3, fo->pings_after);
  RecordProperty("activation_ms", fmt::format("{:.1f}", fo->reply.activation_us() / 1e3));
}

}  // namespace
}  // namespace ftd::testing
