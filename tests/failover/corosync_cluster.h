// Test harness: a real two-node corosync 3 cluster with corosync-qdevice on
// both nodes and corosync-qnetd on a third host (or, with qdevice off, a
// `two_node: 1` pair, as under Pacemaker), each host in its own network
// namespace, mount namespace and UTS namespace (`unshare -m -u`, private
// tmpfs on /run, /dev/shm, /var/lib/corosync, /etc/corosync; hostname = node
// name), so libqb IPC and state are per host.
//
// start() builds its own network (a bridge in a private namespace);
// start_in() runs the daemons in namespaces someone else owns (the e2e
// HostLan), so ftd and its corosync can share a host.
// Lifetime: everything it starts is SIGKILLed by PID and every namespace is
// removed when it is destroyed (also when a test fails half-way).
// Thread contract: not thread-safe; one test thread drives it.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/subprocess.h"
#include "net/netns.h"

namespace ftd::test {

enum class Host { kA = 0, kB = 1, kC = 2 };  // A, B: corosync nodes 1, 2; C: qnetd

struct CorosyncClusterOptions {
  int token_ms = 1000;
  // quorum.device.timeout / sync_timeout; 0 keeps corosync's defaults.
  int qdevice_timeout_ms = 0;
  int qdevice_sync_timeout_ms = 0;
  // corosync's default SCHED_RR 99. Off here: with two corosyncs on a 2-CPU
  // machine, their sync phase spins while waiting for the (normal priority)
  // qdevice's poll, starving it and every other process until RT throttling
  // (~950 ms). Real hosts have one corosync and more CPUs.
  bool realtime = false;
  // false: no qdevice/qnetd (host C unused), `two_node: 1` instead: the
  // quorum Pacemaker clusters of two nodes run with.
  bool qdevice = true;
  // More per-host directories (e.g. Pacemaker's /var/lib/pacemaker), each a
  // bind mount of host_path(h, dir): they outlive a killed host (its logs)
  // and the test can put files into them from outside.
  std::vector<std::string> persistent_dirs;
};

// Existing hosts to run the cluster in: network namespace and IPv4 address
// of A, B, C (indexed by Host).
struct CorosyncHosts {
  std::array<std::string, 3> netns;
  std::array<std::string, 3> address;
};

class CorosyncCluster {
 public:
  // Builds the topology and starts qnetd (C), corosync and qdevice (A, B).
  // Does not wait for quorum: see wait_quorate().
  static Result<std::unique_ptr<CorosyncCluster>> start(CorosyncClusterOptions options = {});
  // The same daemons in the given hosts' network namespaces (each gets its
  // own mount namespace holder). partition_ab() is then not available (the
  // owner of the network cuts links), kill_host() only kills our processes.
  static Result<std::unique_ptr<CorosyncCluster>> start_in(CorosyncHosts hosts,
                                                           CorosyncClusterOptions options = {});
  ~CorosyncCluster();
  CorosyncCluster(const CorosyncCluster&) = delete;
  CorosyncCluster& operator=(const CorosyncCluster&) = delete;

  static uint32_t nodeid(Host h) { return static_cast<uint32_t>(h) + 1; }
  static const char* name(Host h);
  std::string address(Host h) const;
  const std::string& workdir() const { return workdir_; }
  // Where `dir` (one of options.persistent_dirs) of host h lives outside.
  std::string host_path(Host h, const std::string& dir) const;

  // Starts argv inside the host's mount+net namespaces (nsenter into its
  // `unshare -m` holder); stdout+stderr go to the returned log path.
  Result<std::string> spawn(Host h, const std::string& tag, std::vector<std::string> argv);
  // nsenter prefix that runs a command in the host's mount+net namespaces.
  std::vector<std::string> enter(Host h) const;
  // Runs argv to completion inside the host's namespaces; its output.
  Result<std::string> run(Host h, std::vector<std::string> argv);
  // Kills one process started by spawn() (by PID) and reaps it.
  Status kill(Host h, const std::string& tag);

  // Polls `corosync-cmapctl` on `h` until corosync answers on its IPC.
  Status wait_ipc(Host h, std::chrono::milliseconds timeout);
  // Polls `corosync-quorumtool -s` on `h` until it is quorate with `votes`
  // total votes and `nodes` members.
  Status wait_quorate(Host h, int votes, int nodes, std::chrono::milliseconds timeout);

  // Drops all traffic between A and B (nftables on the bridge); C stays
  // reachable. Own topology only (start()).
  Status partition_ab();
  Status heal_ab();
  // Host loss: SIGKILL every process started in the host, then link down.
  Status kill_host(Host h);

 private:
  struct Proc {
    std::string tag;
    Subprocess process;
  };
  struct HostState {
    net::NetNamespace ns;  // own topology only
    net::VethPair veth;    // a: "eth0" in the host, b: port on the bridge
    std::string netns;     // where the daemons run (ns.name() or given)
    std::string address;
    Subprocess holder;  // `unshare -m` shell owning the mount namespace
    std::vector<Proc> procs;
  };
  explicit CorosyncCluster(CorosyncClusterOptions options) : options_(options) {}
  Status make_workdir();
  Status build();
  Status start_daemons();
  Status start_host(Host h);
  std::string corosync_conf() const;
  std::string holder_script(Host h) const;
  // A and B, plus C (qnetd) when the cluster has a qdevice.
  std::vector<Host> hosts_used() const;
  HostState& host(Host h) { return hosts_[static_cast<int>(h)]; }
  const HostState& host(Host h) const { return hosts_[static_cast<int>(h)]; }

  CorosyncClusterOptions options_;
  std::string workdir_;
  net::NetNamespace bridge_ns_;
  net::Bridge bridge_;
  HostState hosts_[3];
};

}  // namespace ftd::test
