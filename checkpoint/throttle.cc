#include "checkpoint/throttle.h"

#include <algorithm>

namespace ftd {

Status check_throttle(const ThrottleConfig& c) {
  if (!c.enabled) return ok();
  if (c.max_epoch.count() <= 0)
    return make_error(ErrorCode::kInvalidArgument, "--throttle-max-epoch-ms must be > 0");
  if (c.window.count() <= 0 || c.window > c.max_epoch)
    return make_error(ErrorCode::kInvalidArgument,
                      "throttle window {} ms must be > 0 and at most the max epoch ({} ms)",
                      c.window.count(), c.max_epoch.count());
  if (!(c.min_duty > 0 && c.min_duty <= 1))
    return make_error(ErrorCode::kInvalidArgument, "throttle minimum duty {} not in (0, 1]",
                      c.min_duty);
  return ok();
}

ThrottleChange ThrottleController::on_epoch(std::chrono::microseconds epoch) {
  if (!config_.enabled) return ThrottleChange::kNone;
  const bool was_active = active();
  if (epoch > config_.max_epoch) {
    duty_ = std::max(config_.min_duty, duty_ * kDecrease);
  } else if (epoch * 2 <= config_.max_epoch && was_active) {
    duty_ = std::min(1.0, duty_ + kIncrease);
    if (duty_ > 1.0 - 1e-9) duty_ = 1.0;
  }
  if (!was_active && active()) return ThrottleChange::kStarted;
  if (was_active && !active()) return ThrottleChange::kStopped;
  return ThrottleChange::kNone;
}

std::string_view to_string(ThrottleChange c) {
  switch (c) {
    case ThrottleChange::kNone:
      return "none";
    case ThrottleChange::kStarted:
      return "start";
    case ThrottleChange::kStopped:
      return "stop";
  }
  return "?";
}

}  // namespace ftd
