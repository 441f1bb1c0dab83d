#include "roles/managed_vm.h"

#include <spdlog/spdlog.h>

#include "proto/status_mapping.h"
#include "security/address_policy.h"

namespace ftd {

Result<std::unique_ptr<ManagedVm>> ManagedVm::as_primary(ManagedVmConfig config, RunningGuest guest,
                                                         bool start_protected) {
  auto vm = std::unique_ptr<ManagedVm>(new ManagedVm(std::move(config), nullptr));
  // At start-up the secondary may come up later: protect without waiting.
  FTD_ASSIGN_OR_RETURN(auto primary, vm->start_primary(guest, vm->config_.peer));
  if (!start_protected) {
    MutexLock lock(vm->mu_);
    vm->primary_ = std::move(primary);
    return vm;
  }
  if (auto st = primary->protect(); !st) spdlog::error("protect.failed {}", st.error().to_string());
  MutexLock lock(vm->mu_);
  vm->primary_ = std::move(primary);
  return vm;
}

Result<std::unique_ptr<ManagedVm>> ManagedVm::as_secondary(ManagedVmConfig config,
                                                           std::shared_ptr<SecondaryVm> secondary) {
  auto vm = std::unique_ptr<ManagedVm>(new ManagedVm(std::move(config), std::move(secondary)));
  MutexLock lock(vm->mu_);
  FTD_TRY(vm->watch_secondary(*vm->secondary_));
  return vm;
}

Status ManagedVm::watch_secondary(SecondaryVm& vm) {
  FTD_ASSIGN_OR_RETURN(secondary_failover_, VmFailover::for_secondary(config_.failover, vm));
  // Runs on a stream thread while the VM is a replica here (hooks in place).
  vm.set_takeover_guard(
      [hooks = secondary_failover_.get()] { return hooks->claim_for_handover(); });
  vm.set_handover_observer([this](uint64_t epoch, const std::string& new_secondary) {
    const std::string peer = new_secondary.empty() ? config_.peer : new_secondary;
    log_role("secondary", "active",
             fmt::format("planned migration: took the VM over at epoch {}", epoch));
    std::thread previous;
    {
      MutexLock lock(mu_);
      if (closing_) return;
      previous = std::move(protect_back_thread_);
    }
    if (previous.joinable()) previous.join();  // an earlier handover's, long finished
    MutexLock lock(mu_);
    protect_back_thread_ = std::thread([this, peer] { protect_back(peer); });
  });
  return ok();
}

std::shared_ptr<SecondaryVm> ManagedVm::secondary() const {
  MutexLock lock(mu_);
  return secondary_;
}

ManagedVm::~ManagedVm() {
  std::thread protect_back;
  {
    MutexLock lock(mu_);
    closing_ = true;
    protect_back = std::move(protect_back_thread_);
  }
  if (protect_back.joinable()) protect_back.join();
  MutexLock lock(mu_);
  // Failover hooks call into their VMs: they go first.
  primary_failover_.reset();
  secondary_failover_.reset();
  primary_.reset();
}

void ManagedVm::protect_back(std::string peer) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  int attempt = 0;
  while (true) {
    {
      MutexLock lock(mu_);
      if (closing_) return;
    }
    ++attempt;
    Status st = protect(peer);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    if (st) {
      spdlog::warn("migration.protected_back vm={} peer={} attempts={} ms={}", config_.vm_name,
                   peer, attempt, ms.count());
      return;
    }
    // Expected for a while: the old primary stops its guest, seeds its replica
    // and starts a standby before it accepts a stream.
    spdlog::warn("migration.protect_back_retry vm={} peer={} attempt={} error=\"{}\"",
                 config_.vm_name, peer, attempt, st.error().to_string());
    if (ms >= config_.protect_back_timeout) {
      spdlog::error(
          "migration.protect_back_gave_up vm={} peer={} after_ms={}: the VM runs "
          "here unprotected (ftctl protect --peer)",
          config_.vm_name, peer, ms.count());
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<std::unique_ptr<PrimaryVm>> ManagedVm::start_primary(RunningGuest& guest,
                                                            const std::string& peer) {
  FTD_TRY(check_plaintext_allowed("--peer", peer, config_.tls.enabled(), config_.insecure));
  FTD_ASSIGN_OR_RETURN(ChannelSecurity security,
                       channel_security(config_.tls, config_.peer_identity));
  PrimaryVmConfig pc{.vm_name = config_.vm_name,
                     .peer = peer,
                     .security = std::move(security),
                     .pipeline = config_.pipeline,
                     .vm_spec_digest = config_.vm_spec_digest};
  FTD_ASSIGN_OR_RETURN(auto primary, PrimaryVm::create(std::move(pc), std::move(guest)));
  auto failover = VmFailover::for_primary(config_.failover, *primary);
  if (!failover) {
    guest = PrimaryVm::release(std::move(primary));
    return std::unexpected(failover.error());
  }
  MutexLock lock(mu_);
  primary_failover_ = std::move(*failover);
  return primary;
}

Status ManagedVm::begin(std::string_view what) {
  MutexLock lock(mu_);
  if (!busy_.empty())
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is busy: {} in progress",
                      config_.vm_name, busy_);
  busy_ = std::string(what);
  return ok();
}

void ManagedVm::end() {
  MutexLock lock(mu_);
  busy_.clear();
}

void ManagedVm::log_role(std::string_view from, std::string_view to, std::string_view why) const {
  spdlog::warn("vm.role vm={} from={} to={} why=\"{}\"", config_.vm_name, from, to, why);
}

Status ManagedVm::protect(const std::string& requested_peer) {
  const std::string peer = requested_peer.empty() ? config_.peer : requested_peer;
  if (peer.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "VM '{}': no peer configured; name the secondary's replication address "
                      "(ftctl protect --peer HOST:PORT)",
                      config_.vm_name);
  FTD_TRY(begin("protect to " + peer));
  RunningGuest guest;
  std::string from;
  {
    MutexLock lock(mu_);
    if (primary_ && primary_->alone() && primary_->state() != VmState::kFenced) {
      // It ran alone after losing its secondary and checkpoints no more:
      // protecting it again means a new primary (and a full sync). Its output
      // flows until then, so only while the arbiter still lets it run alone.
      v1::VmStatus arbiter;
      if (primary_failover_) primary_failover_->fill(arbiter);
      if (!arbiter.failover().may_run_alone()) {
        busy_.clear();
        return make_error(ErrorCode::kFailedPrecondition,
                          "VM '{}' ran alone and its arbiter no longer allows it ({}): output "
                          "stays held; protect it again once the arbiter grants it",
                          config_.vm_name, arbiter.failover().arbiter_evidence());
      }
      primary_failover_.reset();
      unprotected_ = PrimaryVm::release(std::move(primary_));
      unprotected_why_ = "ran alone after losing its secondary";
      log_role("primary", "active", "ran alone; protect again to " + peer);
    }
    if (primary_ && primary_->state() == VmState::kFenced) {
      busy_.clear();
      return make_error(ErrorCode::kFailedPrecondition,
                        "VM '{}' is fenced here (its peer took over): it must not run again",
                        config_.vm_name);
    }
    if (primary_) {
      const std::string current = primary_->status().peer();
      busy_.clear();
      if (current != peer)
        return make_error(ErrorCode::kFailedPrecondition,
                          "VM '{}' is already protected to {}; unprotect it first", config_.vm_name,
                          current);
      return primary_->protect();  // idempotent
    }
    if (!unprotected_ && secondary_) {
      if (secondary_->status().state() != v1::VM_STATE_ACTIVE) {
        busy_.clear();
        return make_error(ErrorCode::kFailedPrecondition,
                          "VM '{}' is a replica here; fail over or migrate first", config_.vm_name);
      }
      // The replica's guest after failover. Its heartbeat and arbiter hooks
      // go (they belong to the replica's side); the primary's replace them.
      auto taken = secondary_->take_running_guest();
      if (!taken) {
        busy_.clear();
        return std::unexpected(taken.error());
      }
      secondary_failover_.reset();
      unprotected_ = std::move(*taken);
      unprotected_why_ = "failed over here";
      log_role("secondary", "active", "replica activated, taken over for protection");
    }
    if (!unprotected_) {
      busy_.clear();
      return make_error(ErrorCode::kFailedPrecondition, "VM '{}' has no running guest here",
                        config_.vm_name);
    }
    guest = std::move(*unprotected_);
    unprotected_.reset();
    from = "active";
  }
  auto primary = start_primary(guest, peer);
  if (!primary) {
    MutexLock lock(mu_);
    unprotected_ = std::move(guest);
    busy_.clear();
    return std::unexpected(primary.error());
  }
  PrimaryVm* vm = primary->get();
  {
    MutexLock lock(mu_);
    primary_ = std::move(*primary);  // published: status() shows it connecting
  }
  // Without mu_: connecting takes up to connect_timeout.
  Status connected = vm->protect();
  if (connected) connected = vm->wait_for_peer(config_.connect_timeout);
  if (!connected) {
    MutexLock lock(mu_);
    primary_failover_.reset();
    unprotected_ = PrimaryVm::release(std::move(primary_));
    unprotected_why_ = "protect to " + peer + " failed: " + connected.error().message;
    busy_.clear();
    spdlog::error("vm.protect_failed vm={} peer={} error=\"{}\" guest=running-unprotected",
                  config_.vm_name, peer, connected.error().to_string());
    return std::unexpected(connected.error().with_context(
        fmt::format("protect VM '{}' to {} (the guest keeps running here, unprotected)",
                    config_.vm_name, peer)));
  }
  log_role(from, "primary", "protect to " + peer);
  end();
  return ok();
}

Status ManagedVm::unprotect() {
  FTD_TRY(begin("unprotect"));
  MutexLock lock(mu_);
  if (!primary_) {
    busy_.clear();
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is not protected from this host",
                      config_.vm_name);
  }
  if (primary_->state() == VmState::kFenced) {
    busy_.clear();
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' is fenced here (its peer took over): it must not run again",
                      config_.vm_name);
  }
  primary_failover_.reset();
  unprotected_ = PrimaryVm::release(std::move(primary_));
  unprotected_why_ = "operator: unprotect";
  log_role("primary", "active", "operator: unprotect");
  busy_.clear();
  return ok();
}

Result<v1::FailoverReply> ManagedVm::failover() {
  std::shared_ptr<SecondaryVm> replica;
  {
    MutexLock lock(mu_);
    if (!secondary_ || primary_ || unprotected_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "VM '{}' runs here; fail over by asking its secondary", config_.vm_name);
    replica = secondary_;
  }
  // Not a role transition of this object (the failover monitor calls the
  // secondary directly too): the secondary serialises failovers itself.
  FTD_ASSIGN_OR_RETURN(ActivationReport r, replica->failover());
  v1::FailoverReply reply;
  reply.set_epoch(r.epoch);
  reply.set_activation_us(r.activation_us);
  reply.set_message(r.detail);
  return reply;
}

Result<v1::MigrateReply> ManagedVm::migrate(std::chrono::milliseconds sync_timeout) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (!config_.replica || !config_.make_activator || config_.advertise.empty())
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}': this host cannot become its secondary (start ftd with --listen "
                      "and --replica-dir to allow planned migration)",
                      config_.vm_name);
  FTD_TRY(begin("migrate"));
  PrimaryVm* vm = nullptr;
  {
    MutexLock lock(mu_);
    if (primary_) vm = primary_.get();
  }
  if (!vm) {
    end();
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' is not protected from this host: nothing to migrate",
                      config_.vm_name);
  }
  if (vm->engine().disk_bytes() > 0) {
    // This host would become the secondary with its RAM seeded from the
    // guest (ReplicaStore::seed), but its disk image is not the replica
    // disk the new primary's writes would be mirrored into.
    end();
    return make_error(ErrorCode::kUnimplemented,
                      "VM '{}' has a replicated disk: planned migration with a disk is not "
                      "supported yet (docs/disks.md); use failover, then protect",
                      config_.vm_name);
  }
  if (sync_timeout.count() == 0) sync_timeout = config_.migrate_sync_timeout;
  // Without mu_: waits for sync, then the final checkpoint and the peer's activation.
  VmFailover* hooks = nullptr;
  {
    MutexLock lock(mu_);
    hooks = primary_failover_.get();  // stays until the release below (busy mark held)
  }
  HandoverLease lease{
      .release = [hooks] { return hooks ? hooks->release_for_handover() : ok(); },
      .retake =
          [hooks] {
            if (hooks) hooks->hold_again();
          },
      .regain_unshared =
          [hooks] { return hooks ? hooks->regain_after_handover() : Result<bool>(false); }};
  auto handed = vm->hand_over(config_.advertise, sync_timeout, lease);
  if (!handed) {
    end();
    return std::unexpected(handed.error());
  }
  RunningGuest guest;
  std::string new_primary;
  {
    MutexLock lock(mu_);
    new_primary = primary_->status().peer();
    primary_failover_.reset();
    guest = PrimaryVm::release(std::move(primary_));
  }
  log_role("primary", "secondary", "planned migration to " + new_primary);
  Status became = launcher_.run([&] { return become_secondary(std::move(guest)); });
  v1::MigrateReply reply;
  reply.set_epoch(handed->epoch);
  reply.set_downtime_us(handed->reply.resumed_at_unix_us() - handed->paused_at_unix_us);
  reply.set_pause_us(handed->pause_us);
  reply.set_final_checkpoint_pages(handed->final_pages);
  reply.set_new_primary(new_primary);
  reply.set_total_us(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
  reply.set_message(fmt::format(
      "VM '{}' runs on {} from epoch {}: downtime {:.1f} ms (final pause here -> cont there), "
      "{} pages in the final checkpoint, total {:.1f} ms; {}",
      config_.vm_name, new_primary, reply.epoch(), reply.downtime_us() / 1000.0,
      reply.final_checkpoint_pages(), reply.total_us() / 1000.0,
      became ? "this host is its secondary now"
             : "this host could not become its secondary: " + became.error().to_string()));
  spdlog::warn(
      "migration.done vm={} epoch={} downtime_us={} pause_us={} activation_us={} "
      "final_pages={} total_us={} new_primary={} secondary_here={}",
      config_.vm_name, reply.epoch(), reply.downtime_us(), reply.pause_us(),
      handed->reply.activation_us(), reply.final_checkpoint_pages(), reply.total_us(), new_primary,
      became ? "yes" : became.error().to_string());
  MutexLock lock(mu_);
  last_migration_ = reply.message();
  busy_.clear();
  return reply;
}

Status ManagedVm::become_secondary(RunningGuest guest) {
  const SecondaryVmConfig& rc = *config_.replica;
  std::shared_ptr<SecondaryVm> old;
  {
    MutexLock lock(mu_);
    old = std::move(secondary_);
    secondary_failover_.reset();
  }
  if (old) {
    // The guest ran on the old replica's image, which holds its final RAM
    // already. Its QEMU goes first (it holds the NIC and maps the image),
    // then the old replica (its lock), once no stream still uses it.
    guest = {};
    for (int i = 0; old.use_count() > 1 && i < 500; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (old.use_count() > 1)
      return make_error(ErrorCode::kInternal, "old replica of VM '{}' still in use",
                        config_.vm_name);
    old.reset();
  } else {
    // A guest launched here: its RAM is copied into the replica image before
    // its QEMU (which holds the NIC the standby needs) goes.
    FTD_TRY(SecondaryVm::seed_replica(rc, guest.engine->memory()));
    guest = {};
  }
  FTD_ASSIGN_OR_RETURN(auto activator, config_.make_activator());
  FTD_ASSIGN_OR_RETURN(std::shared_ptr<SecondaryVm> fresh,
                       SecondaryVm::open(rc, std::move(activator)));
  MutexLock lock(mu_);
  secondary_ = fresh;
  return watch_secondary(*secondary_);
}

Result<planning::PlanInputs> ManagedVm::plan(const planning::SampleOptions& options) {
  // The busy mark keeps primary_ (and its pipeline) here while sampling
  // without mu_: unprotect and migrate wait for it like for any transition.
  FTD_TRY(begin("plan"));
  PrimaryVm* vm = nullptr;
  std::string why_not;
  {
    MutexLock lock(mu_);
    if (primary_ && primary_->state() == VmState::kProtected)
      vm = primary_.get();
    else if (primary_)
      why_not = fmt::format("it is {} (plan needs it protected and in sync)",
                            to_string(primary_->state()));
    else if (unprotected_)
      why_not =
          "it runs unprotected: plan samples the checkpoints of a protected guest; protect "
          "it first (ftctl protect --peer HOST:PORT)";
    else
      why_not = "this host holds its replica: run plan on the primary's daemon";
  }
  if (!vm) {
    end();
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}': no plan: {}", config_.vm_name,
                      why_not);
  }
  planning::SampleOptions with_host = options;
  with_host.qemu_start_ms = vm->engine().start_ms();
  {
    // A guest that runs on a replica image (it was activated here) keeps that
    // image when it migrates; one launched here on memfd is copied into it.
    MutexLock lock(mu_);
    with_host.needs_seed = secondary_ == nullptr;
  }
  auto inputs = planning::sample_plan_inputs(vm->pipeline(), vm->engine().memory(), with_host);
  end();
  if (inputs)
    spdlog::info(
        "plan.sampled vm={} window_s={:.1f} checkpoints={} dirty_pages_per_s={:.0f} "
        "commit_p50_ms={:.2f} link=\"{}\"",
        config_.vm_name, inputs->sample_s, inputs->pauses.size(), inputs->dirty_pages_per_s,
        inputs->commit_p50_ms, inputs->link_source);
  return inputs;
}

v1::VmStatus ManagedVm::status() const {
  MutexLock lock(mu_);
  v1::VmStatus s;
  if (primary_) {
    s = primary_->status();
    if (primary_failover_) primary_failover_->fill(s);
  } else if (unprotected_) {
    s.set_name(config_.vm_name);
    s.set_role(std::string(to_string(VmRole::kPrimary)));
    s.set_state(to_proto(VmState::kUnprotected));
    s.set_engine(unprotected_->engine->name());
    s.set_memory_bytes(unprotected_->engine->memory().size());
    s.set_detail(unprotected_why_ + "; running unprotected: ftctl protect --peer HOST:PORT");
    fill_failover_off(s);
    s.mutable_failover()->set_reason("unprotected: no peer");
  } else if (secondary_) {
    s = secondary_->status();
    if (secondary_failover_) secondary_failover_->fill(s);
  } else {
    s.set_name(config_.vm_name);
    s.set_detail("no guest and no replica here");
  }
  s.set_last_migration(last_migration_);
  if (!busy_.empty()) s.set_detail(busy_ + " in progress; " + s.detail());
  return s;
}

}  // namespace ftd
