// A real two-node Pacemaker cluster on HostLan's "pri" and "sec" hosts:
// corosync 3 (knet, `two_node: 1`) and pacemakerd in each host's network
// namespace, each node with its own mount and UTS namespace (the
// CorosyncCluster holder: private /run, /dev/shm, corosync state; hostname =
// node name "a" on pri, "b" on sec). Pacemaker's state and logs, the OCF
// agent directory and ftd's config and log directory are per node too, bind
// mounts of node_path() so a test can install files before start and read
// logs after a host was killed (a bind mount needs its mount point: a
// directory missing from the machine's root is created there, empty).
// The cluster runs with stonith-enabled=false: fencing here is the host kill
// itself (HostLan::kill_host powers the node off before the survivor sees it
// go), so Pacemaker may treat a lost node as down at once.
// Lifetime: stops every process it started (by PID) on destruction; destroy
// it before the HostLan, which then kills what those left in the hosts
// (resource agents' daemons, QEMUs).
// Thread contract: not thread-safe; one test thread drives it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "tests/e2e/host_lan.h"
#include "tests/failover/corosync_cluster.h"

namespace ftd::testing {

class PacemakerCluster {
 public:
  using Node = test::Host;  // kA on pri, kB on sec

  // Starts corosync and pacemakerd on both nodes; does not wait for the
  // cluster to form (wait_online).
  static Result<std::unique_ptr<PacemakerCluster>> start(const HostLan& lan);

  static const char* name(Node n) { return test::CorosyncCluster::name(n); }
  static HostId host(Node n) { return n == Node::kA ? HostId::kPrimary : HostId::kSecondary; }
  // `dir` (/var/lib/pacemaker, /var/log/pacemaker, /usr/lib/ocf/resource.d,
  // /etc/ftd or /var/log/ftd) of node n, as seen from outside.
  std::string node_path(Node n, const std::string& dir) const;
  // Installs the source tree's deploy/ocf/ftd as ocf:ftd:ftd on both nodes.
  Status install_agent() const;

  // Waits until `crm_mon` on n shows both nodes online with a DC elected.
  Status wait_online(Node n, std::chrono::seconds timeout);
  // Runs argv to completion inside the node's namespaces (cibadmin, crm_mon).
  Result<std::string> run(Node n, std::vector<std::string> argv);
  // `crm_mon -1 -A` on n, for failure messages and progress.
  std::string status(Node n);
  // The last `max` bytes of n's pacemaker.log lines from the agent (ftd(...)).
  std::string agent_log(Node n, size_t max = 4000) const;

 private:
  PacemakerCluster() = default;
  Status start_node(Node n);

  std::unique_ptr<test::CorosyncCluster> corosync_;
};

}  // namespace ftd::testing
