// Runs the failover decision continuously: every tick it gathers evidence
// (heartbeat monitor, arbiter, fencing outcome, replica epoch), calls
// decide(), performs the step it asks for (claim, fence) and the transition
// callbacks, and writes one structured log line per decision change with the
// evidence.
//
// Thread contract: owns one thread (started by the constructor, joined by the
// destructor); callbacks run on that thread, one at a time; status() and
// wait_for_state() are callable from any thread. The heartbeat monitor and
// arbiter must outlive this object.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "failover/arbiter.h"
#include "failover/failover_decision.h"
#include "failover/fence_command.h"
#include "failover/heartbeat_monitor.h"

namespace ftd {

struct FailoverCallbacks {
  // Secondary: activate the replica at `epoch` (e.g. SecondaryVm::failover).
  std::function<Status(uint64_t epoch)> activate;
  // Secondary: last consistent replica epoch (0: none yet).
  std::function<uint64_t()> replica_epoch;
  // Primary: release held output without acks from now on.
  std::function<Status()> go_degraded;
  // Primary: degraded → stop releasing unacked output again (lease lapsed).
  std::function<void()> hold;
  // Primary: lost arbitration: discard held output, stop the guest, never release.
  std::function<void(const std::string& reason)> fence_self;
};

struct FailoverMonitorConfig {
  Side side = Side::kSecondary;
  std::string vm;
  std::chrono::milliseconds tick{20};
  std::chrono::milliseconds claim_timeout{300};  // one claim attempt per tick at most this long
  std::optional<FenceCommand> fence;             // secondary only
  FenceTarget fence_target;
};

struct FailoverStatus {
  FailoverState state;
  Decision decision;
  std::string reason;
  std::string arbiter;  // name
  ArbiterVerdict verdict;
  std::string last_error;  // last claim / fence / callback failure
  HeartbeatSnapshot heartbeat;
};

class FailoverMonitor {
 public:
  FailoverMonitor(FailoverMonitorConfig config, HeartbeatMonitor& heartbeat, Arbiter& arbiter,
                  FailoverCallbacks callbacks);
  ~FailoverMonitor();
  FailoverMonitor(const FailoverMonitor&) = delete;
  FailoverMonitor& operator=(const FailoverMonitor&) = delete;

  FailoverStatus status() const;
  // For the primary's output gate, checked on every release of unacked
  // output: degraded *and* the arbiter still says so right now. The monitor
  // thread's own transition to `hold` may lag by a tick; this check does not.
  bool may_release_unacked() const;
  bool wait_for_state(FailoverState state, std::chrono::milliseconds timeout) const;

 private:
  void run();
  FailoverEvidence gather(const HeartbeatSnapshot& hb) const;
  // One evaluation; may take several decide() steps (claim → fence → activate).
  void step();
  void act(const DecisionResult& d, const FailoverEvidence& e);
  void log_decision(const DecisionResult& d, const FailoverEvidence& e,
                    const HeartbeatSnapshot& hb);

  const FailoverMonitorConfig config_;
  HeartbeatMonitor& heartbeat_;
  Arbiter& arbiter_;
  const FailoverCallbacks callbacks_;

  // Touched only by the monitor thread.
  FenceOutcome fence_outcome_;
  bool activation_failed_ = false;
  std::optional<std::pair<Decision, FailoverState>> last_logged_;

  mutable Mutex mu_;
  mutable CondVar cv_;
  bool stop_ FTD_GUARDED_BY(mu_) = false;
  FailoverState state_ FTD_GUARDED_BY(mu_);
  DecisionResult last_ FTD_GUARDED_BY(mu_){Decision::kWait, "starting"};
  ArbiterVerdict last_verdict_ FTD_GUARDED_BY(mu_);
  std::string last_error_ FTD_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ftd
