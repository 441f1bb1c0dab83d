// A libvirt domain as a VM spec: libvirt's qemu-argv line (a real line
// captured from Debian's libvirt 9.0 as fixture, then live) with libvirt's
// management options dropped; domain XML checks; and the whole route through
// a real libvirtd (session mode, started here): define, read, translate.
#include "libvirt/libvirt_domain.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "libvirt/domain_xml.h"
#include "libvirt/libvirt_argv.h"
#include "qemu/vm_spec.h"
#include "tests/libvirt/session_libvirtd.h"

namespace ftd {
namespace {

// virsh domxml-to-native qemu-argv, libvirt 9.0 + QEMU 7.2, memfd shared backing.
constexpr const char* kNative =
    "LC_ALL=C PATH=/usr/bin HOME=/tmp/lvs/home /usr/bin/qemu-system-x86_64 -name "
    "guest=web1,debug-threads=on -S -object "
    "'{\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\",\"file\":\"/tmp/lvs/"
    "master-key.aes\"}' -machine pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram "
    "-accel tcg -cpu qemu64 -m 128 -object "
    "'{\"qom-type\":\"memory-backend-memfd\",\"id\":\"pc.ram\",\"share\":true,\"size\":134217728}' "
    "-overcommit mem-lock=off -smp 2,sockets=2,cores=1,threads=1 -display none -no-user-config "
    "-nodefaults -chardev socket,id=charmonitor,path=/tmp/lvs/monitor.sock,server=on,wait=off "
    "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown -no-acpi -boot "
    "strict=on -append 'console=ttyS0 quiet' -device "
    "'{\"driver\":\"virtio-rng-pci\",\"rng\":\"objrng0\",\"id\":\"rng0\",\"bus\":\"pci.0\","
    "\"addr\":\"0x2\"}' -msg timestamp=on";

bool has(const std::vector<std::string>& a, const std::string& s) {
  return std::ranges::find(a, s) != a.end();
}

TEST(LibvirtArgv, DropsWhatLibvirtAddsForItself) {
  auto args = spec_args_from_libvirt_argv(kNative);
  ASSERT_TRUE(args) << args.error().to_string();
  EXPECT_FALSE(has(*args, "-S"));
  EXPECT_FALSE(has(*args, "-mon"));
  EXPECT_FALSE(has(*args, "LC_ALL=C"));
  EXPECT_FALSE(has(*args, "/usr/bin/qemu-system-x86_64"));
  EXPECT_TRUE(has(*args, "pc-i440fx-7.2,usb=off,dump-guest-core=off"));
  EXPECT_TRUE(has(*args, "console=ttyS0 quiet"));  // quoting undone
  for (const auto& a : *args) {
    EXPECT_EQ(a.find("masterKey0"), std::string::npos);
    EXPECT_EQ(a.find("charmonitor"), std::string::npos);
    EXPECT_EQ(a.find("pc.ram"), std::string::npos);
  }
  auto spec = parse_vm_spec(*args);
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->memory_mib, 128u);
  EXPECT_EQ(spec->machine, "pc-i440fx-7.2,usb=off,dump-guest-core=off");
}

TEST(LibvirtArgv, RefusesHugepagesAndCommandSubstitution) {
  auto huge = spec_args_from_libvirt_argv(
      "/usr/bin/qemu -machine pc,memory-backend=pc.ram -object "
      "'{\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\",\"mem-path\":\"/dev/hugepages/"
      "libvirt\",\"size\":1}'");
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message.find("hugepages"), std::string::npos) << huge.error().message;
  EXPECT_FALSE(spec_args_from_libvirt_argv("/usr/bin/qemu -name $(touch /tmp/x)"));
  EXPECT_FALSE(spec_args_from_libvirt_argv("LC_ALL=C"));
}

constexpr const char* kDomain = R"(<domain type='qemu'>
  <name>%NAME%</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'><source bridge='br0'/><mac address='52:54:00:aa:bb:01'/><model type='virtio'/></interface>
    %EXTRA%
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>)";

std::string domain(const std::string& name, const std::string& extra = "") {
  std::string s = kDomain;
  s.replace(s.find("%NAME%"), 6, name);
  s.replace(s.find("%EXTRA%"), 7, extra);
  return s;
}

TEST(DomainXml, TakesTheOneNicAndRefusesPassthroughAndSecondNics) {
  auto d = prepare_domain_xml(domain("web1"));
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->mac, "52:54:00:aa:bb:01");
  EXPECT_EQ(d->xml.find("<interface"), std::string::npos);
  EXPECT_NE(d->xml.find("<rng"), std::string::npos);
  auto two = prepare_domain_xml(domain("web1", "<interface type='user'/>"));
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message.find("2 <interface> elements"), std::string::npos);
  auto pt = prepare_domain_xml(
      domain("web1",
             "<hostdev mode='subsystem' type='pci'><source><address bus='1'/></source></hostdev>"));
  ASSERT_FALSE(pt);
  EXPECT_NE(pt.error().message.find("<hostdev>"), std::string::npos);
  EXPECT_FALSE(prepare_domain_xml("<domain"));
}

TEST(RealLibvirtd, DomainBecomesAValidSpec) {
  auto libvirtd = testing::SessionLibvirtd::start();
  ASSERT_TRUE(libvirtd) << libvirtd.error().to_string();
  ASSERT_TRUE((*libvirtd)->define(domain("web1"))) << (*libvirtd)->log();
  ASSERT_TRUE((*libvirtd)->define(domain("twonics", "<interface type='user'/>")));

  auto vm = load_libvirt_domain((*libvirtd)->uri(), "web1");
  ASSERT_TRUE(vm) << vm.error().to_string() << "\n" << (*libvirtd)->log();
  EXPECT_EQ(vm->mac, "52:54:00:aa:bb:01");
  auto spec = parse_vm_spec(vm->spec_args);
  ASSERT_TRUE(spec) << spec.error().to_string() << "\n" << ::testing::PrintToString(vm->spec_args);
  EXPECT_EQ(spec->memory_mib, 128u);
  const auto argv = spec->argv();
  auto contains = [&](const std::string& needle) {
    return std::ranges::any_of(argv, [&](const auto& a) { return a.find(needle) != a.npos; });
  };
  EXPECT_TRUE(contains("virtio-rng-pci"));
  EXPECT_TRUE(contains("sockets=2"));
  EXPECT_FALSE(contains("netdev"));
  // The same domain read twice is the same spec (both hosts compare digests).
  EXPECT_EQ(spec->digest(),
            parse_vm_spec(load_libvirt_domain((*libvirtd)->uri(), "web1")->spec_args)->digest());

  auto two = load_libvirt_domain((*libvirtd)->uri(), "twonics");
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message.find("exactly one NIC"), std::string::npos);
  auto missing = load_libvirt_domain((*libvirtd)->uri(), "nosuch");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("domain 'nosuch'"), std::string::npos)
      << missing.error().message;
  auto nodaemon = load_libvirt_domain("qemu+unix:///session?socket=/nonexistent/sock", "web1");
  ASSERT_FALSE(nodaemon);
  EXPECT_NE(nodaemon.error().message.find("connect to"), std::string::npos);
}

}  // namespace
}  // namespace ftd
