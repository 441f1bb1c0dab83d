// One VM on this host through its whole life, and the one place that changes
// its role. The roles and the transitions between them:
//
//   secondary (replica) --failover--> active, unprotected --protect(peer)--> primary
//   primary --unprotect--> active, unprotected --protect(peer)--> primary
//   primary --migrate--> secondary          (the peer: secondary --handover--> primary)
//
// "active, unprotected" is a guest running here with nobody holding a
// replica: after a failover, or after `unprotect`. Protecting it builds a
// PrimaryVm around the running guest (the activated standby QEMU on the
// replica file, its NIC behind this host's output-commit proxy) exactly like
// one launched as primary; during its initial sync output still flows (no
// replica could take over yet) and from the first checkpoint on it is held.
// A planned migration hands the VM to the secondary at one final checkpoint
// and turns this host into its secondary: the replica image is seeded with
// the guest's final RAM (or, for a guest that ran on a replica image, is
// that image), so the new primary's differential sync sends only what
// changed since. The peer protects the VM back to this host by itself.
// Each transition is logged (`vm.role from=... to=... why=...`).
//
// Threads: control threads call everything. Transitions are serialised by a
// `busy` mark (a second one gets a clear error at once instead of queueing);
// mu_ is never held across slow work (QMP, network), so status() answers
// during a transition.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/pipeline.h"
#include "checkpoint/running_guest.h"
#include "common/mutex.h"
#include "common/task_thread.h"
#include "failover/failover_options.h"
#include "ftd.pb.h"
#include "planning/plan_sampler.h"
#include "primary/primary_vm.h"
#include "roles/vm_failover.h"
#include "secondary/activator.h"
#include "secondary/secondary_vm.h"
#include "security/tls_options.h"

namespace ftd {

struct ManagedVmConfig {
  std::string vm_name;
  std::string peer;  // the replication peer `protect` uses when not told one
  TlsFiles tls;
  std::string peer_identity;  // pinned certificate name of the peer (TLS)
  bool insecure = false;      // plaintext to a non-loopback peer allowed (--insecure)
  PipelineConfig pipeline;
  std::string vm_spec_digest;  // sent in Hello when this host protects the VM
  FailoverOptions failover;
  // protect(peer): how long the peer has to accept the stream before the
  // call fails and the guest keeps running unprotected.
  std::chrono::milliseconds connect_timeout{5000};
  // ---- becoming a secondary (planned migration); without them migrate() refuses
  std::string advertise;  // this host's replication address, as the peer reaches it
  std::optional<SecondaryVmConfig> replica;
  std::function<Result<std::unique_ptr<Activator>>()> make_activator;
  std::chrono::milliseconds migrate_sync_timeout{60000};
  // After a handover made this host the primary: how long it keeps trying to
  // protect the VM back to the old primary (which becomes a secondary first).
  std::chrono::milliseconds protect_back_timeout{60000};
};

class ManagedVm {
 public:
  // A guest launched here as primary; protect() starts replication to
  // config.peer when `start_protected` (without waiting for the peer).
  static Result<std::unique_ptr<ManagedVm>> as_primary(ManagedVmConfig config, RunningGuest guest,
                                                       bool start_protected);
  // A replica fed by a primary elsewhere.
  static Result<std::unique_ptr<ManagedVm>> as_secondary(ManagedVmConfig config,
                                                         std::shared_ptr<SecondaryVm> vm);
  ~ManagedVm();

  const std::string& name() const { return config_.vm_name; }
  v1::VmStatus status() const FTD_EXCLUDES(mu_);
  // Protects the guest running here to `peer` (empty: the configured one).
  // Returns once the peer accepted the stream; on any error the guest keeps
  // running here unprotected and nothing else changed.
  Status protect(const std::string& peer) FTD_EXCLUDES(mu_);
  Status unprotect() FTD_EXCLUDES(mu_);
  Result<v1::FailoverReply> failover() FTD_EXCLUDES(mu_);
  // Planned migration to the peer; returns once this host is its secondary.
  Result<v1::MigrateReply> migrate(std::chrono::milliseconds sync_timeout) FTD_EXCLUDES(mu_);
  // ftctl plan: samples this host's protected guest for `options.window`
  // (docs/planning.md). Refused while the VM is not protected from here.
  Result<planning::PlanInputs> plan(const planning::SampleOptions& options) FTD_EXCLUDES(mu_);
  // The replica the replication service feeds: null while the VM runs here
  // as primary or was launched here (a migration may create one later).
  std::shared_ptr<SecondaryVm> secondary() const FTD_EXCLUDES(mu_);

 private:
  ManagedVm(ManagedVmConfig config, std::shared_ptr<SecondaryVm> secondary)
      : config_(std::move(config)), secondary_(std::move(secondary)) {}
  // Failover hooks and the handover observer for a (new) replica.
  Status watch_secondary(SecondaryVm& vm) FTD_REQUIRES(mu_);
  // Planned migration, after the handover: the guest here is paused for
  // good; make this host the VM's secondary on the same image contents.
  Status become_secondary(RunningGuest guest) FTD_EXCLUDES(mu_);
  // The peer took the VM over from us at a handover: protect it back to
  // `peer` (retrying while the old primary turns into a secondary).
  void protect_back(std::string peer);
  // Builds a PrimaryVm (and its failover hooks) around `guest` and starts
  // replication to `peer`; on error hands the guest back through `guest`.
  Result<std::unique_ptr<PrimaryVm>> start_primary(RunningGuest& guest, const std::string& peer)
      FTD_EXCLUDES(mu_);
  // Takes the busy mark; the error says what is in progress.
  Status begin(std::string_view what) FTD_EXCLUDES(mu_);
  void end() FTD_EXCLUDES(mu_);
  void log_role(std::string_view from, std::string_view to, std::string_view why) const;

  const ManagedVmConfig config_;
  mutable Mutex mu_;
  // Null when launched as primary (until a migration makes one). Kept after
  // failover: it holds the replica file locked (the guest runs on it) and
  // refuses any primary from then on. Shared with replication streams being
  // served, so that a migration can replace it under them.
  std::shared_ptr<SecondaryVm> secondary_ FTD_GUARDED_BY(mu_);
  std::string busy_ FTD_GUARDED_BY(mu_);  // the transition in progress, if any
  std::unique_ptr<VmFailover> secondary_failover_ FTD_GUARDED_BY(mu_);
  std::unique_ptr<PrimaryVm> primary_ FTD_GUARDED_BY(mu_);
  std::unique_ptr<VmFailover> primary_failover_ FTD_GUARDED_BY(mu_);  // refers to primary_
  std::optional<RunningGuest> unprotected_ FTD_GUARDED_BY(mu_);       // active, unprotected
  std::string unprotected_why_ FTD_GUARDED_BY(mu_);
  std::string last_migration_ FTD_GUARDED_BY(mu_);
  bool closing_ FTD_GUARDED_BY(mu_) = false;
  std::thread protect_back_thread_;  // started by a handover (stream thread), joined by ~ManagedVm
  // Launches standby QEMUs (become_secondary): they die with the thread that
  // spawned them, and control/stream threads are the gRPC server's.
  TaskThread launcher_;
};

}  // namespace ftd
