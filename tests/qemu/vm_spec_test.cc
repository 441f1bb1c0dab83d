// VmSpec: every refusal rule with its message, what a valid spec keeps, the
// digest's sensitivity, the spec file format; and QEMU option parsing.
#include "qemu/vm_spec.h"

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "qemu/qemu_config.h"
#include "qemu_test_util.h"

namespace ftd {
namespace {

// The spec is refused and the message names `needle`.
void expect_refused(const std::vector<std::string>& args, const std::string& needle) {
  auto spec = parse_vm_spec(args);
  ASSERT_FALSE(spec) << "accepted: " << ::testing::PrintToString(args);
  EXPECT_EQ(spec.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(spec.error().message.find(needle), std::string::npos) << spec.error().message;
}

TEST(VmSpec, KeepsTheOperatorsOptionsAndTakesMemoryAndMachine) {
  auto spec = parse_vm_spec({"-machine", "q35,accel=tcg", "-smp", "2", "-m", "1G", "-device",
                             "virtio-rng-pci,id=rng0", "-nodefaults", "--kernel", "/boot/k"});
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->memory_mib, 1024u);
  EXPECT_EQ(spec->machine, "q35,accel=tcg");
  EXPECT_TRUE(spec->boots_itself);
  EXPECT_FALSE(spec->has_serial);
  EXPECT_EQ(spec->argv(),
            (std::vector<std::string>{"-smp", "2", "-device", "virtio-rng-pci,id=rng0",
                                      "-nodefaults", "-kernel", "/boot/k"}));
}

TEST(VmSpec, MemorySizes) {
  EXPECT_EQ(parse_vm_spec({"-m", "512"})->memory_mib, 512u);
  EXPECT_EQ(parse_vm_spec({"-m", "512M"})->memory_mib, 512u);
  EXPECT_EQ(parse_vm_spec({"-m", "size=2G"})->memory_mib, 2048u);
  EXPECT_FALSE(parse_vm_spec({"-smp", "2"})->memory_mib);
  expect_refused({"-m", "1G,slots=2,maxmem=4G"}, "memory hotplug");
  expect_refused({"-m", "1500k"}, "whole number of MiB");
  expect_refused({"-m", "lots"}, "not a memory size");
  expect_refused({"-m", "512", "-m", "1G"}, "-m given twice");
}

TEST(VmSpec, RefusesPassthrough) {
  expect_refused({"-device", "vfio-pci,host=0000:01:00.0"}, "VFIO/PCI passthrough");
  expect_refused({"-device", R"({"driver":"vfio-pci","host":"01:00.0"})"}, "VFIO/PCI passthrough");
}

TEST(VmSpec, RefusesVhostUser) {
  expect_refused({"-device", "vhost-user-blk-pci,chardev=c0"}, "vhost-user device");
  expect_refused({"-netdev", "vhost-user,id=v0,chardev=c0"}, "vhost-user netdev");
}

TEST(VmSpec, RefusesHugetlbAndOtherMemoryBackends) {
  expect_refused({"-object", "memory-backend-file,id=m,size=1G,mem-path=/dev/hugepages"},
                 "hugetlb memory backend");
  expect_refused({"-object", "memory-backend-memfd,id=m,size=1G,hugetlb=on"},
                 "hugetlb memory backend");
  expect_refused({"-object", R"({"qom-type":"memory-backend-ram","id":"m","size":1024})"},
                 "one RAM backend");
  expect_refused({"-mem-path", "/dev/hugepages"}, "-mem-path");
  expect_refused({"-numa", "node,memdev=m"}, "NUMA");
  // Other objects are the operator's business.
  EXPECT_TRUE(parse_vm_spec({"-object", "rng-random,id=rng,filename=/dev/urandom"}));
}

TEST(VmSpec, RefusesBalloonFreePageReporting) {
  expect_refused({"-device", "virtio-balloon-pci,free-page-reporting=on"},
                 "balloon free-page-reporting");
  expect_refused({"-device", "virtio-balloon,free-page-hint=true"}, "balloon free-page-hint");
  EXPECT_TRUE(parse_vm_spec({"-device", "virtio-balloon-pci,free-page-reporting=off"}));
}

TEST(VmSpec, RefusesWhatFtdOwns) {
  expect_refused({"-qmp", "unix:/tmp/q,server=on"}, "only QMP socket");
  expect_refused({"-monitor", "stdio"}, "monitor");
  expect_refused({"-mon", "chardev=c,mode=control"}, "monitor");
  expect_refused({"-daemonize"}, "child");
  expect_refused({"-incoming", "defer"}, "-incoming defer");
  expect_refused({"-S"}, "decides when the guest runs");
  expect_refused({"-pidfile", "/run/q.pid"}, "pid file");
  expect_refused({"-netdev", "tap,id=n1"}, "output-commit NIC");
  expect_refused({"-nic", "user"}, "output commit");
  expect_refused({"-net", "nic"}, "output commit");
  expect_refused({"-loadvm", "snap"}, "checkpoints");
  expect_refused({"-machine", "pc,memory-backend=mine"}, "memory-backend");
  expect_refused({"-machine", "pc", "-M", "q35"}, "-machine given twice");
}

TEST(VmSpec, RefusesFtdsReservedIds) {
  expect_refused({"-device", "virtio-rng-pci,id=n0"}, "reserved");
  expect_refused({"-blockdev", R"({"driver":"raw","node-name":"ftd-disk0"})"}, "reserved");
  expect_refused({"-object", "rng-random,id=ram0"}, "reserved");
}

TEST(VmSpec, RefusesMalformedInput) {
  expect_refused({"smp", "2"}, "not a QEMU option");
  expect_refused({"-smp"}, "has no value");
  expect_refused({"-device", "{\"driver\":"}, "not a JSON object");
  expect_refused({"-device", "id=x"}, "no device driver");
}

TEST(VmSpec, DigestSeesEveryDifference) {
  auto digest = [](std::vector<std::string> a) { return parse_vm_spec(a)->digest(); };
  const std::string base = digest({"-smp", "2", "-device", "virtio-rng-pci"});
  EXPECT_EQ(base.size(), 32u);
  EXPECT_EQ(base, digest({"--smp", "2", "-device", "virtio-rng-pci"}));  // spelling only
  EXPECT_NE(base, digest({"-smp", "1", "-device", "virtio-rng-pci"}));
  EXPECT_NE(base, digest({"-device", "virtio-rng-pci", "-smp", "2"}));  // device order = PCI slots
  EXPECT_NE(base, digest({"-smp", "2", "-device", "virtio-rng-pci", "-m", "512"}));
  EXPECT_NE(base, digest({"-smp", "2", "-device", "virtio-rng-pci", "-M", "q35"}));
}

TEST(VmSpec, ReadsOneArgumentPerLine) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/vm.spec";
  std::ofstream(path) << "# web1\n-smp\n  2  \n\n-append\nconsole=ttyS0 quiet\n";
  auto args = read_vm_spec_file(path);
  ASSERT_TRUE(args) << args.error().to_string();
  EXPECT_EQ(*args, (std::vector<std::string>{"-smp", "2", "-append", "console=ttyS0 quiet"}));
  auto missing = read_vm_spec_file(dir.path() + "/none");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(QemuOpts, PropsInBothForms) {
  auto kv = parse_qemu_props("virtio-net-pci,id=a,,b,romfile=,x", "driver");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->at("driver"), "virtio-net-pci");
  EXPECT_EQ(kv->at("id"), "a,b");
  EXPECT_EQ(kv->at("romfile"), "");
  EXPECT_EQ(kv->at("x"), "on");
  auto js = parse_qemu_props(R"({"driver":"virtio-balloon-pci","free-page-reporting":true})", "");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->at("free-page-reporting"), "on");
}

TEST(QemuConfigWithSpec, FtdAddsOnlyWhatProtectionNeeds) {
  auto spec = parse_vm_spec({"-machine", "q35", "-smp", "2", "-device", "virtio-rng-pci"});
  ASSERT_TRUE(spec);
  QemuConfig c;
  c.qmp_socket_path = "/run/x/qmp.sock";
  c.spec = *spec;
  c.memory_mib = 256;
  c.nic = QemuNic{.socket_path = "/run/x/nic.sock"};
  const auto a = qemu_argv(c);
  auto has = [&](const std::string& s) { return std::ranges::find(a, s) != a.end(); };
  EXPECT_TRUE(has("q35,memory-backend=ram0"));
  EXPECT_TRUE(has("memory-backend-memfd,id=ram0,size=256M,share=on"));
  EXPECT_TRUE(has("virtio-rng-pci"));
  EXPECT_TRUE(has("unix:/run/x/qmp.sock,server=on,wait=off"));
  EXPECT_FALSE(has("pc,accel=tcg,memory-backend=ram0"));
}

}  // namespace
}  // namespace ftd
