#include "failover/failover_monitor.h"

#include <spdlog/spdlog.h>

namespace ftd {
using std::chrono::milliseconds;

namespace {

std::string age_str(const std::optional<milliseconds>& a) {
  return a ? std::to_string(a->count()) : std::string("never");
}

PeerRole role_for(FailoverState s) {
  switch (s) {
    case FailoverState::kProtected:
    case FailoverState::kHolding:
      return PeerRole::kPrimary;
    case FailoverState::kDegraded:
      return PeerRole::kDegraded;
    case FailoverState::kFenced:
      return PeerRole::kFenced;
    case FailoverState::kStandby:
      return PeerRole::kSecondary;
    case FailoverState::kActive:
      return PeerRole::kActive;
  }
  return PeerRole::kPrimary;
}

}  // namespace

FailoverMonitor::FailoverMonitor(FailoverMonitorConfig config, HeartbeatMonitor& heartbeat,
                                 Arbiter& arbiter, FailoverCallbacks callbacks)
    : config_(std::move(config)),
      heartbeat_(heartbeat),
      arbiter_(arbiter),
      callbacks_(std::move(callbacks)),
      fence_outcome_(config_.fence ? FenceOutcome::kNotRun : FenceOutcome::kNotConfigured) {
  state_ = config_.side == Side::kPrimary ? FailoverState::kProtected : FailoverState::kStandby;
  thread_ = std::thread([this] { run(); });
}

FailoverMonitor::~FailoverMonitor() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

FailoverStatus FailoverMonitor::status() const {
  auto hb = heartbeat_.snapshot();
  MutexLock lock(mu_);
  return {state_, last_.decision, last_.reason, arbiter_.name(), last_verdict_, last_error_, hb};
}

bool FailoverMonitor::may_release_unacked() const {
  {
    MutexLock lock(mu_);
    if (state_ != FailoverState::kDegraded) return false;
  }
  const ArbiterVerdict v = arbiter_.current();
  return v.may_run_alone && v.alone_recorded;
}

bool FailoverMonitor::wait_for_state(FailoverState state, milliseconds timeout) const {
  MutexLock lock(mu_);
  return cv_.wait_for(mu_, timeout,
                      [&]() FTD_NO_THREAD_SAFETY_ANALYSIS { return state_ == state; });
}

void FailoverMonitor::run() {
  MutexLock lock(mu_);
  while (!stop_) {
    lock.unlock();  // evidence gathering and callbacks run unlocked (they may block)
    step();
    lock.lock();
    cv_.wait_until(mu_, std::chrono::steady_clock::now() + config_.tick);
  }
}

FailoverEvidence FailoverMonitor::gather(const HeartbeatSnapshot& hb) const {
  FailoverEvidence e;
  e.side = config_.side;
  {
    MutexLock lock(mu_);
    e.state = state_;
  }
  e.peer_timeout = heartbeat_.config().timeout();
  for (const auto& l : hb.links) e.link_heartbeat_age.push_back(l.age);
  e.last_ack_age = hb.ack_age;
  e.peer_role = hb.peer_role;
  e.arbiter_configured = arbiter_.name() != "none";
  e.arbiter = arbiter_.current();
  e.fence = fence_outcome_;
  if (config_.side == Side::kSecondary && callbacks_.replica_epoch)
    e.replica_epoch = callbacks_.replica_epoch();
  return e;
}

void FailoverMonitor::step() {
  // claim → fence → activate can all happen in one tick; bounded so a
  // misbehaving step cannot spin.
  for (int i = 0; i < 4; ++i) {
    const HeartbeatSnapshot hb = heartbeat_.snapshot();
    const FailoverEvidence e = gather(hb);
    const DecisionResult d = decide(e);
    {
      MutexLock lock(mu_);
      last_ = d;
      last_verdict_ = e.arbiter;
    }
    log_decision(d, e, hb);
    act(d, e);
    // Decide again at once only if the step produced new evidence.
    const bool progressed = d.decision == Decision::kFence ||
                            (d.decision == Decision::kClaim && arbiter_.current().may_run_alone);
    if (!progressed) return;
  }
}

void FailoverMonitor::act(const DecisionResult& d, const FailoverEvidence& e) {
  auto set_state = [&](FailoverState s) {
    {
      MutexLock lock(mu_);
      state_ = s;
    }
    cv_.notify_all();
    heartbeat_.set_role(role_for(s));
  };
  auto note_error = [&](std::string msg) {
    spdlog::error("failover_error vm={} error='{}'", config_.vm, msg);
    MutexLock lock(mu_);
    last_error_ = std::move(msg);
  };
  if (peer_alive(e) && fence_outcome_ == FenceOutcome::kFailed)
    fence_outcome_ = FenceOutcome::kNotRun;  // a new loss gets a new fencing attempt
  switch (d.decision) {
    case Decision::kWait:
    case Decision::kProtected:
      if (e.state == FailoverState::kHolding) set_state(FailoverState::kProtected);
      return;
    case Decision::kClaim:
    case Decision::kHold: {
      if (d.decision == Decision::kHold && e.state != FailoverState::kHolding) {
        if (e.state == FailoverState::kDegraded && callbacks_.hold) callbacks_.hold();
        set_state(FailoverState::kHolding);
      }
      if (!e.arbiter_configured) return;
      auto v = arbiter_.claim(config_.claim_timeout);
      if (!v) note_error("arbiter " + arbiter_.name() + ": " + v.error().to_string());
      return;
    }
    case Decision::kFence: {
      auto r = config_.fence->run(config_.fence_target);
      if (r) {
        spdlog::info("failover_fenced_peer vm={} peer={} elapsed_ms={}", config_.vm,
                     config_.fence_target.peer, r->elapsed.count());
        fence_outcome_ = FenceOutcome::kSucceeded;
      } else {
        fence_outcome_ = FenceOutcome::kFailed;
        note_error(r.error().to_string());
      }
      return;
    }
    case Decision::kActivate:
      if (e.state == FailoverState::kActive || activation_failed_) return;
      if (auto s = callbacks_.activate(e.replica_epoch); !s) {
        activation_failed_ = true;  // never retried behind the operator's back
        note_error("activation failed: " + s.error().to_string());
        return;
      }
      set_state(FailoverState::kActive);
      return;
    case Decision::kRunDegraded: {
      if (e.state == FailoverState::kDegraded) return;
      // The arbiter must record that we run alone before the first unacked
      // frame leaves; until it does, keep holding (and retry next tick).
      if (!e.arbiter.alone_recorded) {
        auto v = arbiter_.mark_alone(config_.claim_timeout);
        if (!v) {
          note_error("arbiter " + arbiter_.name() + " mark_alone: " + v.error().to_string());
          return;
        }
        if (!v->may_run_alone || !v->alone_recorded) {
          if (e.state != FailoverState::kHolding) set_state(FailoverState::kHolding);
          return;
        }
        spdlog::info("failover_alone_recorded vm={} arbiter={} evidence='{}'", config_.vm,
                     arbiter_.name(), v->evidence);
      }
      // State first: the gate's may_release_unacked() asks for it.
      set_state(FailoverState::kDegraded);
      if (auto s = callbacks_.go_degraded(); !s) {
        set_state(FailoverState::kHolding);
        note_error("go_degraded failed: " + s.error().to_string());
      }
      return;
    }
    case Decision::kFenced:
      if (e.state == FailoverState::kFenced) return;
      // State first: whatever the callback does, we never release again.
      set_state(FailoverState::kFenced);
      callbacks_.fence_self(d.reason);
      return;
  }
}

void FailoverMonitor::log_decision(const DecisionResult& d, const FailoverEvidence& e,
                                   const HeartbeatSnapshot& hb) {
  const auto key = std::make_pair(d.decision, e.state);
  if (last_logged_ == key) return;
  last_logged_ = key;
  std::string links;
  for (const auto& l : hb.links)
    links += fmt::format("{}{}:{}", links.empty() ? "" : ",", l.peer, age_str(l.age));
  spdlog::info(
      "failover_decision vm={} side={} decision={} state={} reason='{}' last_heartbeat_ms={} "
      "links=[{}] last_ack_ms={} peer_role={} peer_epoch={} arbiter={} may_run_alone={} term={} "
      "arbiter_evidence='{}' fence={} replica_epoch={} rejected_hb={}",
      config_.vm, config_.side == Side::kPrimary ? "primary" : "secondary", to_string(d.decision),
      to_string(e.state), d.reason, age_str(hb.heartbeat_age), links, age_str(hb.ack_age),
      hb.peer_role ? to_string(*hb.peer_role) : "unknown", hb.peer_epoch, arbiter_.name(),
      e.arbiter.may_run_alone, e.arbiter.term, e.arbiter.evidence, to_string(e.fence),
      e.replica_epoch,
      hb.counters.malformed + hb.counters.bad_mac + hb.counters.replayed + hb.counters.stale +
          hb.counters.wrong_peer);
}

}  // namespace ftd
