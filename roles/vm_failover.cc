#include "roles/vm_failover.h"

#include <spdlog/spdlog.h>

#include <atomic>

namespace ftd {
namespace {

int64_t age_ms(const std::optional<std::chrono::milliseconds>& a) { return a ? a->count() : -1; }

}  // namespace

VmFailover::~VmFailover() {
  if (monitor_for_gates_) monitor_for_gates_->store(nullptr);
}

Result<std::unique_ptr<VmFailover>> VmFailover::for_primary(const FailoverOptions& o,
                                                            PrimaryVm& vm) {
  auto f = std::make_unique<VmFailover>();
  // The gate asks the monitor before each unacked release; the monitor only
  // exists once build_failover returns, and no callback runs before that
  // (callbacks need a lost peer, which needs a first contact).
  auto monitor = std::make_shared<std::atomic<const FailoverMonitor*>>(nullptr);
  f->monitor_for_gates_ = monitor;
  FailoverCallbacks cb;
  cb.go_degraded = [&vm, monitor]() {
    return vm.run_alone([monitor] {
      const FailoverMonitor* m = monitor->load();
      return m != nullptr && m->may_release_unacked();
    });
  };
  cb.hold = [&vm] { vm.hold_output(); };
  cb.fence_self = [&vm](const std::string& reason) { vm.fence(reason); };
  FTD_ASSIGN_OR_RETURN(f->parts_, build_failover(o, Side::kPrimary, vm.name(), std::move(cb)));
  if (!f->parts_.monitor) return f;
  monitor->store(f->parts_.monitor.get());
  HeartbeatMonitor* hb = f->parts_.heartbeat.get();
  Arbiter* arbiter = f->parts_.arbiter.get();
  // Acks carry epoch 0 during a sync: the first non-zero one means the peer's
  // replica is consistent with everything released, so a record that this VM
  // ran alone (an earlier primary here lost its peer) may go.
  auto rejoined = std::make_shared<std::atomic<bool>>(false);
  vm.set_ack_observer([hb, arbiter, rejoined](uint64_t epoch) {
    hb->note_peer_ack(epoch);
    hb->set_epoch(epoch);
    if (epoch > 0 && arbiter && !rejoined->exchange(true)) arbiter->clear_alone();
  });
  return f;
}

Result<std::unique_ptr<VmFailover>> VmFailover::for_secondary(const FailoverOptions& o,
                                                              SecondaryVm& vm) {
  auto f = std::make_unique<VmFailover>();
  FailoverCallbacks cb;
  cb.activate = [&vm](uint64_t epoch) -> Status {
    FTD_ASSIGN_OR_RETURN(ActivationReport r, vm.failover());
    spdlog::warn("failover.activated vm={} epoch={} decided_at_epoch={} activation_us={}",
                 vm.name(), r.epoch, epoch, r.activation_us);
    return ok();
  };
  cb.replica_epoch = [&vm] { return vm.replica_epoch(); };
  FTD_ASSIGN_OR_RETURN(f->parts_, build_failover(o, Side::kSecondary, vm.name(), std::move(cb)));
  if (!f->parts_.monitor) return f;
  HeartbeatMonitor* hb = f->parts_.heartbeat.get();
  vm.set_apply_observer([hb](uint64_t epoch) {
    hb->note_peer_ack(epoch);
    hb->set_epoch(epoch);
  });
  return f;
}

Status VmFailover::release_for_handover() {
  if (!parts_.arbiter) return ok();
  return parts_.arbiter->release_for_handover(std::chrono::milliseconds(1000));
}

void VmFailover::hold_again() {
  if (parts_.arbiter) parts_.arbiter->hold_again();
}

Result<bool> VmFailover::regain_after_handover() {
  if (!parts_.arbiter) return false;  // nothing can tell whether the peer took over
  return parts_.arbiter->regain_after_handover(std::chrono::seconds(5));
}

Status VmFailover::claim_for_handover() {
  if (!parts_.arbiter) return ok();
  // The old primary released its lease before sending the handover: the
  // claim gets a new term at once, or the handover is refused.
  FTD_ASSIGN_OR_RETURN(ArbiterVerdict v,
                       parts_.arbiter->claim_for_handover(std::chrono::milliseconds(1000)));
  if (!v.may_run_alone)
    return make_error(ErrorCode::kFailedPrecondition, "arbiter refused the takeover: {}",
                      v.evidence);
  spdlog::warn("migration.arbiter claimed=yes evidence=\"{}\"", v.evidence);
  return ok();
}

void VmFailover::fill(v1::VmStatus& status) const {
  if (!parts_.monitor) {
    fill_failover_off(status);
    return;
  }
  const FailoverStatus s = parts_.monitor->status();
  v1::FailoverInfo* f = status.mutable_failover();
  f->set_arbiter(s.arbiter);
  f->set_automatic(s.arbiter != "none");
  f->set_state(std::string(to_string(s.state)));
  f->set_decision(std::string(to_string(s.decision)));
  f->set_reason(s.reason);
  f->set_term(s.verdict.term);
  f->set_may_run_alone(s.verdict.may_run_alone);
  f->set_arbiter_evidence(s.verdict.evidence);
  f->set_heartbeat_age_ms(age_ms(s.heartbeat.heartbeat_age));
  f->set_ack_age_ms(age_ms(s.heartbeat.ack_age));
  if (s.heartbeat.peer_role) f->set_peer_role(std::string(to_string(*s.heartbeat.peer_role)));
  f->set_last_error(s.last_error);
  const auto& c = s.heartbeat.counters;
  f->set_heartbeats_received(c.accepted);
  f->set_heartbeats_rejected(c.malformed + c.bad_mac + c.replayed + c.stale + c.wrong_peer);
}

void fill_failover_off(v1::VmStatus& status) {
  v1::FailoverInfo* f = status.mutable_failover();
  f->set_arbiter("none");
  f->set_automatic(false);
  f->set_reason("automatic failover off: no --heartbeat-link configured");
}

}  // namespace ftd
