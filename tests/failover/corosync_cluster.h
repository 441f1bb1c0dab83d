// Test harness: a real two-node corosync 3 cluster with corosync-qdevice on
// both nodes and corosync-qnetd on a third host, each host in its own network
// namespace (on a bridge in a private namespace) and its own mount namespace
// (`unshare -m`, private tmpfs on /run, /dev/shm, /var/lib/corosync,
// /etc/corosync), so libqb IPC and state are per host.
// Lifetime: everything it starts is SIGKILLed by PID and every namespace is
// removed when it is destroyed (also when a test fails half-way).
// Thread contract: not thread-safe; one test thread drives it.
#pragma once

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
};

class CorosyncCluster {
 public:
  // Builds the topology and starts qnetd (C), corosync and qdevice (A, B).
  // Does not wait for quorum: see wait_quorate().
  static Result<std::unique_ptr<CorosyncCluster>> start(CorosyncClusterOptions options = {});
  ~CorosyncCluster();
  CorosyncCluster(const CorosyncCluster&) = delete;
  CorosyncCluster& operator=(const CorosyncCluster&) = delete;

  static uint32_t nodeid(Host h) { return static_cast<uint32_t>(h) + 1; }
  static const char* name(Host h);
  std::string address(Host h) const;
  const std::string& workdir() const { return workdir_; }

  // Starts argv inside the host's mount+net namespaces (nsenter into its
  // `unshare -m` holder); stdout+stderr go to the returned log path.
  Result<std::string> spawn(Host h, const std::string& tag, std::vector<std::string> argv);
  // Runs argv to completion inside the host's namespaces; its output.
  Result<std::string> run(Host h, std::vector<std::string> argv);
  // Kills one process started by spawn() (by PID) and reaps it.
  Status kill(Host h, const std::string& tag);

  // Polls `corosync-cmapctl` on `h` until corosync answers on its IPC.
  Status wait_ipc(Host h, std::chrono::milliseconds timeout);
  // Polls `corosync-quorumtool -s` on `h` until it is quorate with `votes`
  // total votes and `nodes` members.
  Status wait_quorate(Host h, int votes, int nodes, std::chrono::milliseconds timeout);

  // Drops all traffic between A and B (nftables on the bridge); C stays reachable.
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
    net::NetNamespace ns;
    net::VethPair veth;  // a: "eth0" in the host, b: port on the bridge
    Subprocess holder;   // `unshare -m` shell owning the mount namespace
    std::vector<Proc> procs;
  };
  explicit CorosyncCluster(CorosyncClusterOptions options) : options_(options) {}
  Status build();
  Status start_host(Host h);
  std::vector<std::string> enter(Host h) const;
  std::string corosync_conf() const;
  HostState& host(Host h) { return hosts_[static_cast<int>(h)]; }
  const HostState& host(Host h) const { return hosts_[static_cast<int>(h)]; }

  CorosyncClusterOptions options_;
  std::string workdir_;
  std::string subnet_;  // "10.213.7."
  net::NetNamespace bridge_ns_;
  net::Bridge bridge_;
  HostState hosts_[3];
};

}  // namespace ftd::test
