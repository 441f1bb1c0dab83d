#include "secondary/secondary_vm.h"

#include "secondary/hello_check.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "checkpoint/chunking.h"
#include "checkpoint/page_digests.h"
#include "proto/status_mapping.h"

namespace ftd {
namespace {

using Clock = std::chrono::steady_clock;

// The state a live stream puts the replica in.
VmState receiving_state(const ReplicaStore& replica) {
  return replica.resume_epoch() == 0 ? VmState::kSyncing : VmState::kProtected;
}

int64_t unix_us_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 1 MiB per message: far below gRPC's message limits whatever the RAM size.
constexpr size_t kDigestsPerMessage = 65536;

bool owns_the_vm(VmState s) {
  return s == VmState::kActivating || s == VmState::kActive || s == VmState::kFailed;
}

}  // namespace

Result<std::unique_ptr<SecondaryVm>> SecondaryVm::open(SecondaryVmConfig config,
                                                       std::unique_ptr<Activator> activator) {
  FTD_ASSIGN_OR_RETURN(ReplicaStore store,
                       ReplicaStore::open(config.replica_dir, config.vm_name, config.memory_bytes,
                                          config.page_size, config.disk_bytes));
  spdlog::info(
      "replica.open vm={} path={} epoch={} resume_epoch={} disk_bytes={} disk_last_seq={} "
      "disk_complete={} recovery=\"{}\"",
      config.vm_name, store.ram_path(), store.epoch(), store.resume_epoch(), store.disk_bytes(),
      store.disk_state().last_seq, store.disk_state().complete, store.recovery());
  FTD_TRY(activator->prepare(store.ram_path()));
  return std::unique_ptr<SecondaryVm>(
      new SecondaryVm(std::move(config), std::move(store), std::move(activator)));
}

Status SecondaryVm::seed_replica(const SecondaryVmConfig& config, std::span<const std::byte> ram) {
  const auto t0 = Clock::now();
  FTD_ASSIGN_OR_RETURN(ReplicaStore store,
                       ReplicaStore::open(config.replica_dir, config.vm_name, config.memory_bytes,
                                          config.page_size, config.disk_bytes));
  FTD_TRY(store.seed(ram));
  spdlog::info("replica.seeded vm={} path={} bytes={} ms={}", config.vm_name, store.ram_path(),
               ram.size(),
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  return ok();
}

SecondaryVm::SecondaryVm(SecondaryVmConfig config, ReplicaStore replica,
                         std::unique_ptr<Activator> activator)
    : config_(std::move(config)),
      replica_path_(replica.ram_path()),
      activator_(std::move(activator)),
      replica_(std::move(replica)),
      lifecycle_(config_.vm_name, VmRole::kSecondary, VmState::kWaiting) {
  replica_.set_decode_threads(config_.decode_threads);
}

uint64_t SecondaryVm::replica_epoch() const {
  MutexLock lock(mu_);
  return replica_.epoch();
}

Result<uint64_t> SecondaryVm::accept_stream(grpc::ServerContext* context, uint64_t& replica_epoch) {
  MutexLock lock(mu_);
  if (owns_the_vm(lifecycle_.state()))
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' is {} on this host: it accepts no primary", config_.vm_name,
                      to_string(lifecycle_.state()));
  if (active_stream_) {
    spdlog::warn("replication.replaced old_peer={} new_peer={}", peer_, context->peer());
    active_stream_->TryCancel();
  }
  active_stream_ = context;
  peer_ = context->peer();
  last_refusal_.clear();
  replica_epoch = replica_.resume_epoch();  // 0 mid-resync: the primary must sync again
  (void)lifecycle_.enter(receiving_state(replica_), "primary " + peer_ + " connected");
  return ++stream_generation_;
}

Result<ApplyStats> SecondaryVm::apply(std::span<const std::byte> checkpoint, uint64_t generation) {
  MutexLock lock(mu_);
  if (owns_the_vm(lifecycle_.state()))
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' failed over: stream refused",
                      config_.vm_name);
  if (generation != stream_generation_)
    return make_error(ErrorCode::kUnavailable, "stream superseded by a newer primary connection");
  auto applied = replica_.apply(checkpoint);
  bytes_received_ += checkpoint.size();
  if (!applied) {
    last_error_ = applied.error().to_string();
    spdlog::error("checkpoint.rejected bytes={} error=\"{}\" replica_epoch={}", checkpoint.size(),
                  last_error_, replica_.epoch());
    return applied;
  }
  last_apply_us_ = applied->decode_us + applied->apply_us;
  if (applied->sync_chunk)
    ++sync_chunks_applied_;
  else
    ++checkpoints_applied_;
  applied_times_.push_back(Clock::now());
  while (applied_times_.size() > 256) applied_times_.pop_front();
  (void)lifecycle_.enter(receiving_state(replica_),
                         fmt::format("applied epoch {}", replica_.epoch()));
  return applied;
}

void SecondaryVm::end_stream(grpc::ServerContext* context, const grpc::Status& result) {
  MutexLock lock(mu_);
  if (active_stream_ == context) {
    active_stream_ = nullptr;
    if (!owns_the_vm(lifecycle_.state()))
      (void)lifecycle_.enter(VmState::kWaiting, "primary stream ended");
  }
  spdlog::info("replication.ended vm={} peer={} replica_epoch={} status=\"{}\"", config_.vm_name,
               context->peer(), replica_.epoch(), result.ok() ? "ok" : result.error_message());
}

grpc::Status SecondaryVm::serve(grpc::ServerContext* context, Stream* stream) {
  v1::PrimaryMessage m;
  if (!stream->Read(&m)) return {grpc::StatusCode::CANCELLED, "stream ended before Hello"};
  if (!m.has_hello())
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "first message on a Replicate stream must be Hello"};
  if (auto st = check_hello(m.hello(), config_); !st.ok()) {
    spdlog::warn("replication.rejected peer={} reason=\"{}\"", context->peer(), st.error_message());
    MutexLock lock(mu_);
    last_refusal_ = fmt::format("refused primary {}: {}", context->peer(), st.error_message());
    return st;
  }
  uint64_t replica_epoch = 0;
  auto generation = accept_stream(context, replica_epoch);
  if (!generation) return to_grpc_status(generation.error());
  spdlog::info("replication.accepted vm={} peer={} replica_epoch={}", config_.vm_name,
               context->peer(), replica_epoch);
  // Digests of the image as it is (any epoch, even a zeroed new one): a full
  // sync then sends only the pages that differ. Under mu_ (with_replica):
  // nothing applies meanwhile; this stream's own chunks wait for the Welcome.
  const auto t0 = Clock::now();
  const std::vector<PageDigest> digests = with_replica(
      [&](const ReplicaStore& r) { return digest_pages(r.memory(), config_.page_size); });
  v1::SecondaryMessage out;
  for (size_t first = 0; first < digests.size(); first += kDigestsPerMessage) {
    const size_t n = std::min(kDigestsPerMessage, digests.size() - first);
    out.mutable_page_digests()->set_first_page(first);
    out.mutable_page_digests()->set_digests(encode_digests(std::span(digests).subspan(first, n)));
    if (!stream->Write(out)) return {grpc::StatusCode::CANCELLED, "primary left during digests"};
  }
  spdlog::info("replication.digests vm={} pages={} ms={}", config_.vm_name, digests.size(),
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  v1::SecondaryMessage welcome;
  welcome.mutable_welcome()->set_applied_epoch(replica_epoch);
  welcome.mutable_welcome()->set_digest_pages(digests.size());
  stream->Write(welcome);

  // A checkpoint may not exceed the guest's RAM plus generous framing; a
  // larger claim is hostile or broken, and must not make us allocate it.
  ChunkAssembler assembler(config_.memory_bytes + config_.memory_bytes / 8 + (64 << 20));
  grpc::Status result = grpc::Status::OK;
  while (stream->Read(&m)) {
    if (m.has_handover()) {
      // The primary's last word on this stream: activate here, answer, end.
      if (assembler.partial()) {
        result = {grpc::StatusCode::INVALID_ARGUMENT, "handover in the middle of a checkpoint"};
        break;
      }
      v1::SecondaryMessage reply;
      *reply.mutable_handover() = take_over(m.handover(), context, *generation);
      const bool accepted = reply.handover().accepted();
      stream->Write(reply);
      if (accepted && handover_observer_)
        handover_observer_(m.handover().epoch(), m.handover().new_secondary());
      if (!accepted) continue;  // the primary resumes its guest and goes on checkpointing
      break;
    }
    if (!m.has_chunk()) {
      result = {grpc::StatusCode::INVALID_ARGUMENT, "expected a checkpoint chunk"};
      break;
    }
    const auto& c = m.chunk();
    auto whole = assembler.add({.epoch = c.epoch(),
                                .offset = c.offset(),
                                .total_size = c.total_size(),
                                .data = std::as_bytes(std::span(c.data())),
                                .last = c.last()});
    if (!whole) {
      spdlog::error("replication.bad_chunk peer={} error=\"{}\"", context->peer(),
                    whole.error().to_string());
      result = to_grpc_status(whole.error());
      break;
    }
    if (!*whole) continue;
    auto applied = apply(**whole, *generation);
    if (!applied) {
      result = to_grpc_status(applied.error());
      break;
    }
    spdlog::debug("checkpoint.applied epoch={} pages={} decode_us={} apply_us={}", applied->epoch,
                  applied->pages, applied->decode_us, applied->apply_us);
    v1::SecondaryMessage ack;
    ack.mutable_ack()->set_epoch(applied->epoch);
    ack.mutable_ack()->set_apply_micros(applied->decode_us + applied->apply_us);
    if (!stream->Write(ack)) break;
    if (apply_observer_) apply_observer_(applied->epoch);
  }
  if (assembler.partial() && result.ok())
    spdlog::warn("replication.partial_discarded epoch={} bytes={}/{}", assembler.epoch(),
                 assembler.received_bytes(), assembler.total_bytes());
  end_stream(context, result);
  return result;
}

Result<ActivationReport> SecondaryVm::failover() {
  uint64_t epoch = 0;
  std::span<const std::byte> memory, device_state;
  {
    MutexLock lock(mu_);  // waits for an apply in progress: we activate a whole epoch
    if (lifecycle_.state() == VmState::kActive)
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' already failed over at epoch {}",
                        config_.vm_name, activation_.epoch);
    if (lifecycle_.state() == VmState::kActivating)
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is failing over already",
                        config_.vm_name);
    if (replica_.epoch() == 0)
      return make_error(ErrorCode::kFailedPrecondition,
                        "VM '{}' has no consistent checkpoint yet (initial sync not finished)",
                        config_.vm_name);
    // RAM without its disk is no VM: a replica disk that is not a complete,
    // successfully applied copy at this epoch must not be run.
    if (!replica_.disk_consistent())
      return make_error(ErrorCode::kFailedPrecondition,
                        "VM '{}' replica disk is not consistent at epoch {} ({}): not activatable",
                        config_.vm_name, replica_.epoch(),
                        replica_.disk_error().empty() ? "the primary's first disk copy never "
                                                        "completed"
                                                      : replica_.disk_error());
    // A resync is overwriting the replica: go back to the epoch it keeps.
    if (replica_.resyncing()) {
      spdlog::warn("failover.rollback vm={} epoch={} undo_bytes={}", config_.vm_name,
                   replica_.epoch(), replica_.undo_bytes());
      FTD_TRY(replica_.roll_back_resync());
    }
    // From here on no primary may feed this replica, and the image on disk
    // is no longer one.
    FTD_TRY(replica_.mark_running(replica_.epoch()));
    FTD_TRY(lifecycle_.enter(VmState::kActivating, "failover requested"));
    if (active_stream_) active_stream_->TryCancel();
    epoch = replica_.epoch();
    memory = replica_.memory();
    device_state = replica_.device_state();
  }
  spdlog::warn("failover.start vm={} epoch={} activator={}", config_.vm_name, epoch,
               activator_->name());
  // Without mu_: activation takes tens of milliseconds of QMP and status()
  // must answer meanwhile. The replica cannot change: apply() refuses while
  // activating.
  auto report = activator_->activate(epoch, memory, device_state);
  MutexLock lock(mu_);
  if (!report) {
    last_error_ = report.error().to_string();
    (void)lifecycle_.enter(VmState::kFailed, last_error_);
    spdlog::error("failover.failed vm={} error=\"{}\"", config_.vm_name, last_error_);
    return report;
  }
  activation_ = *report;
  (void)lifecycle_.enter(VmState::kActive, fmt::format("activated epoch {}", epoch));
  spdlog::warn("failover.done vm={} epoch={} activation_us={} {}", config_.vm_name, report->epoch,
               report->activation_us, report->detail);
  return report;
}

v1::HandoverReply SecondaryVm::take_over(const v1::Handover& h, grpc::ServerContext* context,
                                         uint64_t generation) {
  v1::HandoverReply reply;
  reply.set_epoch(h.epoch());
  auto refuse = [&](std::string why) {
    spdlog::error("migration.refused vm={} epoch={} reason=\"{}\"", config_.vm_name, h.epoch(),
                  why);
    reply.set_reason(std::move(why));
    return reply;
  };
  {
    MutexLock lock(mu_);
    if (generation != stream_generation_ || active_stream_ != context)
      return refuse("stream superseded by a newer primary connection");
    if (lifecycle_.state() != VmState::kProtected || replica_.resyncing())
      return refuse(fmt::format("replica is {}, not protected", to_string(lifecycle_.state())));
    if (replica_.epoch() != h.epoch())
      return refuse(fmt::format("replica is at epoch {}, handover names epoch {}", replica_.epoch(),
                                h.epoch()));
    // failover() cancels the feeding stream; this one must still carry the answer.
    active_stream_ = nullptr;
  }
  spdlog::warn("migration.takeover vm={} epoch={} new_secondary={} peer={}", config_.vm_name,
               h.epoch(), h.new_secondary(), context->peer());
  if (takeover_guard_)
    if (auto allowed = takeover_guard_(); !allowed) {
      MutexLock lock(mu_);
      if (!active_stream_) active_stream_ = context;  // still ours: the primary carries on
      return refuse(allowed.error().to_string());
    }
  auto report = failover();
  if (!report) return refuse(report.error().to_string());
  reply.set_accepted(true);
  reply.set_activation_us(report->activation_us);
  reply.set_resumed_at_unix_us(unix_us_now());
  spdlog::warn("migration.activated vm={} epoch={} activation_us={} downtime_us={}",
               config_.vm_name, report->epoch, report->activation_us,
               reply.resumed_at_unix_us() - h.paused_at_unix_us());
  return reply;
}

Result<RunningGuest> SecondaryVm::take_running_guest() {
  MutexLock lock(mu_);
  if (lifecycle_.state() != VmState::kActive)
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' is {} here: only a failed-over (active) replica can be protected",
                      config_.vm_name, to_string(lifecycle_.state()));
  return activator_->take_running_guest();
}

v1::VmStatus SecondaryVm::status() const {
  MutexLock lock(mu_);
  v1::VmStatus s;
  s.set_name(config_.vm_name);
  s.set_role(std::string(to_string(VmRole::kSecondary)));
  s.set_state(to_proto(lifecycle_.state()));
  s.set_engine(activator_->name());
  s.set_epoch(replica_.epoch());
  s.set_acked_epoch(replica_.epoch());
  s.set_memory_bytes(config_.memory_bytes);
  s.set_apply_us_last(last_apply_us_);
  s.set_resyncing(replica_.resyncing());
  s.set_undo_bytes(replica_.undo_bytes());
  s.set_sync_chunks_applied(sync_chunks_applied_);
  s.set_checkpoints_total(checkpoints_applied_);
  s.set_wire_bytes_total(bytes_received_);
  s.set_replica_recovery(replica_.recovery());
  s.set_disk_bytes(replica_.disk_bytes());
  if (replica_.disk_bytes() > 0) {
    s.set_disk_protected(replica_.disk_consistent() && replica_.epoch() != 0);
    s.set_disk_detail(!replica_.disk_error().empty() ? replica_.disk_error()
                      : !replica_.disk_state().complete
                          ? "no complete copy of the disk yet: not activatable with it"
                          : "");
    s.set_disk_bytes_applied(replica_.disk_bytes_applied());
    s.set_disk_last_seq(replica_.disk_state().last_seq);
  }
  s.set_peer(peer_);
  if (lifecycle_.state() == VmState::kActive)
    s.set_detail(activation_.detail);
  else
    s.set_detail(last_error_.empty() ? last_refusal_ : last_error_);
  auto now = Clock::now();
  size_t recent = 0;
  for (auto t : applied_times_)
    if (now - t < std::chrono::seconds(5)) ++recent;
  s.set_checkpoints_per_sec(static_cast<double>(recent) / 5.0);
  return s;
}

}  // namespace ftd
