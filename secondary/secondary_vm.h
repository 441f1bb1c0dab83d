// One protected VM on the secondary host: its replica, the state of the
// replication stream feeding it, and failover (activation) of the replica.
//
// Split-brain guard: once activating or active, the VM never accepts a
// primary again; only one primary stream feeds the replica at a time (a newer
// connection replaces an older one, e.g. a restarted primary whose old TCP is
// half dead).
//
// Threads: each Replicate stream runs serve() on a gRPC thread; failover()
// and status() come from control threads. mu_ guards the replica and the
// state; it is held while a checkpoint is applied (so failover activates a
// whole epoch) but never across activation (so status answers during a
// failover) nor across stream I/O. The activator must outlive the VM.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "common/mutex.h"
#include "common/vm_state.h"
#include "ftd.grpc.pb.h"
#include "secondary/activator.h"
#include "secondary/replica_store.h"
#include "secondary/secondary_vm_config.h"

namespace ftd {

class SecondaryVm {
 public:
  using Stream = grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>;

  static Result<std::unique_ptr<SecondaryVm>> open(SecondaryVmConfig config,
                                                   std::unique_ptr<Activator> activator);

  // Planned migration: writes a guest's final RAM into the replica image
  // of `config` (see ReplicaStore::seed), before open() takes it.
  static Status seed_replica(const SecondaryVmConfig& config, std::span<const std::byte> ram);

  const std::string& name() const { return config_.vm_name; }
  // The replica's path (constant); its contents are guarded by the VM.
  const std::string& replica_path() const { return replica_path_; }
  uint64_t replica_epoch() const FTD_EXCLUDES(mu_);
  // Runs `read(const ReplicaStore&)` with the VM's lock held: a consistent
  // view (no apply in between), e.g. to verify the replica.
  template <typename F>
  auto with_replica(F&& read) const FTD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return read(static_cast<const ReplicaStore&>(replica_));
  }

  // Serves one Replicate stream until it ends; returns the status to send back.
  grpc::Status serve(grpc::ServerContext* context, Stream* stream) FTD_EXCLUDES(mu_);

  Result<ActivationReport> failover() FTD_EXCLUDES(mu_);
  // After failover, once: the running guest, to be protected in turn.
  Result<RunningGuest> take_running_guest() FTD_EXCLUDES(mu_);

  // Set once before serving: sees every applied epoch (the failover
  // heartbeat counts them as evidence that the primary lives).
  void set_apply_observer(std::function<void(uint64_t epoch)> observer) {
    apply_observer_ = std::move(observer);
  }
  // Set once before serving: a planned migration made this replica the
  // running VM at `epoch`; the old primary becomes a secondary at
  // `new_secondary`. Runs on the stream's thread after the answer was sent.
  void set_handover_observer(
      std::function<void(uint64_t epoch, const std::string& new_secondary)> observer) {
    handover_observer_ = std::move(observer);
  }
  // Set once before serving: must succeed before a handover activates the
  // replica (the arbiter's right to run the VM moves with it).
  void set_takeover_guard(std::function<Status()> guard) { takeover_guard_ = std::move(guard); }
  v1::VmStatus status() const FTD_EXCLUDES(mu_);

 private:
  // A planned migration: activate at exactly the handover's epoch (the
  // primary's guest stays paused there), or refuse and say why.
  v1::HandoverReply take_over(const v1::Handover& h, grpc::ServerContext* context,
                              uint64_t generation) FTD_EXCLUDES(mu_);
  SecondaryVm(SecondaryVmConfig config, ReplicaStore replica, std::unique_ptr<Activator> activator);
  // Registers `context` as the stream feeding the replica; returns its generation.
  Result<uint64_t> accept_stream(grpc::ServerContext* context, uint64_t& replica_epoch)
      FTD_EXCLUDES(mu_);
  // Applies one whole checkpoint of stream `generation`.
  Result<ApplyStats> apply(std::span<const std::byte> checkpoint, uint64_t generation)
      FTD_EXCLUDES(mu_);
  void end_stream(grpc::ServerContext* context, const grpc::Status& result) FTD_EXCLUDES(mu_);

  // ---- constant after construction
  const SecondaryVmConfig config_;
  const std::string replica_path_;
  const std::unique_ptr<Activator> activator_;    // used by the one failover() in flight
  std::function<void(uint64_t)> apply_observer_;  // set before serving
  std::function<void(uint64_t, const std::string&)> handover_observer_;  // set before serving
  std::function<Status()> takeover_guard_;                               // set before serving

  // ---- guarded by mu_
  mutable Mutex mu_;
  ReplicaStore replica_ FTD_GUARDED_BY(mu_);
  VmLifecycle lifecycle_ FTD_GUARDED_BY(mu_);
  grpc::ServerContext* active_stream_ FTD_GUARDED_BY(mu_) = nullptr;
  uint64_t stream_generation_ FTD_GUARDED_BY(mu_) = 0;
  ActivationReport activation_ FTD_GUARDED_BY(mu_);
  std::string last_error_ FTD_GUARDED_BY(mu_);
  // Why the last primary's Hello was refused (spec mismatch, another VM, ...),
  // shown while no primary streams; cleared when one is accepted.
  std::string last_refusal_ FTD_GUARDED_BY(mu_);
  std::string peer_ FTD_GUARDED_BY(mu_);
  uint64_t last_apply_us_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t bytes_received_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t sync_chunks_applied_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t checkpoints_applied_ FTD_GUARDED_BY(mu_) = 0;
  std::deque<std::chrono::steady_clock::time_point> applied_times_ FTD_GUARDED_BY(mu_);
};

}  // namespace ftd
