// RAII namespaces, veth pairs, bridges and taps: created for real, then gone.
#include "net/netns.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "net/tap_device.h"
#include "net_test_util.h"

namespace ftd::net {
namespace {

using namespace std::chrono_literals;

bool netns_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/run/netns/" + name).c_str(), &st) == 0;
}

Result<UniqueFd> udp_socket_bound(const std::string& ip, uint16_t port) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno_error("bind");
  return s;
}

TEST(NetNamespace, CreatedRemovedAndIsolated) {
  std::string name = unique_ifname("ftns");
  {
    auto ns = NetNamespace::create(name);
    ASSERT_TRUE(ns) << ns.error().to_string();
    EXPECT_TRUE(netns_exists(name));
    // A second namespace of the same name is an error and does not disturb the first.
    auto dup = NetNamespace::create(name);
    EXPECT_FALSE(dup);
    EXPECT_TRUE(netns_exists(name));

    auto tap = ns->run([] { return TapDevice::open({.name = "tapiso0"}); });
    ASSERT_TRUE(tap) << tap.error().to_string();
    EXPECT_TRUE(ns->run([] { return interface_index("tapiso0"); }));
    EXPECT_FALSE(interface_index("tapiso0"));  // not in the caller's namespace
    auto shown = ns->ip({"-o", "link", "show", "tapiso0"});
    ASSERT_TRUE(shown) << shown.error().to_string();
    EXPECT_NE(shown->find("UP"), std::string::npos) << *shown;
    tap->close();
    EXPECT_FALSE(ns->run([] { return interface_index("tapiso0"); }));  // gone with its fd
  }
  EXPECT_FALSE(netns_exists(name));
}

TEST(NetNamespace, RunReportsErrorsFromInside) {
  auto ns = NetNamespace::create(unique_ifname("ftnr"));
  ASSERT_TRUE(ns);
  auto r = ns->run([]() -> Result<int> { return make_error(ErrorCode::kNotFound, "inside"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "inside");
  auto bad = TapDevice::open({.name = "this-name-is-too-long"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(NetNamespace, VethAcrossNamespacesCarriesUdp) {
  auto a = NetNamespace::create(unique_ifname("ftva"));
  auto b = NetNamespace::create(unique_ifname("ftvb"));
  ASSERT_TRUE(a && b);
  auto veth = VethPair::create(a->name(), "va0", b->name(), "vb0");
  ASSERT_TRUE(veth) << veth.error().to_string();
  ASSERT_TRUE(add_address(a->name(), "va0", "10.78.0.1/24"));
  ASSERT_TRUE(add_address(b->name(), "vb0", "10.78.0.2/24"));
  auto rx = b->run([] { return udp_socket_bound("10.78.0.2", 4000); });
  auto tx = a->run([] { return udp_socket_bound("10.78.0.1", 0); });
  ASSERT_TRUE(rx && tx) << (rx ? tx.error().to_string() : rx.error().to_string());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(4000);
  ::inet_pton(AF_INET, "10.78.0.2", &to.sin_addr);
  ASSERT_EQ(::sendto(tx->get(), "hi", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 2);
  ASSERT_TRUE(testing::wait_readable(rx->get(), 3s));
  char buf[8] = {};
  EXPECT_EQ(::recv(rx->get(), buf, sizeof buf, 0), 2);
  EXPECT_STREQ(buf, "hi");
  *veth = VethPair{};  // deleting one end deletes both
  EXPECT_FALSE(b->ip({"link", "show", "vb0"}));
}

TEST(NetNamespace, TapJoinsBridgeAndBridgeIsRemoved) {
  auto ns = NetNamespace::create(unique_ifname("ftbr"));
  ASSERT_TRUE(ns);
  {
    auto br = Bridge::create(ns->name(), "br0");
    ASSERT_TRUE(br) << br.error().to_string();
    auto tap = ns->run([] { return TapDevice::open({.name = "tapbr0", .bridge = "br0"}); });
    ASSERT_TRUE(tap) << tap.error().to_string();
    auto shown = ns->ip({"-o", "link", "show", "tapbr0"});
    ASSERT_TRUE(shown);
    EXPECT_NE(shown->find("master br0"), std::string::npos) << *shown;
    auto missing = ns->run([] { return TapDevice::open({.name = "tapbr1", .bridge = "nobr"}); });
    EXPECT_FALSE(missing);
    EXPECT_FALSE(ns->ip({"link", "show", "tapbr1"}));  // the failed tap did not linger
  }
  EXPECT_FALSE(ns->ip({"link", "show", "br0"}));
}

}  // namespace
}  // namespace ftd::net
