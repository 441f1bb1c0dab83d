// Throttle under sustained overload. When the secondary (or the wire, or the
// encoder) cannot keep up, back-pressure stretches epochs without bound and a
// guest that runs free dirties ever more per epoch. With the throttle on, an
// epoch longer than `max_epoch` lowers the guest's duty cycle (the fraction
// of each short window it may run); epochs under half the bound raise it
// again, and at 100 % the throttle stops. The guest always keeps `min_duty`,
// so it makes progress however slow the secondary is.
//
// ThrottleController is the decision alone (a pure state machine, unit
// tested); ThrottledEngine (throttled_engine.h) applies it to a guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace ftd {

struct ThrottleConfig {
  bool enabled = false;
  // Epochs (capture to capture) longer than this engage the throttle.
  std::chrono::milliseconds max_epoch{200};
  // One run + stop cycle while throttled: short, so output and timers in the
  // guest see many small stalls rather than one long one.
  std::chrono::milliseconds window{20};
  double min_duty = 0.1;  // the guest runs at least this fraction of each window
};

Status check_throttle(const ThrottleConfig& c);

// What one epoch's length did to the throttle.
enum class ThrottleChange { kNone, kStarted, kStopped };

class ThrottleController {
 public:
  explicit ThrottleController(ThrottleConfig config) : config_(config) {}

  // Feeds the length of the epoch just captured. Multiplicative decrease of
  // the duty cycle while epochs exceed the bound, additive increase while
  // they are under half of it: converges on the largest duty the pipeline
  // sustains without oscillating at every epoch.
  ThrottleChange on_epoch(std::chrono::microseconds epoch);

  bool active() const { return duty_ < 1.0; }
  double duty() const { return duty_; }  // 1.0: not throttled

 private:
  static constexpr double kDecrease = 0.7;
  static constexpr double kIncrease = 0.1;
  ThrottleConfig config_;  // not const: stop() starts a fresh controller by assignment
  double duty_ = 1.0;
};

std::string_view to_string(ThrottleChange c);

}  // namespace ftd
