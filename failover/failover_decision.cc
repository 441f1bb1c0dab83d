#include "failover/failover_decision.h"

namespace ftd {

std::string_view to_string(FailoverState s) {
  switch (s) {
    case FailoverState::kProtected:
      return "protected";
    case FailoverState::kDegraded:
      return "degraded";
    case FailoverState::kHolding:
      return "holding";
    case FailoverState::kFenced:
      return "fenced";
    case FailoverState::kStandby:
      return "standby";
    case FailoverState::kActive:
      return "active";
  }
  return "?";
}

std::string_view to_string(FenceOutcome f) {
  switch (f) {
    case FenceOutcome::kNotConfigured:
      return "not-configured";
    case FenceOutcome::kNotRun:
      return "not-run";
    case FenceOutcome::kSucceeded:
      return "succeeded";
    case FenceOutcome::kFailed:
      return "failed";
  }
  return "?";
}

std::string_view to_string(Decision d) {
  switch (d) {
    case Decision::kWait:
      return "wait";
    case Decision::kClaim:
      return "claim";
    case Decision::kFence:
      return "fence";
    case Decision::kActivate:
      return "activate";
    case Decision::kProtected:
      return "protected";
    case Decision::kRunDegraded:
      return "run-degraded";
    case Decision::kHold:
      return "hold";
    case Decision::kFenced:
      return "fenced";
  }
  return "?";
}

bool peer_ever_heard(const FailoverEvidence& e) {
  for (const auto& age : e.link_heartbeat_age)
    if (age) return true;
  return e.last_ack_age.has_value();
}

bool peer_alive(const FailoverEvidence& e) {
  for (const auto& age : e.link_heartbeat_age)
    if (age && *age < e.peer_timeout) return true;
  return e.last_ack_age && *e.last_ack_age < e.peer_timeout;
}

namespace {

DecisionResult decide_secondary(const FailoverEvidence& e) {
  if (e.state == FailoverState::kActive) return {Decision::kActivate, "already active"};
  if (peer_alive(e)) return {Decision::kWait, "peer alive"};
  // Armed only after first contact: a peer never heard since start is no
  // evidence of a loss (and a claim now could race the primary's first lease).
  if (!peer_ever_heard(e)) return {Decision::kWait, "peer never heard since start"};
  if (!e.arbiter_configured) return {Decision::kWait, "peer lost; " + e.arbiter.evidence};
  if (e.replica_epoch == 0)
    return {Decision::kWait, "peer lost; no consistent replica to activate"};
  if (!e.arbiter.may_run_alone) {
    if (e.arbiter.superseded)
      return {Decision::kWait, "peer lost; arbitration lost: " + e.arbiter.evidence};
    return {Decision::kClaim, "peer lost; " + e.arbiter.evidence};
  }
  switch (e.fence) {
    case FenceOutcome::kNotRun:
      return {Decision::kFence, "peer lost, arbitration won; fencing peer"};
    case FenceOutcome::kFailed:
      return {Decision::kWait, "peer lost, arbitration won, fencing failed"};
    case FenceOutcome::kNotConfigured:
    case FenceOutcome::kSucceeded:
      break;
  }
  return {Decision::kActivate, "peer lost, arbitration won"};
}

DecisionResult decide_primary(const FailoverEvidence& e) {
  if (e.state == FailoverState::kFenced) return {Decision::kFenced, "fenced earlier (absorbing)"};
  // The peer says it runs the VM: it won; we must never release again.
  if (e.peer_role == PeerRole::kActive && peer_alive(e))
    return {Decision::kFenced, "peer reports active"};
  if (e.arbiter.superseded) return {Decision::kFenced, "arbitration lost: " + e.arbiter.evidence};
  // Degraded means we stopped gating on acks: only the arbiter keeps us
  // running, even if the peer comes back (re-protection is another step).
  if (e.state != FailoverState::kDegraded && peer_alive(e))
    return {Decision::kProtected, "peer alive"};
  // Before the first contact (initial sync) there is no pair to lose yet.
  if (e.state == FailoverState::kProtected && !peer_ever_heard(e))
    return {Decision::kProtected, "peer never heard since start"};
  if (!e.arbiter_configured) return {Decision::kHold, "peer lost; " + e.arbiter.evidence};
  if (e.arbiter.may_run_alone) return {Decision::kRunDegraded, "peer lost; " + e.arbiter.evidence};
  return {Decision::kHold, "peer lost; " + e.arbiter.evidence};
}

}  // namespace

DecisionResult decide(const FailoverEvidence& e) {
  return e.side == Side::kSecondary ? decide_secondary(e) : decide_primary(e);
}

}  // namespace ftd
