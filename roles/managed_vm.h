// One VM on this host through its whole life, and the one place that changes
// its role. The roles and the transitions between them:
//
//   secondary (replica) --failover--> active, unprotected --protect(peer)--> primary
//   primary --unprotect--> active, unprotected --protect(peer)--> primary
//
// "active, unprotected" is a guest running here with nobody holding a
// replica: after a failover, or after `unprotect`. Protecting it builds a
// PrimaryVm around the running guest (the activated standby QEMU on the
// replica file, its NIC behind this host's output-commit proxy) exactly like
// one launched as primary; during its initial sync output still flows (no
// replica could take over yet) and from the first checkpoint on it is held.
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

#include "checkpoint/pipeline.h"
#include "checkpoint/running_guest.h"
#include "common/mutex.h"
#include "failover/failover_options.h"
#include "ftd.pb.h"
#include "primary/primary_vm.h"
#include "roles/vm_failover.h"
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
  FailoverOptions failover;
  // protect(peer): how long the peer has to accept the stream before the
  // call fails and the guest keeps running unprotected.
  std::chrono::milliseconds connect_timeout{5000};
};

class ManagedVm {
 public:
  // A guest launched here as primary; protect() starts replication to
  // config.peer when `start_protected` (without waiting for the peer).
  static Result<std::unique_ptr<ManagedVm>> as_primary(ManagedVmConfig config, RunningGuest guest,
                                                       bool start_protected);
  // A replica fed by a primary elsewhere.
  static Result<std::unique_ptr<ManagedVm>> as_secondary(ManagedVmConfig config,
                                                         std::unique_ptr<SecondaryVm> vm);
  ~ManagedVm();

  const std::string& name() const { return config_.vm_name; }
  v1::VmStatus status() const FTD_EXCLUDES(mu_);
  // Protects the guest running here to `peer` (empty: the configured one).
  // Returns once the peer accepted the stream; on any error the guest keeps
  // running here unprotected and nothing else changed.
  Status protect(const std::string& peer) FTD_EXCLUDES(mu_);
  Status unprotect() FTD_EXCLUDES(mu_);
  Result<v1::FailoverReply> failover() FTD_EXCLUDES(mu_);
  Status migrate() FTD_EXCLUDES(mu_);
  // The replica the replication service feeds (null when launched as primary).
  SecondaryVm* secondary() const { return secondary_.get(); }

 private:
  ManagedVm(ManagedVmConfig config, std::unique_ptr<SecondaryVm> secondary)
      : config_(std::move(config)), secondary_(std::move(secondary)) {}
  // Builds a PrimaryVm (and its failover hooks) around `guest` and starts
  // replication to `peer`; on error hands the guest back through `guest`.
  Result<std::unique_ptr<PrimaryVm>> start_primary(RunningGuest& guest, const std::string& peer)
      FTD_EXCLUDES(mu_);
  // Takes the busy mark; the error says what is in progress.
  Status begin(std::string_view what) FTD_EXCLUDES(mu_);
  void end() FTD_EXCLUDES(mu_);
  void log_role(std::string_view from, std::string_view to, std::string_view why) const;

  const ManagedVmConfig config_;
  // Null when launched as primary. Kept after failover: it holds the replica
  // file locked (the guest runs on it) and refuses any primary from then on.
  const std::unique_ptr<SecondaryVm> secondary_;

  mutable Mutex mu_;
  std::string busy_ FTD_GUARDED_BY(mu_);  // the transition in progress, if any
  std::unique_ptr<VmFailover> secondary_failover_ FTD_GUARDED_BY(mu_);
  std::unique_ptr<PrimaryVm> primary_ FTD_GUARDED_BY(mu_);
  std::unique_ptr<VmFailover> primary_failover_ FTD_GUARDED_BY(mu_);  // refers to primary_
  std::optional<RunningGuest> unprotected_ FTD_GUARDED_BY(mu_);       // active, unprotected
  std::string unprotected_why_ FTD_GUARDED_BY(mu_);
};

}  // namespace ftd
