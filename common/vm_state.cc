#include "common/vm_state.h"

#include <spdlog/spdlog.h>

namespace ftd {

std::string_view to_string(VmRole role) {
  return role == VmRole::kPrimary ? "primary" : "secondary";
}

std::string_view to_string(VmState state) {
  switch (state) {
    case VmState::kStopped:
      return "stopped";
    case VmState::kSyncing:
      return "syncing";
    case VmState::kProtected:
      return "protected";
    case VmState::kDegraded:
      return "degraded";
    case VmState::kUnprotected:
      return "unprotected";
    case VmState::kWaiting:
      return "waiting";
    case VmState::kActivating:
      return "activating";
    case VmState::kActive:
      return "active";
    case VmState::kFailed:
      return "failed";
    case VmState::kFenced:
      return "fenced";
  }
  return "unknown";
}

bool transition_allowed(VmRole role, VmState from, VmState to) {
  using S = VmState;
  if (role == VmRole::kPrimary) {
    switch (to) {
      case S::kSyncing:
        return from == S::kStopped || from == S::kProtected || from == S::kDegraded;
      case S::kProtected:
        return from == S::kSyncing || from == S::kDegraded;
      case S::kDegraded:
        return from == S::kStopped || from == S::kSyncing || from == S::kProtected;
      case S::kUnprotected:
        return from != S::kUnprotected && from != S::kFenced;
      case S::kFenced:  // absorbing: only re-protection (another daemon life) leaves it
        return from != S::kFenced && from != S::kUnprotected;
      default:
        return false;
    }
  }
  switch (to) {
    case S::kWaiting:
    case S::kSyncing:
    case S::kProtected:
      return from == S::kWaiting || from == S::kSyncing || from == S::kProtected;
    case S::kActivating:
      return from == S::kWaiting || from == S::kSyncing || from == S::kProtected ||
             from == S::kFailed;
    case S::kActive:
    case S::kFailed:
      return from == S::kActivating;
    default:
      return false;
  }
}

Status VmLifecycle::enter(VmState to, std::string_view reason) {
  if (to == state_) return ok();
  if (!transition_allowed(role_, state_, to)) {
    spdlog::error("vm.state.refused vm={} role={} from={} to={} reason=\"{}\"", vm_,
                  to_string(role_), to_string(state_), to_string(to), reason);
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' cannot go from {} to {}", vm_,
                      to_string(state_), to_string(to));
  }
  const double held_ms = std::chrono::duration<double, std::milli>(Clock::now() - since_).count();
  spdlog::info("vm.state vm={} role={} from={} to={} after_ms={:.0f} reason=\"{}\"", vm_,
               to_string(role_), to_string(state_), to_string(to), held_ms, reason);
  state_ = to;
  since_ = Clock::now();
  return ok();
}

}  // namespace ftd
