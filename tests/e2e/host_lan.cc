#include "tests/e2e/host_lan.h"

#include <thread>
#include <utility>

#include "common/log.h"
#include "common/subprocess.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

constexpr HostId kAllHosts[] = {HostId::kPrimary, HostId::kSecondary, HostId::kArbiter,
                                HostId::kClient};

bool has_vm_bridge(HostId h) { return h == HostId::kPrimary || h == HostId::kSecondary; }

int last_octet(HostId h) {
  switch (h) {
    case HostId::kPrimary:
      return 11;
    case HostId::kSecondary:
      return 12;
    case HostId::kArbiter:
      return 13;
    case HostId::kClient:
      return 10;  // kClientIp
  }
  return 0;
}

// Name tag "h<kind><role letter>": n = namespace, s = switch port, e = host end, b = vm bridge.
std::string tag(char kind, HostId h) { return fmt::format("h{}{}", kind, HostLan::role(h)[0]); }

// Operstate UP is set by linkwatch (up to ~1 s after carrier), in the step
// that also tells the bridge the port may forward: waiting for it means the
// LAN works when create()/reconnect() return.
Status wait_link_up(const std::string& ns, const std::string& dev) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    FTD_ASSIGN_OR_RETURN(last, net::run_ip(ns, {"-o", "link", "show", "dev", dev}));
    if (last.find(" state UP ") != std::string::npos) return ok();
    std::this_thread::sleep_for(20ms);
  }
  return make_error(ErrorCode::kTimeout, "link {} in {} not up: {}", dev, ns, last);
}

Status run(const std::vector<std::string>& argv, std::string_view what) {
  if (auto r = run_command(argv); !r) return std::unexpected(r.error().with_context(what));
  return ok();
}

}  // namespace

std::string HostLan::address(HostId h) { return fmt::format("10.77.0.{}", last_octet(h)); }

const char* HostLan::role(HostId h) {
  switch (h) {
    case HostId::kPrimary:
      return "pri";
    case HostId::kSecondary:
      return "sec";
    case HostId::kArbiter:
      return "arb";
    case HostId::kClient:
      return "client";
  }
  return "?";
}

Result<HostLan> HostLan::create() {
  HostLan n;
  FTD_ASSIGN_OR_RETURN(n.switch_, net::NetNamespace::create(net::unique_ifname("hnsw")));
  FTD_ASSIGN_OR_RETURN(n.switch_bridge_,
                       net::Bridge::create(n.switch_.name(), net::unique_ifname("hbsw")));
  for (HostId h : kAllHosts) FTD_TRY(n.add_host(h));
  for (HostId h : kAllHosts) {
    FTD_TRY(wait_link_up(n.switch_.name(), n.host(h).uplink.a()));
    FTD_TRY(wait_link_up(n.ns(h), n.host(h).uplink.b()));
  }
  n.primary_tap_ = net::unique_ifname("hltp");
  n.secondary_tap_ = net::unique_ifname("hlts");
  return n;
}

HostLan::~HostLan() {
  for (HostId h : kAllHosts) {
    if (ns(h).empty()) continue;  // moved from, or create() failed before this host
    if (auto pids = run_command({"ip", "netns", "pids", ns(h)}); pids && pids->empty()) continue;
    if (auto r = kill_host(h); !r) spdlog::warn("host_lan.kill error={}", r.error().to_string());
  }
}

Status HostLan::add_host(HostId h) {
  Host& x = host(h);
  FTD_ASSIGN_OR_RETURN(x.ns, net::NetNamespace::create(net::unique_ifname(tag('n', h))));
  FTD_ASSIGN_OR_RETURN(
      x.uplink, net::VethPair::create(switch_.name(), net::unique_ifname(tag('s', h)), x.ns.name(),
                                      net::unique_ifname(tag('e', h))));
  FTD_TRY(switch_.ip({"link", "set", x.uplink.a(), "master", switch_bridge_.name()}));
  FTD_TRY(net::link_up(switch_.name(), x.uplink.a()));
  const std::string cidr = address(h) + "/24";
  if (!has_vm_bridge(h)) return net::add_address(x.ns.name(), x.uplink.b(), cidr);

  FTD_ASSIGN_OR_RETURN(x.vm_bridge,
                       net::Bridge::create(x.ns.name(), net::unique_ifname(tag('b', h))));
  // A bridge without a set MAC takes its lowest port's: when ftd's tap joined,
  // the host's address would change MAC and peers' ARP entries go stale.
  FTD_TRY(x.ns.ip({"link", "set", x.vm_bridge.name(), "address",
                   fmt::format("02:77:00:00:00:{:02x}", last_octet(h))}));
  FTD_TRY(x.ns.ip({"link", "set", x.uplink.b(), "master", x.vm_bridge.name()}));
  FTD_TRY(net::link_up(x.ns.name(), x.uplink.b()));
  return net::add_address(x.ns.name(), x.vm_bridge.name(), cidr);
}

Status HostLan::kill_host(HostId h) {
  // One implementation of "power off a namespace host": the shipped fence script.
  return run({std::string(FTD_SOURCE_DIR) + "/deploy/fence/kill-netns-host.sh", ns(h)},
             fmt::format("kill_host {}", role(h)));
}

Status HostLan::power_on(HostId h) {
  Host& x = host(h);
  FTD_TRY(net::link_up(x.ns.name(), x.uplink.b()));
  if (has_vm_bridge(h)) FTD_TRY(net::link_up(x.ns.name(), x.vm_bridge.name()));
  return reconnect(h);
}

// One table per (host, peer) in the host's namespace. Input/output hooks see
// only the host's own traffic: frames it bridges for the guest take the
// forward path (and only with br_netfilter), so they are never dropped here.
// "add; delete" first makes both directions idempotent, in one transaction.
// `percent` of the packets between the two dropped at random (100: all, 0: none).
Status HostLan::set_partition(HostId self, HostId peer, int percent) {
  const std::string table = fmt::format("ftd_part_{}", role(peer));
  std::string rules = fmt::format("add table inet {0}; delete table inet {0}", table);
  if (percent > 0) {
    const std::string drop =
        percent >= 100 ? "drop" : fmt::format("numgen random mod 100 < {} drop", percent);
    rules += fmt::format(
        "; add table inet {0} {{"
        " chain in {{ type filter hook input priority 0; ip saddr {1} {2}; }};"
        " chain out {{ type filter hook output priority 0; ip daddr {1} {2}; }}; }}",
        table, address(peer), drop);
  }
  return run(
      {"ip", "netns", "exec", ns(self), "nft", rules},
      fmt::format("{} {}% {}/{}", percent > 0 ? "drop" : "heal", percent, role(self), role(peer)));
}

Status HostLan::lose(HostId a, HostId b, int percent) {
  if (a == b || percent < 1 || percent > 100)
    return make_error(ErrorCode::kInvalidArgument, "lose: {}/{} {}%", role(a), role(b), percent);
  FTD_TRY(set_partition(a, b, percent));
  return set_partition(b, a, percent);
}

Status HostLan::partition(HostId a, HostId b) {
  if (a == b) return make_error(ErrorCode::kInvalidArgument, "partition: same host {}", role(a));
  return lose(a, b, 100);
}

Status HostLan::heal(HostId a, HostId b) {
  if (a == b) return make_error(ErrorCode::kInvalidArgument, "heal: same host {}", role(a));
  FTD_TRY(set_partition(a, b, 0));
  return set_partition(b, a, 0);
}

Status HostLan::isolate(HostId h) {
  FTD_TRY(switch_.ip({"link", "set", host(h).uplink.a(), "down"}));
  return ok();
}

Status HostLan::reconnect(HostId h) {
  FTD_TRY(net::link_up(switch_.name(), host(h).uplink.a()));
  FTD_TRY(wait_link_up(switch_.name(), host(h).uplink.a()));
  return wait_link_up(ns(h), host(h).uplink.b());
}

std::array<std::pair<std::string, std::string>, 2> HostLan::uplink_ends(HostId h) const {
  return {{{switch_.name(), host(h).uplink.a()}, {ns(h), host(h).uplink.b()}}};
}

Status HostLan::impair(HostId h, std::chrono::milliseconds delay, double loss_percent) {
  for (const auto& [netns, dev] : uplink_ends(h)) {
    auto r =
        run_command({"tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", "netem", "delay",
                     fmt::format("{}ms", delay.count()), "loss", fmt::format("{}%", loss_percent)});
    if (r) continue;
    (void)clear_impairment(h);  // never leave one direction impaired
    if (r.error().message.find("kind is unknown") != std::string::npos)
      return make_error(ErrorCode::kUnavailable, "impair {}: kernel has no sch_netem: {}", role(h),
                        r.error().message);
    return std::unexpected(r.error().with_context(fmt::format("impair {}", role(h))));
  }
  return ok();
}

Status HostLan::clear_impairment(HostId h) {
  for (const auto& [netns, dev] : uplink_ends(h)) {
    FTD_ASSIGN_OR_RETURN(std::string qdisc,
                         run_command({"tc", "-n", netns, "qdisc", "show", "dev", dev}));
    if (qdisc.find("netem") == std::string::npos) continue;
    FTD_TRY(run({"tc", "-n", netns, "qdisc", "del", "dev", dev, "root"},
                fmt::format("clear_impairment {}", role(h))));
  }
  return ok();
}

}  // namespace ftd::testing
