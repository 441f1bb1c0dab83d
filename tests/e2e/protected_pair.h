// A protected VM pair as an operator would run it, for the automatic-failover
// tests, the chaos commands and the failover benchmark: the real test guest
// under a primary ftd on host "pri", its secondary on host "sec", ftd-witness
// on host "arb" (or, with arbiter "corosync", corosync + corosync-qdevice on
// "pri" and "sec" and corosync-qnetd on "arb", each ftd inside its host's
// corosync mount namespace; nothing with "none"), every host its own network
// namespace (HostLan); replication, heartbeats and lease traffic over the
// hosts' addresses; a client namespace reaching the guest at 10.77.0.2.
// Lifetime: owns everything it starts (daemons, QEMUs, witness, namespaces,
// files) and removes it on destruction, also after a failed test.
// Thread contract: not thread-safe; one thread drives it.
#pragma once

#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/subprocess.h"
#include "tests/e2e/host_lan.h"
#include "tests/e2e/process_tree.h"
#include "tests/failover/corosync_cluster.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {

struct PairOptions {
  std::string arbiter = "witness";  // witness | corosync | none
  int memory_mib = 128;
  int epoch_ms = 50;
  int lease_ms = 1000;  // witness lease
  int corosync_settle_ms = 2000;
  test::CorosyncClusterOptions corosync;  // token, qdevice timeouts
  // Secondary: power the primary host off (deploy/fence/kill-netns-host.sh)
  // before activating, STONITH style.
  bool fence_primary = false;
  // The primary also listens for replication and has a replica directory,
  // so that a planned migration can make it the secondary.
  bool migratable = false;
  // > 0: the guest gets a disk: an image of this size with a fresh ext4
  // (mkfs.ext4), `--disk` on the primary, `--disk-mib` on the secondary, and
  // the guest's durable record log (ftd.disklog=1, port 7001) on it.
  int disk_mib = 0;
  // false: the disk stays a blank sparse raw image (no mkfs, no ftd.disklog),
  // for a guest that writes the block device itself (bench/disk_bench).
  bool disk_ext4 = true;
  // "qcow2": the primary's image is qcow2 (the ext4 image converted with
  // qemu-img), `--disk PATH,format=qcow2`; the replica stays raw.
  std::string disk_format = "raw";
  // Appended to the guest's kernel command line (e.g. "ftd.memload=64:5000").
  std::string append_extra;
  // Extra flags for both daemons (e.g. heartbeat settings).
  std::vector<std::string> extra_args;
  // Extra flags for one daemon only, after extra_args (e.g. two different
  // VM specs, which must keep the pair from ever syncing).
  std::vector<std::string> primary_extra_args;
  std::vector<std::string> secondary_extra_args;
  // false: start() returns once both daemons answer, without waiting for
  // `protected` or the guest (a pair that must not sync).
  bool wait_protected = true;
};

class ProtectedPair {
 public:
  // Starts witness, secondary, primary; returns once the primary reports
  // `protected` and the guest printed FTD-GUEST-READY.
  static Result<std::unique_ptr<ProtectedPair>> start(PairOptions options = {});
  ~ProtectedPair();
  ProtectedPair(const ProtectedPair&) = delete;
  ProtectedPair& operator=(const ProtectedPair&) = delete;

  HostLan& lan() { return *lan_; }
  Daemon& primary() { return *primary_; }
  Daemon& secondary() { return *secondary_; }
  double sync_seconds() const { return sync_s_; }

  // Host `h` (killed by HostLan::kill_host) powers on again and runs a fresh
  // secondary ftd (new run directory; --peer: the other host), as an operator
  // brings a repaired host back. "sec" keeps its replica directory (its old,
  // stale replica), "pri" gets a new one. Not with corosync. A host may
  // return more than once (after it ran the VM and was killed again): each
  // return is a new daemon, earlier ones stay owned by the pair.
  Result<Daemon*> return_as_secondary(HostId h);
  Daemon* returned() { return returned_.empty() ? nullptr : &returned_.back(); }
  // The log of the newest returned daemon (empty if none returned).
  const std::string& returned_log() const { return returned_log_; }
  // The newest returned daemon's replica disk (disk_mib > 0; empty if none returned).
  std::string returned_replica_disk() const {
    return returned_replica_dir_.empty() ? "" : returned_replica_dir_ + "/vm0.disk";
  }

  // The witness process alone (the "arbiter host" stays up).
  Status kill_witness();
  Status restart_witness();  // same state directory: terms must survive
  // SIGKILL only the primary's ftd: its QEMU survives, orphaned.
  Status kill_primary_daemon();
  // Starts the primary's ftd again on its host with its original flags plus
  // `extra` (e.g. --reattach); returns once its control API answers.
  Result<Daemon*> restart_primary_daemon(const std::vector<std::string>& extra);
  // SIGKILL only the secondary's ftd (after a failover its QEMU is the VM and survives).
  Status kill_secondary_daemon();
  // Starts a *primary* ftd on the secondary's host, in its run directory,
  // with `extra` (e.g. --reattach): how an operator restarts the daemon of a
  // VM that failed over to this host. It replaces secondary(); its peer is
  // the primary's host.
  Result<Daemon*> restart_secondary_as_primary(const std::vector<std::string>& extra);
  // Stops the secondary's ftd (SIGTERM: its standby QEMU goes with it) and
  // starts it again on its host, same replica directory, with
  // `secondary_extra_args` instead of the pair's; returns once its control
  // API answers. Not with corosync.
  Result<Daemon*> restart_secondary_daemon(const std::vector<std::string>& secondary_extra_args);
  // The corosync cluster (arbiter "corosync"), else null.
  test::CorosyncCluster* corosync() { return corosync_.get(); }

  std::string path(const std::string& name) const { return (work_.path() / name).string(); }
  std::string primary_run() const { return path("primary-run"); }
  // The primary's disk image and the secondary's replica of it (disk_mib > 0).
  std::string disk_image() const { return path("disk.img"); }
  std::string replica_disk() const;
  std::string secondary_run() const { return path("secondary-run"); }
  // The last `max` bytes of a log in the work directory.
  std::string tail(const std::string& name, size_t max = 6000) const;
  // Daemon logs, for a failing test's output.
  std::string logs() const;
  // Copies the regular files of the work directory (daemon, witness, client
  // and serial logs, verdicts) into `dir`, keeping the layout: the work
  // directory is removed with the pair, a failed bench run needs them later.
  Status copy_logs(const std::string& dir) const;

 private:
  ProtectedPair() = default;
  Status start_all();
  std::vector<std::string> daemon_args(bool primary) const;
  std::vector<std::string> daemon_args(HostId self, bool primary, const std::string& run_dir,
                                       const std::string& replica_dir) const;
  Status start_corosync();
  Result<Daemon> start_daemon(bool primary);
  Status kill_daemon(Daemon& d);
  Result<Daemon*> restart_daemon(std::optional<Daemon>& slot, HostId h,
                                 std::vector<std::string> args,
                                 const std::vector<std::string>& extra);
  // The secondary's replica directory, as its ftd sees it.
  std::string replica_dir() const;

  PairOptions options_;
  // Destroyed in reverse: daemons, corosync, witness, QEMUs, namespaces, files.
  TempDir work_;
  TempDir replica_{"/dev/shm"};
  std::optional<HostLan> lan_;
  QemuReaper reaper_;
  std::optional<Subprocess> witness_;
  std::unique_ptr<test::CorosyncCluster> corosync_;
  std::optional<Daemon> secondary_;
  std::optional<Daemon> primary_;
  std::list<Daemon> returned_;  // stable addresses: callers keep Daemon*
  std::string returned_log_;
  std::string returned_replica_dir_;
  double sync_s_ = 0;
};

// The guest's MAC, as the tests' clients see it.
inline constexpr const char* kGuestMac = "52:54:00:12:34:56";

}  // namespace ftd::testing
