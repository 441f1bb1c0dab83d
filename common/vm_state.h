// The life cycle of a protected VM on one host: one enum for both roles and
// the only place that changes it (VmLifecycle::enter), which checks the
// transition and logs it with its reason.
//
//  primary:   stopped → degraded (connecting) → syncing → protected ⇄ degraded → syncing …;
//             any → unprotected
//  secondary: waiting ⇄ syncing ⇄ protected; waiting|syncing|protected → activating
//             → active, or → failed (the standby did not start; failover may be retried)
//
// `degraded` = the secondary is unreachable and output is held (safe, not live).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ftd {

enum class VmRole : uint8_t { kPrimary, kSecondary };

enum class VmState : uint8_t {
  kStopped,      // primary: not protecting yet
  kSyncing,      // initial sync or resync in progress; no consistent replica yet
  kProtected,    // the replica holds a consistent epoch and the stream is live
  kDegraded,     // primary: secondary unreachable, output held until it returns
  kUnprotected,  // primary: protection ended by the operator, output flows unheld
  kWaiting,      // secondary: no primary connected
  kActivating,   // secondary: failover in progress
  kActive,       // secondary: failed over, the VM runs here
  kFailed,       // secondary: activation failed; the replica is intact
  kFenced,       // primary: lost arbitration; guest stopped, held output discarded
};

std::string_view to_string(VmRole role);
std::string_view to_string(VmState state);
bool transition_allowed(VmRole role, VmState from, VmState to);

// Not thread-safe: its owner guards it with the VM's own lock.
class VmLifecycle {
 public:
  using Clock = std::chrono::steady_clock;
  VmLifecycle(std::string vm, VmRole role, VmState initial)
      : vm_(std::move(vm)), role_(role), state_(initial), since_(Clock::now()) {}

  VmRole role() const { return role_; }
  VmState state() const { return state_; }
  Clock::time_point since() const { return since_; }

  // Moves to `to` (a no-op when already there) and logs the reason; an error
  // (logged, state unchanged) for a transition the table does not allow.
  Status enter(VmState to, std::string_view reason);

 private:
  std::string vm_;
  VmRole role_;
  VmState state_;
  Clock::time_point since_;
};

}  // namespace ftd
