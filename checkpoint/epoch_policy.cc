#include "checkpoint/epoch_policy.h"

#include <fmt/format.h>

namespace ftd {

std::string_view to_string(EpochPolicyKind kind) {
  return kind == EpochPolicyKind::kFixed ? "fixed" : "output-driven";
}

std::optional<EpochPolicyKind> parse_epoch_policy(std::string_view name) {
  if (name == "fixed") return EpochPolicyKind::kFixed;
  if (name == "output-driven") return EpochPolicyKind::kOutputDriven;
  return std::nullopt;
}

std::string EpochPolicy::describe() const {
  if (kind == EpochPolicyKind::kFixed) return fmt::format("fixed {} ms", max.count());
  return fmt::format("output-driven {}..{} ms", min.count(), max.count());
}

Status check_epoch_policy(const EpochPolicy& policy) {
  if (policy.min.count() < 1)
    return make_error(ErrorCode::kInvalidArgument, "epoch min {} ms: must be at least 1 ms",
                      policy.min.count());
  if (policy.max < policy.min)
    return make_error(ErrorCode::kInvalidArgument, "epoch max {} ms is below epoch min {} ms",
                      policy.max.count(), policy.min.count());
  return ok();
}

std::string_view to_string(CheckpointTrigger trigger) {
  switch (trigger) {
    case CheckpointTrigger::kNone:
      return "none";
    case CheckpointTrigger::kTimer:
      return "timer";
    case CheckpointTrigger::kOutput:
      return "output";
  }
  return "none";
}

EpochDecision decide_epoch(const EpochPolicy& policy, const EpochSignals& s) {
  using std::chrono::microseconds;
  const microseconds max = policy.max, min = policy.min;
  if (s.since_last >= max) return {CheckpointTrigger::kTimer, microseconds{0}, "max interval"};
  const microseconds to_max = max - s.since_last;
  if (policy.kind == EpochPolicyKind::kFixed) return {CheckpointTrigger::kNone, to_max, "interval"};
  if (s.output_waiting == 0) return {CheckpointTrigger::kNone, to_max, "no output waiting"};
  // The ack wakes the loop; until then only the max interval can fire.
  if (!s.previous_acked) return {CheckpointTrigger::kNone, to_max, "output waits for the ack"};
  if (s.since_last < min)
    return {CheckpointTrigger::kNone, min - s.since_last, "output waits for min interval"};
  return {CheckpointTrigger::kOutput, microseconds{0}, "output waiting, previous acked"};
}

}  // namespace ftd
