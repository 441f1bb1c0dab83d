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
                                                           std::unique_ptr<SecondaryVm> secondary) {
  auto vm = std::unique_ptr<ManagedVm>(new ManagedVm(std::move(config), std::move(secondary)));
  FTD_ASSIGN_OR_RETURN(auto failover,
                       VmFailover::for_secondary(vm->config_.failover, *vm->secondary_));
  MutexLock lock(vm->mu_);
  vm->secondary_failover_ = std::move(failover);
  return vm;
}

ManagedVm::~ManagedVm() {
  MutexLock lock(mu_);
  // Failover hooks call into their VMs: they go first.
  primary_failover_.reset();
  secondary_failover_.reset();
  primary_.reset();
}

Result<std::unique_ptr<PrimaryVm>> ManagedVm::start_primary(RunningGuest& guest,
                                                            const std::string& peer) {
  FTD_TRY(check_plaintext_allowed("--peer", peer, config_.tls.enabled(), config_.insecure));
  FTD_ASSIGN_OR_RETURN(ChannelSecurity security,
                       channel_security(config_.tls, config_.peer_identity));
  PrimaryVmConfig pc{.vm_name = config_.vm_name,
                     .peer = peer,
                     .security = std::move(security),
                     .pipeline = config_.pipeline};
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
  {
    MutexLock lock(mu_);
    if (!secondary_ || primary_ || unprotected_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "VM '{}' runs here; fail over by asking its secondary", config_.vm_name);
  }
  // Not a role transition of this object (the failover monitor calls the
  // secondary directly too): the secondary serialises failovers itself.
  FTD_ASSIGN_OR_RETURN(ActivationReport r, secondary_->failover());
  v1::FailoverReply reply;
  reply.set_epoch(r.epoch);
  reply.set_activation_us(r.activation_us);
  reply.set_message(r.detail);
  return reply;
}

Status ManagedVm::migrate() {
  return make_error(ErrorCode::kUnimplemented,
                    "planned migration is not implemented yet (tracked as its own issue)");
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
  }
  if (!busy_.empty()) s.set_detail(busy_ + " in progress; " + s.detail());
  return s;
}

}  // namespace ftd
