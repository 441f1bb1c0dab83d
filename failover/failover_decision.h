// The failover decision as a pure function of the evidence: no clocks, no
// threads, no I/O, so every combination can be tested. FailoverMonitor
// gathers the evidence and acts on the decision.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "failover/arbiter.h"
#include "failover/heartbeat_packet.h"

namespace ftd {

enum class Side { kPrimary, kSecondary };

// What this side is currently doing; decisions move it forward.
enum class FailoverState {
  kProtected,  // primary: output released on acks
  kDegraded,   // primary: runs alone, releases output without acks
  kHolding,    // primary: peer lost, no right to run alone: output held
  kFenced,     // primary: lost arbitration; absorbing (never releases again)
  kStandby,    // secondary: replicating
  kActive,     // secondary: activated; absorbing
};
std::string_view to_string(FailoverState s);

enum class FenceOutcome { kNotConfigured, kNotRun, kSucceeded, kFailed };
std::string_view to_string(FenceOutcome f);

struct FailoverEvidence {
  Side side = Side::kSecondary;
  FailoverState state = FailoverState::kStandby;
  std::chrono::milliseconds peer_timeout{250};
  std::vector<std::optional<std::chrono::milliseconds>> link_heartbeat_age;  // nullopt: never
  std::optional<std::chrono::milliseconds> last_ack_age;
  std::optional<PeerRole> peer_role;  // as last heard
  bool arbiter_configured = false;    // false for NoArbiter
  ArbiterVerdict arbiter;
  FenceOutcome fence = FenceOutcome::kNotConfigured;
  uint64_t replica_epoch = 0;  // secondary: last consistent epoch (0: none)
};

enum class Decision {
  kWait,         // secondary: keep replicating / keep waiting
  kClaim,        // secondary: peer lost, ask the arbiter (then decide again)
  kFence,        // secondary: arbitration won, run the fencing command (then decide again)
  kActivate,     // secondary: activate the replica
  kProtected,    // primary: normal operation
  kRunDegraded,  // primary: release output without acks
  kHold,         // primary: keep output held (and ask the arbiter again)
  kFenced,       // primary: stop for good, discard held output
};
std::string_view to_string(Decision d);

struct DecisionResult {
  Decision decision;
  std::string reason;
};

bool peer_alive(const FailoverEvidence& e);
bool peer_ever_heard(const FailoverEvidence& e);
DecisionResult decide(const FailoverEvidence& e);

}  // namespace ftd
