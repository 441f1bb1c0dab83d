// HostLan on real namespaces (root, no QEMU): every failure operation cuts
// exactly what it says and is undone by its counterpart.
#include "tests/e2e/host_lan.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <sstream>

#include "common/subprocess.h"
#include "tests/e2e/client_probes.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

constexpr HostId kPri = HostId::kPrimary;
constexpr HostId kSec = HostId::kSecondary;
constexpr HostId kArb = HostId::kArbiter;
constexpr HostId kCli = HostId::kClient;

// One echo within 1 s; retried for up to ~3 s because a freshly joined bridge
// port only forwards once linkwatch has run.
bool reachable(const std::string& ns, const std::string& ip) {
  for (int i = 0; i < 3; ++i) {
    if (run_command({"ip", "netns", "exec", ns, "ping", "-n", "-c1", "-W1", ip})) return true;
  }
  return false;
}

// Asserted only where the same path was seen working just before (ARP entry
// cached, replies within milliseconds), so half a second of silence means cut.
bool blocked(const std::string& ns, const std::string& ip) {
  return !run_command({"ip", "netns", "exec", ns, "ping", "-n", "-c1", "-W0.5", ip});
}

std::vector<std::string> netns_list() {
  auto out = run_command({"ip", "netns", "list"});
  std::vector<std::string> names;
  if (!out) return names;
  std::istringstream in(*out);
  std::string line;
  while (std::getline(in, line)) names.push_back(line.substr(0, line.find(' ')));
  return names;
}

bool listed(const std::vector<std::string>& names, const std::string& ns) {
  return std::find(names.begin(), names.end(), ns) != names.end();
}

// Stands in for the guest: its own namespace with a NIC whose peer is a port
// of the host's vm bridge, as ftd's tap is; addressed like the guest.
struct StandInGuest {
  net::NetNamespace ns;
  net::VethPair nic;  // a: the guest's NIC, b: the port on the host's vm bridge

  static Result<StandInGuest> attach(const HostLan& lan, HostId h) {
    StandInGuest g;
    FTD_ASSIGN_OR_RETURN(g.ns, net::NetNamespace::create(net::unique_ifname("hgst")));
    FTD_ASSIGN_OR_RETURN(g.nic, net::VethPair::create(g.ns.name(), net::unique_ifname("hgn"),
                                                      lan.ns(h), net::unique_ifname("hgp")));
    FTD_TRY(net::run_ip(lan.ns(h), {"link", "set", g.nic.b(), "master", lan.vm_bridge(h)}));
    FTD_TRY(net::link_up(lan.ns(h), g.nic.b()));
    FTD_TRY(net::add_address(g.ns.name(), g.nic.a(), kGuestCidr));
    return g;
  }
};

class HostLanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    auto lan = HostLan::create();
    ASSERT_TRUE(lan) << lan.error().to_string();
    lan_.emplace(std::move(*lan));
  }
  const std::string& ns(HostId h) const { return lan_->ns(h); }
  static std::string ip(HostId h) { return HostLan::address(h); }

  std::optional<HostLan> lan_;
};

TEST_F(HostLanTest, EveryHostReachesEveryOther) {
  EXPECT_EQ(ip(kCli), kClientIp);
  for (HostId from : {kPri, kSec, kArb, kCli}) {
    for (HostId to : {kPri, kSec, kArb, kCli}) {
      if (from == to) continue;
      EXPECT_TRUE(reachable(ns(from), ip(to)))
          << HostLan::role(from) << " -> " << HostLan::role(to);
    }
  }
}

TEST_F(HostLanTest, VmBridgeKeepsItsMacWhenAPortJoins) {
  auto mac = [&] {
    auto out = net::run_ip(ns(kPri), {"-br", "link", "show", "dev", lan_->vm_bridge(kPri)});
    return out ? *out : "";
  };
  const std::string before = mac();
  ASSERT_NE(before.find("02:77:00:00:00:0b"), std::string::npos) << before;
  auto guest = StandInGuest::attach(*lan_, kPri);
  ASSERT_TRUE(guest) << guest.error().to_string();
  EXPECT_EQ(mac(), before);
}

TEST_F(HostLanTest, PartitionCutsOnlyTrafficBetweenTheTwoHosts) {
  auto guest = StandInGuest::attach(*lan_, kPri);
  ASSERT_TRUE(guest) << guest.error().to_string();
  ASSERT_TRUE(reachable(ns(kPri), ip(kSec)));
  ASSERT_TRUE(reachable(ns(kSec), ip(kPri)));
  ASSERT_TRUE(reachable(guest->ns.name(), kClientIp));

  ASSERT_TRUE(lan_->partition(kPri, kSec));
  ASSERT_TRUE(lan_->partition(kPri, kSec)) << "partition is idempotent";
  EXPECT_TRUE(blocked(ns(kPri), ip(kSec)));
  EXPECT_TRUE(blocked(ns(kSec), ip(kPri)));
  EXPECT_TRUE(reachable(ns(kPri), ip(kArb)));
  EXPECT_TRUE(reachable(ns(kSec), ip(kArb)));
  EXPECT_TRUE(reachable(ns(kArb), ip(kPri)));
  EXPECT_TRUE(reachable(ns(kCli), ip(kPri)));
  EXPECT_TRUE(reachable(ns(kCli), ip(kSec)));
  // Frames pri bridges for its guest are not filtered, not even those addressed to sec.
  EXPECT_TRUE(reachable(guest->ns.name(), kClientIp));
  EXPECT_TRUE(reachable(ns(kCli), kGuestIp));
  EXPECT_TRUE(reachable(guest->ns.name(), ip(kSec)));

  ASSERT_TRUE(lan_->heal(kPri, kSec));
  ASSERT_TRUE(lan_->heal(kPri, kSec)) << "heal is idempotent";
  EXPECT_TRUE(reachable(ns(kPri), ip(kSec)));
  EXPECT_TRUE(reachable(ns(kSec), ip(kPri)));
  EXPECT_FALSE(lan_->partition(kPri, kPri));
}

TEST_F(HostLanTest, IsolateCutsTheHostUntilReconnect) {
  ASSERT_TRUE(reachable(ns(kPri), ip(kArb)));
  ASSERT_TRUE(lan_->isolate(kPri));
  EXPECT_TRUE(blocked(ns(kPri), ip(kArb)));
  EXPECT_TRUE(blocked(ns(kCli), ip(kPri)));
  EXPECT_TRUE(reachable(ns(kSec), ip(kArb))) << "the rest of the LAN keeps working";
  ASSERT_TRUE(lan_->reconnect(kPri));
  EXPECT_TRUE(reachable(ns(kPri), ip(kArb)));
  EXPECT_TRUE(reachable(ns(kCli), ip(kPri)));
}

TEST_F(HostLanTest, KillHostLeavesNoProcessInTheHost) {
  ASSERT_TRUE(reachable(ns(kArb), ip(kSec)));
  auto victim = Subprocess::spawn({.argv = {"ip", "netns", "exec", ns(kSec), "sleep", "1000"}});
  ASSERT_TRUE(victim) << victim.error().to_string();
  // Forks: the grandchild is not ours, kill_host must find it by namespace.
  auto forker = Subprocess::spawn(
      {.argv = {"ip", "netns", "exec", ns(kSec), "sh", "-c", "sleep 1000 & exec sleep 1000"}});
  ASSERT_TRUE(forker) << forker.error().to_string();
  auto pids = [&] {
    auto out = run_command({"ip", "netns", "pids", ns(kSec)});
    return out ? *out : "?";
  };
  // `ip netns exec` enters the namespace just after we spawn it.
  ASSERT_TRUE(wait_until(
      [&] {
        auto p = pids();
        return std::count(p.begin(), p.end(), '\n') >= 3;
      },
      2s))
      << pids();

  auto killed = lan_->kill_host(kSec);
  ASSERT_TRUE(killed) << killed.error().to_string();
  auto code = victim->wait(2s);
  ASSERT_TRUE(code) << code.error().to_string();
  EXPECT_EQ(*code, 128 + SIGKILL);
  EXPECT_EQ(pids(), "");
  EXPECT_TRUE(blocked(ns(kArb), ip(kSec)));
  EXPECT_TRUE(reachable(ns(kArb), ip(kPri))) << "the rest of the LAN keeps working";
}

TEST_F(HostLanTest, ImpairDelaysTheUplinkUntilCleared) {
  // Best of three echoes: the delay added, not the machine's load.
  auto min_rtt_ms = [&](HostId from, HostId to) {
    auto out = run_command(
        {"ip", "netns", "exec", ns(from), "ping", "-D", "-n", "-c3", "-i0.2", "-W2", ip(to)});
    PingReport r = parse_ping(out ? *out : out.error().message);
    double best = 1e9;
    for (const auto& p : r.replies) best = std::min(best, p.rtt_ms);
    return best;
  };
  ASSERT_TRUE(reachable(ns(kArb), ip(kPri)));
  // No loss while measuring, so the check cannot flake.
  auto impaired = lan_->impair(kPri, 20ms, 0);
  if (!impaired && impaired.error().code == ErrorCode::kUnavailable)
    GTEST_SKIP() << impaired.error().to_string();
  ASSERT_TRUE(impaired) << impaired.error().to_string();
  // Each direction is delayed: a round trip through the uplink takes >= 40 ms.
  EXPECT_GE(min_rtt_ms(kArb, kPri), 40);
  EXPECT_LT(min_rtt_ms(kArb, kSec), 20) << "other hosts are not impaired";

  ASSERT_TRUE(lan_->impair(kPri, 20ms, 5)) << "impairing again replaces the settings";
  for (const auto& where : {lan_->switch_ns(), ns(kPri)}) {
    auto qdisc = run_command({"tc", "-n", where, "qdisc", "show"});
    ASSERT_TRUE(qdisc) << qdisc.error().to_string();
    EXPECT_NE(qdisc->find("netem"), std::string::npos) << *qdisc;
    EXPECT_NE(qdisc->find("delay 20ms"), std::string::npos) << *qdisc;
    EXPECT_NE(qdisc->find("loss 5%"), std::string::npos) << *qdisc;
  }

  ASSERT_TRUE(lan_->clear_impairment(kPri));
  ASSERT_TRUE(lan_->clear_impairment(kPri)) << "clearing twice is fine";
  EXPECT_LT(min_rtt_ms(kArb, kPri), 20);
}

TEST(HostLan, DestructionRemovesEveryNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  std::vector<std::string> ours;
  std::optional<Subprocess> left_running;  // outlives the LAN, as a stray QEMU would
  {
    auto lan = HostLan::create();
    ASSERT_TRUE(lan) << lan.error().to_string();
    ours = {lan->switch_ns(), lan->ns(kPri), lan->ns(kSec), lan->ns(kArb), lan->ns(kCli)};
    auto guest = StandInGuest::attach(*lan, kPri);
    ASSERT_TRUE(guest) << guest.error().to_string();
    ours.push_back(guest->ns.name());
    const auto during = netns_list();
    for (const auto& n : ours) EXPECT_TRUE(listed(during, n)) << n;
    ASSERT_TRUE(lan->kill_host(kSec));  // a dead host is removed too
    auto p = Subprocess::spawn({.argv = {"sleep", "1000"}, .netns = lan->ns(kPri)});
    ASSERT_TRUE(p) << p.error().to_string();
    left_running.emplace(std::move(*p));
  }
  const auto after = netns_list();
  for (const auto& n : ours) EXPECT_FALSE(listed(after, n)) << n << " left behind";
  auto code = left_running->wait(2s);
  ASSERT_TRUE(code) << code.error().to_string();
  EXPECT_EQ(*code, 128 + SIGKILL) << "a process left in a host is killed";
}

}  // namespace
}  // namespace ftd::testing
