#include "primary/primary_vm.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "proto/status_mapping.h"

namespace ftd {

Result<std::unique_ptr<PrimaryVm>> PrimaryVm::create(PrimaryVmConfig config,
                                                     std::vector<std::unique_ptr<OutputGate>> gates,
                                                     std::unique_ptr<GuestEngine> engine) {
  auto vm = std::unique_ptr<PrimaryVm>(
      new PrimaryVm(std::move(config), std::move(gates), std::move(engine)));
  v1::Hello hello;
  hello.set_protocol_version(1);
  hello.set_vm_name(vm->config_.vm_name);
  hello.set_memory_bytes(vm->engine_->memory().size());
  hello.set_page_size(static_cast<uint32_t>(vm->engine_->page_size()));
  hello.set_disk_bytes(vm->engine_->disk_bytes());
  hello.set_vm_spec_digest(vm->config_.vm_spec_digest);
  vm->client_ = std::make_unique<ReplicationClient>(vm->config_.peer, hello, vm->config_.security);
  FTD_ASSIGN_OR_RETURN(
      vm->pipeline_, CheckpointPipeline::create(*vm->engine_, *vm->client_, vm->config_.pipeline));
  for (auto& g : vm->gates_) vm->pipeline_->add_output_gate(g.get());
  return vm;
}

PrimaryVm::PrimaryVm(PrimaryVmConfig config, std::vector<std::unique_ptr<OutputGate>> gates,
                     std::unique_ptr<GuestEngine> engine)
    : config_(std::move(config)),
      gates_(std::move(gates)),
      engine_(std::move(engine)),
      lifecycle_(config_.vm_name, VmRole::kPrimary, VmState::kStopped) {}

PrimaryVm::~PrimaryVm() {
  // Order matters: stop producing checkpoints, then the stream, then the rest.
  if (pipeline_) pipeline_->stop();
  if (client_) client_->stop();
  pipeline_.reset();
}

RunningGuest PrimaryVm::release(std::unique_ptr<PrimaryVm> vm) {
  vm->pipeline_->stop();
  vm->client_->stop();
  for (auto& g : vm->gates_) {
    g->set_passthrough();
    // run_alone's predicate asks this VM's failover monitor, which dies with
    // it; clearing waits for a call in flight. The guest keeps its gates.
    g->set_release_unacked(nullptr);
  }
  spdlog::warn("vm.released vm={} peer={} state={} output=passthrough", vm->config_.vm_name,
               vm->config_.peer, to_string(vm->state()));
  RunningGuest guest{.engine = std::move(vm->engine_), .gates = std::move(vm->gates_)};
  // The pipeline refers to the engine: gone before the engine leaves this scope.
  vm->pipeline_.reset();
  return guest;
}

Status PrimaryVm::protect() {
  MutexLock lock(mu_);
  if (lifecycle_.state() == VmState::kUnprotected)
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' was unprotected; restart the daemon to protect it again",
                      config_.vm_name);
  if (lifecycle_.state() != VmState::kStopped) return ok();
  // Degraded until the secondary answers: output is held from the start.
  FTD_TRY(lifecycle_.enter(VmState::kDegraded, "protect: connecting to " + config_.peer));
  client_->start({
      .on_connected =
          [this](uint64_t e, std::vector<PageDigest> replica_pages) {
            pipeline_->on_connected(e, std::move(replica_pages));
            update_state("secondary connected");
          },
      .on_ack =
          [this](uint64_t e, uint64_t us) {
            pipeline_->on_ack(e, us);
            if (ack_observer_) ack_observer_(e);
            update_state("ack");
          },
      .on_disconnected =
          [this](const std::string& why) {
            pipeline_->on_disconnected();
            update_state("secondary lost: " + why);
            handover_cv_.notify_all();
          },
      .on_handover =
          [this](const v1::HandoverReply& r) {
            MutexLock lock(mu_);
            handover_reply_ = r;
            handover_cv_.notify_all();
          },
  });
  pipeline_->start();
  spdlog::info(
      "vm.protect vm={} peer={} engine={} memory_bytes={} epoch_policy={} epoch_min_ms={} "
      "epoch_max_ms={}",
      config_.vm_name, config_.peer, engine_->name(), engine_->memory().size(),
      to_string(config_.pipeline.epochs.kind), config_.pipeline.epochs.min.count(),
      config_.pipeline.epochs.max.count());
  return ok();
}

Status PrimaryVm::wait_for_peer(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!client_->connected()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string why = client_->last_error();
      return make_error(ErrorCode::kUnavailable,
                        "secondary {} did not accept VM '{}' within {} ms{}", config_.peer,
                        config_.vm_name, timeout.count(), why.empty() ? "" : ": " + why);
    }
    // Polling: the connection callback belongs to update_state; this wait is
    // a one-off for the operator's command.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ok();
}

void PrimaryVm::update_state(std::string_view event) {
  const bool connected = client_->connected();
  const bool consistent = pipeline_->replica_consistent();
  MutexLock lock(mu_);
  const VmState now = lifecycle_.state();
  if (alone_) return;
  if (now != VmState::kSyncing && now != VmState::kProtected && now != VmState::kDegraded) return;
  VmState next = !connected   ? VmState::kDegraded
                 : consistent ? VmState::kProtected
                              : VmState::kSyncing;
  (void)lifecycle_.enter(next, event);
}

Status PrimaryVm::unprotect() {
  {
    MutexLock lock(mu_);
    const VmState now = lifecycle_.state();
    if (now == VmState::kStopped || now == VmState::kUnprotected)
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is not protected",
                        config_.vm_name);
    // First, so that connection events arriving while the stream is torn
    // down no longer move the state (update_state ignores unprotected).
    FTD_TRY(lifecycle_.enter(VmState::kUnprotected, "operator: unprotect"));
  }
  // Without mu_: stopping the client joins its thread, whose callbacks take mu_.
  pipeline_->stop();
  client_->stop();
  for (auto& g : gates_) g->set_passthrough();
  spdlog::warn("vm.unprotect vm={} output=passthrough", config_.vm_name);
  return ok();
}

Status PrimaryVm::run_alone(std::function<bool()> allowed) {
  {
    MutexLock lock(mu_);
    const VmState now = lifecycle_.state();
    if (now == VmState::kFenced || now == VmState::kUnprotected || now == VmState::kStopped)
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is {}: cannot run alone",
                        config_.vm_name, to_string(now));
    if (!alone_) {
      alone_ = true;
      FTD_TRY(lifecycle_.enter(VmState::kDegraded, "failover: secondary lost, running alone"));
    }
  }
  // Without mu_ (client callbacks take it). Checkpoints stop: the peer's
  // replica can no longer be activated (the arbiter recorded that we run
  // alone), so pausing the guest for it buys nothing until re-protection.
  pipeline_->stop();
  client_->stop();
  for (auto& g : gates_) g->set_release_unacked(allowed);
  spdlog::warn("vm.run_alone vm={} output=released-without-acks", config_.vm_name);
  return ok();
}

Result<HandoverOutcome> PrimaryVm::hand_over(const std::string& new_secondary,
                                             std::chrono::milliseconds sync_timeout,
                                             const HandoverLease& lease) {
  using Clock = std::chrono::steady_clock;
  const auto sync_deadline = Clock::now() + sync_timeout;
  while (true) {
    const VmState now = state();
    if (now == VmState::kProtected && pipeline_->replica_consistent()) break;
    if (now == VmState::kFenced || now == VmState::kUnprotected || now == VmState::kStopped ||
        alone())
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is {}{}: nothing to migrate",
                        config_.vm_name, to_string(now), alone() ? " (ran alone)" : "");
    if (Clock::now() >= sync_deadline) {
      const PipelineStats p = pipeline_->stats();
      return make_error(ErrorCode::kTimeout,
                        "VM '{}' not in sync with {} after {} s (state {}, sync {:.0f}%): "
                        "nothing changed, the VM runs on here",
                        config_.vm_name, config_.peer, sync_timeout.count() / 1000, to_string(now),
                        p.sync_progress * 100);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    MutexLock lock(mu_);
    handover_reply_.reset();
  }
  pipeline_->stop();
  HandoverOutcome out;
  out.paused_at_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  const auto paused_at = Clock::now();
  bool released = false;
  auto carry_on = [&](const Error& why) -> std::unexpected<Error> {
    if (released && lease.retake) lease.retake();
    Status resumed = pipeline_->resume_after_final();
    pipeline_->start();
    spdlog::error("migration.aborted vm={} reason=\"{}\" guest={}", config_.vm_name,
                  why.to_string(), resumed ? "running here" : resumed.error().to_string());
    {
      MutexLock lock(mu_);
      failed_migration_ = fmt::format("planned migration to {} failed ({}), the VM runs on here",
                                      config_.peer, why.to_string());
    }
    return std::unexpected(why.with_context("planned migration of VM '" + config_.vm_name +
                                            "' (the VM runs on here)"));
  };
  auto final_epoch = pipeline_->final_checkpoint(std::chrono::seconds(10));
  if (!final_epoch) return carry_on(final_epoch.error());
  out.epoch = *final_epoch;
  out.final_pages = pipeline_->stats().last_pause.dirty_pages;
  v1::Handover h;
  h.set_epoch(out.epoch);
  h.set_new_secondary(new_secondary);
  h.set_paused_at_unix_us(out.paused_at_unix_us);
  spdlog::warn("migration.handover vm={} epoch={} final_pages={} to={} new_secondary={}",
               config_.vm_name, out.epoch, out.final_pages, config_.peer, new_secondary);
  if (lease.release) {
    if (auto st = lease.release(); !st) {
      released = true;  // maybe half done: want it back in any case
      return carry_on(st.error().with_context("release the arbiter's lease"));
    }
    released = true;
  }
  if (auto sent = client_->send_handover(h); !sent) return carry_on(sent.error());
  std::optional<v1::HandoverReply> reply;
  {
    MutexLock lock(mu_);
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!handover_reply_ && client_->connected())
      if (!handover_cv_.wait_until(mu_, deadline)) break;
    reply = handover_reply_;
  }
  out.pause_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - paused_at).count());
  if (reply && !reply->accepted())
    return carry_on(Error{ErrorCode::kFailedPrecondition,
                          "secondary refused the handover: " + reply->reason()});
  if (!reply) {
    // The handover left; whether the peer activated is unknown, unless the
    // arbiter proves nobody took the right to run the VM since we released it
    // (the peer claims it before activating). Without that proof, running on
    // here could make two copies: stay paused, emit nothing, ever.
    const std::string why =
        fmt::format("no answer to the handover of epoch {} ({})", out.epoch, client_->last_error());
    Result<bool> regained = lease.regain_unshared ? lease.regain_unshared() : Result<bool>(false);
    spdlog::warn("migration.no_answer vm={} epoch={} lease_regained_unshared={}", config_.vm_name,
                 out.epoch, regained ? (*regained ? "yes" : "no") : regained.error().to_string());
    if (regained && *regained)
      return carry_on(Error{ErrorCode::kUnavailable,
                            why + "; the peer never claimed the VM (the arbiter's lease came "
                                  "back to this host unshared)"});
    fence("planned migration: no answer to the handover of epoch " + std::to_string(out.epoch));
    return make_error(ErrorCode::kUnavailable,
                      "VM '{}': the handover of epoch {} to {} got no answer ({}); this copy is "
                      "fenced (paused, never resumed): check the peer, which may run the VM",
                      config_.vm_name, out.epoch, config_.peer, client_->last_error());
  }
  out.reply = *reply;
  {
    MutexLock lock(mu_);
    alone_ = true;  // connection events no longer move the state
    (void)lifecycle_.enter(VmState::kUnprotected, "migrated to " + config_.peer + " at epoch " +
                                                      std::to_string(out.epoch));
  }
  client_->stop();
  return out;
}

void PrimaryVm::hold_output() {
  for (auto& g : gates_) g->set_release_unacked(nullptr);
  spdlog::warn("vm.hold vm={} output=held (right to run alone lapsed)", config_.vm_name);
}

void PrimaryVm::fence(const std::string& reason) {
  {
    MutexLock lock(mu_);
    if (lifecycle_.state() == VmState::kFenced) return;
    alone_ = true;  // connection events no longer move the state
    (void)lifecycle_.enter(VmState::kFenced, reason);
  }
  // Gates first: from here on nothing leaves, whatever else fails.
  for (auto& g : gates_) g->fence();
  pipeline_->stop();
  client_->stop();
  Status paused = engine_->pause();
  spdlog::error("vm.fenced vm={} reason=\"{}\" guest={}", config_.vm_name, reason,
                paused ? "stopped" : "stop failed: " + paused.error().to_string());
}

VmState PrimaryVm::state() const {
  MutexLock lock(mu_);
  return lifecycle_.state();
}

bool PrimaryVm::alone() const {
  MutexLock lock(mu_);
  return alone_;
}

v1::VmStatus PrimaryVm::status() const {
  PipelineStats p = pipeline_->stats();
  v1::VmStatus s;
  s.set_name(config_.vm_name);
  s.set_role(std::string(to_string(VmRole::kPrimary)));
  s.set_engine(engine_->name());
  s.set_state(to_proto(state()));
  s.set_epoch(p.epoch);
  s.set_acked_epoch(p.acked_epoch);
  s.set_checkpoints_per_sec(p.checkpoints_per_sec);
  s.set_last_pause_us(p.last_pause.total_us);
  s.set_pause_p50_us(p.pause_p50_us);
  s.set_pause_p99_us(p.pause_p99_us);
  s.set_bytes_per_sec(p.bytes_per_sec);
  s.set_compression_ratio(p.compression_ratio);
  s.set_lag_epochs(p.lag_epochs);
  s.set_lag_ms(p.lag_ms);
  s.set_throttle_enabled(p.throttle.enabled);
  s.set_throttle_active(p.throttle.active);
  s.set_throttle_duty(p.throttle.duty);
  s.set_throttle_max_epoch_ms(p.throttle.max_epoch_ms);
  s.set_throttle_last_epoch_ms(p.throttle.last_epoch_ms);
  s.set_throttle_starts(p.throttle.starts);
  s.set_throttle_stopped_s(p.throttle.stopped_s);
  uint64_t held = 0, released = 0, hold_samples = 0;
  for (auto& g : gates_) {
    auto gs = g->stats();
    held += gs.held;
    released += gs.released;
    if (gs.hold_samples > hold_samples) {  // the busiest gate speaks for the VM's output
      hold_samples = gs.hold_samples;
      s.set_output_hold_p50_ms(gs.hold_p50_us / 1e3);
      s.set_output_hold_p99_ms(gs.hold_p99_us / 1e3);
    }
  }
  s.set_output_held(held);
  s.set_output_released(released);
  s.set_memory_bytes(engine_->memory().size());
  s.set_dirty_pages_last(p.last_pause.dirty_pages);
  s.set_peer(config_.peer);
  s.set_apply_us_last(p.last_apply_us);
  s.set_sync_progress(p.sync_progress);
  s.set_checkpoints_total(p.checkpoints);
  s.set_wire_bytes_total(p.bytes_sent);
  s.set_raw_bytes_total(p.raw_bytes);
  auto* h = s.mutable_pause_histogram();
  for (uint64_t b : PauseBuckets::kUpperBoundsUs) h->add_upper_bounds_us(b);
  for (uint64_t c : p.pause_buckets.counts) h->add_counts(c);
  h->set_sum_us(p.pause_buckets.sum_us);
  h->set_count(p.pause_buckets.count);
  s.set_epoch_policy(std::string(to_string(config_.pipeline.epochs.kind)));
  s.set_epoch_min_ms(static_cast<uint64_t>(config_.pipeline.epochs.min.count()));
  s.set_epoch_max_ms(static_cast<uint64_t>(config_.pipeline.epochs.max.count()));
  s.set_checkpoints_by_output(p.checkpoints_by_output);
  s.set_checkpoints_by_timer(p.checkpoints_by_timer);
  s.set_sync_pages_sent(p.sync_pages_sent);
  s.set_sync_pages_skipped(p.sync_pages_skipped);
  s.set_sync_bytes_saved(p.sync_pages_skipped * engine_->page_size());
  s.set_disk_bytes(p.disk.disk_size);
  if (p.disk.disk_size > 0) {
    s.set_disk_protected(p.disk.complete && p.disk.error.empty() &&
                         pipeline_->replica_consistent());
    s.set_disk_detail(!p.disk.error.empty() ? p.disk.error
                      : !p.disk.complete    ? "the disk's first full copy is still running"
                                            : "");
    s.set_disk_bytes_applied(p.disk.bytes);
    s.set_disk_last_seq(p.disk.last_seq);
  }
  if (std::string why = client_->last_error(); !p.connected && !why.empty())
    s.set_detail("secondary: " + why);
  else
    s.set_detail(fmt::format("pause: stop={}us dirty={}us copy={}us devstate={}us resume={}us",
                             p.last_pause.stop_us, p.last_pause.dirty_us, p.last_pause.copy_us,
                             p.last_pause.devstate_us, p.last_pause.resume_us));
  MutexLock lock(mu_);
  if (!failed_migration_.empty()) s.set_detail(failed_migration_ + "; " + s.detail());
  return s;
}

}  // namespace ftd
