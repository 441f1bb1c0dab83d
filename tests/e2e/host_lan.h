// A LAN where every host is its own network namespace, so a test can power a
// host off, cut it off or partition two hosts while the others keep running:
//   switch ns: bridge, one veth to each host
//   pri, sec:  vm bridge 10.77.0.11/24, 10.77.0.12/24 with the uplink as a port;
//              ftd (started in the namespace) adds its tap to the vm bridge, so
//              the guest (10.77.0.2) reaches the LAN at L2 through its host
//   arb:       10.77.0.13/24 on its uplink (witness / qnetd host)
//   client:    10.77.0.10/24 on its uplink
// Namespace and interface names are unique per instance. Everything is removed
// on destruction, in reverse order of creation (also after a failed test);
// processes still running in a host (a QEMU outliving its SIGKILLed ftd) are
// killed first, or they would keep its namespace alive unnamed.
// Thread contract: not thread-safe; one test thread drives it.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "common/result.h"
#include "net/netns.h"
#include "tests/e2e/lan_addresses.h"

namespace ftd::testing {

enum class HostId { kPrimary, kSecondary, kArbiter, kClient };

class HostLan {
 public:
  static Result<HostLan> create();
  HostLan(HostLan&&) noexcept = default;
  HostLan& operator=(HostLan&&) = delete;
  ~HostLan();

  // Network namespace of the host (run daemons there: Daemon::start(..., netns)).
  const std::string& ns(HostId h) const { return host(h).ns.name(); }
  // Runs `fn` (returning Result/Status) on a thread inside the host's
  // namespace: a socket made there stays there, usable from any thread.
  template <typename F>
  auto run_in(HostId h, F&& fn) const {
    return host(h).ns.run(std::forward<F>(fn));
  }
  // The host's IPv4 address, without prefix ("10.77.0.11").
  static std::string address(HostId h);
  // "pri", "sec", "arb", "client": for messages and rule names.
  static const char* role(HostId h);
  // The bridge ftd's tap joins (pri and sec; empty for the others).
  const std::string& vm_bridge(HostId h) const { return host(h).vm_bridge.name(); }
  const std::string& switch_ns() const { return switch_.name(); }
  // Unique tap names for the two daemons (ftd creates them).
  const std::string& primary_tap() const { return primary_tap_; }
  const std::string& secondary_tap() const { return secondary_tap_; }

  // Power off: all the host's links down, then SIGKILL every process in its
  // namespace until none is left (deploy/fence/kill-netns-host.sh, the same
  // script ftd's fencing example uses). The namespace itself stays until
  // destruction; the host cannot be restarted.
  Status kill_host(HostId h);
  // Powers a killed host on again: its links come up, with no process
  // running in it (start its daemons afresh). Returns once the uplink forwards.
  Status power_on(HostId h);

  // Drops all IP traffic between the two hosts' own addresses (nftables
  // input/output chains in both namespaces). Everything else keeps flowing,
  // including frames the hosts bridge for the guest. Idempotent.
  Status partition(HostId a, HostId b);
  Status heal(HostId a, HostId b);  // also ends lose()
  // Drops `percent` of the packets between the two hosts at random, both
  // directions (nftables numgen): a lossy link where netem is not available.
  Status lose(HostId a, HostId b, int percent);

  // Unplugs / replugs the host's cable at the switch: nothing reaches it,
  // its processes keep running. reconnect() returns once the port forwards.
  Status isolate(HostId h);
  Status reconnect(HostId h);

  // netem on both ends of the host's uplink: each direction gets `delay` and
  // `loss_percent` (a round trip through it: 2x delay). kUnavailable when the
  // kernel has no sch_netem.
  Status impair(HostId h, std::chrono::milliseconds delay, double loss_percent);
  Status clear_impairment(HostId h);  // no-op when not impaired

 private:
  struct Host {
    // Declaration order = creation order; members are destroyed in reverse.
    net::NetNamespace ns;
    net::VethPair uplink;   // a: port on the switch bridge, b: the host's end
    net::Bridge vm_bridge;  // pri, sec only
  };
  HostLan() = default;
  Status add_host(HostId h);
  Status set_partition(HostId self, HostId peer, int percent);
  // (namespace, device) of both ends of the host's uplink: switch side first.
  std::array<std::pair<std::string, std::string>, 2> uplink_ends(HostId h) const;
  Host& host(HostId h) { return hosts_[static_cast<size_t>(h)]; }
  const Host& host(HostId h) const { return hosts_[static_cast<size_t>(h)]; }

  // Declaration order = creation order; members are destroyed in reverse.
  net::NetNamespace switch_;
  net::Bridge switch_bridge_;
  std::array<Host, 4> hosts_;  // indexed by HostId, created in that order
  std::string primary_tap_, secondary_tap_;
};

}  // namespace ftd::testing
