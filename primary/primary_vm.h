// One protected VM on the primary host: its engine, the replication stream to
// the secondary, the checkpoint pipeline and the output gates, wired together.
//
// Threads: control threads call protect/unprotect/status; the replication
// client's reader thread reports connection events, which move the state.
// mu_ guards the state; the pipeline and client are thread-safe themselves.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/vm_state.h"

#include "checkpoint/guest_engine.h"
#include "checkpoint/pipeline.h"
#include "checkpoint/running_guest.h"
#include "ftd.pb.h"
#include "primary/replication_client.h"

namespace ftd {

// How a planned migration moves the arbiter's right to run the VM
// (roles/VmFailover). Empty functions: no arbiter.
struct HandoverLease {
  // The final checkpoint is acknowledged, the Handover not yet sent: give the right up.
  std::function<Status()> release;
  // The guest resumes here after `release` (refused, or sending failed): want it back.
  std::function<void()> retake;
  // No answer: true only if the right came back and nobody held it meanwhile.
  std::function<Result<bool>()> regain_unshared;
};

// What a planned migration's handover did (PrimaryVm::hand_over).
struct HandoverOutcome {
  uint64_t epoch = 0;             // the VM continues from it on the new host
  int64_t paused_at_unix_us = 0;  // final pause here (wall clock)
  uint64_t pause_us = 0;          // final pause → handover answered (this host's clock)
  uint32_t final_pages = 0;       // pages in the final checkpoint
  v1::HandoverReply reply;        // accepted
};

struct PrimaryVmConfig {
  std::string vm_name;
  std::string peer;          // secondary's replication address, host:port
  ChannelSecurity security;  // default: plaintext
  PipelineConfig pipeline;
  std::string vm_spec_digest;  // Hello.vm_spec_digest; "": ftd's built-in guest
};

class PrimaryVm {
 public:
  // Gates must outlive nothing: the VM owns them, the engine may push into them.
  static Result<std::unique_ptr<PrimaryVm>> create(PrimaryVmConfig config,
                                                   std::vector<std::unique_ptr<OutputGate>> gates,
                                                   std::unique_ptr<GuestEngine> engine);
  static Result<std::unique_ptr<PrimaryVm>> create(PrimaryVmConfig config, RunningGuest guest) {
    return create(std::move(config), std::move(guest.gates), std::move(guest.engine));
  }
  // Ends protection and hands the guest back, running, its output flowing
  // unheld: to be protected again to another peer. The VM's failover hooks
  // must be gone first (they call into it).
  static RunningGuest release(std::unique_ptr<PrimaryVm> vm);
  ~PrimaryVm();

  const std::string& name() const { return config_.vm_name; }
  Status protect() FTD_EXCLUDES(mu_);    // connect and start checkpointing (idempotent)
  Status unprotect() FTD_EXCLUDES(mu_);  // stop checkpointing; output flows unheld
  // After protect(): waits until the secondary accepted the stream; the
  // error carries the stream's last error (refused, unreachable...).
  Status wait_for_peer(std::chrono::milliseconds timeout) const;
  v1::VmStatus status() const FTD_EXCLUDES(mu_);
  VmState state() const FTD_EXCLUDES(mu_);
  // Ran alone after losing its secondary (checkpointing stopped for good).
  bool alone() const FTD_EXCLUDES(mu_);
  GuestEngine& engine() { return *engine_; }
  // Its statistics and per-checkpoint samples (ftctl plan); valid while the VM lives.
  const CheckpointPipeline& pipeline() const { return *pipeline_; }

  // Set once before protect(): sees every ack (the failover heartbeat counts
  // them as evidence that the secondary lives).
  void set_ack_observer(std::function<void(uint64_t epoch)> observer) {
    ack_observer_ = std::move(observer);
  }

  // Planned migration. Waits up to `sync_timeout` for the pair to be in
  // sync, takes a final checkpoint keeping the guest paused, and asks the
  // secondary to run the VM from it. Accepted: the guest here stays paused
  // for good (release() the VM and turn this host into the secondary). The
  // secondary refused: the guest runs on here, protected as before. No
  // answer (stream broke, timeout): the guest resumes here only if
  // `lease.regain_unshared` proves the peer never took the VM over; otherwise
  // this side fences itself (never runs or emits again).
  Result<HandoverOutcome> hand_over(const std::string& new_secondary,
                                    std::chrono::milliseconds sync_timeout,
                                    const HandoverLease& lease = {}) FTD_EXCLUDES(mu_);

  // ---- automatic failover (FailoverMonitor callbacks)
  // Secondary lost and arbitration won: stop replicating (its replica is
  // stale from the first unacked frame on) and release output without acks
  // while `allowed()` holds. State stays degraded.
  Status run_alone(std::function<bool()> allowed) FTD_EXCLUDES(mu_);
  // The right to run alone lapsed: hold output again.
  void hold_output() FTD_EXCLUDES(mu_);
  // Lost arbitration: discard held output, stop the guest, never release again.
  void fence(const std::string& reason) FTD_EXCLUDES(mu_);

 private:
  PrimaryVm(PrimaryVmConfig config, std::vector<std::unique_ptr<OutputGate>> gates,
            std::unique_ptr<GuestEngine> engine);
  // Re-derives syncing / protected / degraded from the stream and the pipeline.
  void update_state(std::string_view event) FTD_EXCLUDES(mu_);

  // ---- constant after create()
  const PrimaryVmConfig config_;
  std::vector<std::unique_ptr<OutputGate>> gates_;
  std::unique_ptr<GuestEngine> engine_;
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<CheckpointPipeline> pipeline_;
  std::function<void(uint64_t)> ack_observer_;

  mutable Mutex mu_;
  VmLifecycle lifecycle_ FTD_GUARDED_BY(mu_);
  bool alone_ FTD_GUARDED_BY(mu_) = false;  // ran without the secondary: state pinned
  CondVar handover_cv_;
  std::optional<v1::HandoverReply> handover_reply_ FTD_GUARDED_BY(mu_);
  // Why the last planned migration did not happen ("": none failed), shown
  // in the status detail while the VM runs on here.
  std::string failed_migration_ FTD_GUARDED_BY(mu_);
};

}  // namespace ftd
