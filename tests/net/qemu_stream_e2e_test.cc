// Real QEMU on the proxy: QEMU 7.2's `-netdev stream` client connects to our
// socket and its virtio-net option ROM (iPXE, no guest OS needed) broadcasts
// DHCP discovers. Checks the framing against QEMU itself and that its output
// is held until committed.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/subprocess.h"
#include "net/netns.h"
#include "net/network_proxy.h"
#include "net_test_util.h"

namespace ftd::net {
namespace {

using namespace std::chrono_literals;
constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0xf7, 0x0d, 0x01};

bool is_dhcp_from_guest(const FrameBytes& f) {
  // Ethernet(14) + IPv4(ihl) + UDP: src 68 -> dst 67.
  if (f.size() < 14 + 20 + 8 || std::memcmp(f.data() + 6, kGuestMac, 6) != 0) return false;
  if (f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 17) return false;
  size_t udp = 14 + (f[14] & 0x0f) * 4u;
  return f.size() >= udp + 8 && f[udp] == 0 && f[udp + 1] == 68 && f[udp + 2] == 0 &&
         f[udp + 3] == 67;
}

TEST(QemuStreamE2E, QemuFramesAreHeldUntilCommit) {
  if (!std::filesystem::exists("/usr/bin/qemu-system-x86_64")) GTEST_SKIP() << "no QEMU";
  auto ns = NetNamespace::create(unique_ifname("ftqe"));
  ASSERT_TRUE(ns) << ns.error().to_string();
  auto tap = ns->run([] { return TapDevice::open({.name = "tapqemu0", .disable_ipv6 = true}); });
  ASSERT_TRUE(tap) << tap.error().to_string();
  auto wire = ns->run([] { return testing::PacketSocket::open("tapqemu0", ETH_P_ALL); });
  ASSERT_TRUE(wire) << wire.error().to_string();
  std::string path = testing::unique_socket_path("qemu");
  auto proxy = NetworkProxy::start({.socket_path = path}, std::move(*tap));
  ASSERT_TRUE(proxy) << proxy.error().to_string();

  std::string log = path + ".log";
  auto qemu = Subprocess::spawn(
      {.argv = {"qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults",
                "-display", "none", "-serial", "none", "-boot", "n", "-netdev",
                "stream,id=n0,server=off,addr.type=unix,addr.path=" + path, "-device",
                "virtio-net-pci,netdev=n0,mac=52:54:00:f7:0d:01"},
       .log_path = log});
  ASSERT_TRUE(qemu) << qemu.error().to_string();
  ASSERT_TRUE((*proxy)->wait_for_guest(20s)) << "QEMU never connected; see " << log;

  // Wait for iPXE's first frames to reach the proxy; none may reach the tap.
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while ((*proxy)->stats().frames_from_guest < 1 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(qemu->running()) << "QEMU exited; see " << log;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE((*proxy)->stats().frames_from_guest, 1u) << "no frame from QEMU";
  auto leak_deadline = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < leak_deadline) {
    auto f = wire->recv(100ms);
    if (f) {  // everything queued since the socket opened, QEMU's frames included
      ASSERT_NE(std::memcmp(f->data() + 6, kGuestMac, 6), 0) << "guest frame leaked";
    }
  }
  auto held = (*proxy)->stats();
  EXPECT_EQ(held.frames_released, 0u);
  EXPECT_GE(held.frames_held, 1u);

  // Commit: what QEMU sent appears on the tap, intact (a DHCP discover among it).
  (*proxy)->commit((*proxy)->advance_epoch() - 1);
  bool saw_dhcp = false;
  auto end = std::chrono::steady_clock::now() + 2s;
  while (!saw_dhcp && std::chrono::steady_clock::now() < end) {
    if (auto f = wire->recv(100ms)) saw_dhcp = is_dhcp_from_guest(*f);
  }
  EXPECT_TRUE(saw_dhcp);
  auto s = (*proxy)->stats();
  EXPECT_GE(s.frames_released, held.frames_held);
  EXPECT_EQ(s.corrupt_streams, 0u);

  // QEMU going away is survived; the proxy keeps its tap and waits for the next one.
  qemu->kill(SIGKILL);
  (void)qemu->wait(5s);
  deadline = std::chrono::steady_clock::now() + 5s;
  while ((*proxy)->stats().guest_connected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE((*proxy)->stats().guest_connected);
  EXPECT_TRUE(ns->run([] { return interface_index("tapqemu0"); }));
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace ftd::net
