// When to take the next checkpoint — a pure function of what the loop knows,
// so every branch is testable without threads or a guest:
//   fixed          every `max` (the classic epoch; output waits ~epoch/2..epoch);
//   output-driven  as soon as guest output is waiting, the previous checkpoint
//                  is acknowledged and at least `min` passed since the last
//                  one; otherwise at `max`. Output then waits ~one pause + one
//                  round trip + apply instead of an epoch, and a guest with no
//                  output is checkpointed no more often than with `fixed`.
// Waiting for the ack keeps one checkpoint in flight: checkpointing again
// before it would not release the waiting output sooner (output leaves in
// epoch order) but would pause the guest more often.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ftd {

enum class EpochPolicyKind { kFixed, kOutputDriven };

struct EpochPolicy {
  EpochPolicyKind kind = EpochPolicyKind::kFixed;
  std::chrono::milliseconds min{5};   // output-driven: shortest gap between checkpoints
  std::chrono::milliseconds max{40};  // fixed: the interval; output-driven: the longest gap

  static EpochPolicy fixed(std::chrono::milliseconds interval) {
    return {.kind = EpochPolicyKind::kFixed, .min = interval, .max = interval};
  }
  // "fixed 40 ms" / "output-driven 5..40 ms", for logs and status.
  std::string describe() const;
};

std::string_view to_string(EpochPolicyKind kind);
std::optional<EpochPolicyKind> parse_epoch_policy(std::string_view name);
// min >= 1 ms, max >= min.
Status check_epoch_policy(const EpochPolicy& policy);

// What the loop knows when it asks.
struct EpochSignals {
  std::chrono::microseconds since_last{0};  // since the last checkpoint started
  uint64_t output_waiting = 0;              // items produced since the last checkpoint
  std::chrono::microseconds oldest_output_age{0};
  bool previous_acked = true;  // every captured checkpoint is acknowledged
};

enum class CheckpointTrigger { kNone, kTimer, kOutput };
std::string_view to_string(CheckpointTrigger trigger);

struct EpochDecision {
  CheckpointTrigger trigger = CheckpointTrigger::kNone;
  // kNone: ask again after this long at the latest (output or an ack may
  // wake the loop sooner).
  std::chrono::microseconds wait{0};
  const char* reason = "";
};

EpochDecision decide_epoch(const EpochPolicy& policy, const EpochSignals& signals);

}  // namespace ftd
