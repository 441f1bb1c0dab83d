#include "checkpoint/resume_plan.h"

#include <algorithm>

#include <fmt/format.h>

namespace ftd {

ResumePlan plan_resume(const ResumeInputs& in) {
  using Kind = ResumePlan::Kind;
  if (!in.synced) return {Kind::kFullSync, 0, "no completed initial sync"};
  if (in.replica_epoch == 0) return {Kind::kFullSync, 0, "replica holds no consistent epoch"};
  if (!in.acked_since_sync)
    return {Kind::kFullSync, 0,
            fmt::format("nothing acknowledged since our sync: epoch {} may be another primary's",
                        in.replica_epoch)};
  if (in.replica_epoch > in.captured_epoch)
    return {Kind::kFullSync, 0,
            fmt::format("replica epoch {} is ahead of ours ({}): not our history", in.replica_epoch,
                        in.captured_epoch)};
  if (in.replica_epoch == in.captured_epoch)
    return {Kind::kInStep, in.replica_epoch, "replica has every captured epoch"};
  for (uint64_t e = in.replica_epoch + 1; e <= in.captured_epoch; ++e) {
    if (!std::binary_search(in.retained_epochs.begin(), in.retained_epochs.end(), e))
      return {Kind::kFullSync, 0, fmt::format("pages of missed epoch {} no longer known", e)};
  }
  return {Kind::kCatchUp, in.replica_epoch,
          fmt::format("replica missed epochs {}..{}", in.replica_epoch + 1, in.captured_epoch)};
}

const char* to_string(ResumePlan::Kind kind) {
  switch (kind) {
    case ResumePlan::Kind::kInStep:
      return "in_step";
    case ResumePlan::Kind::kCatchUp:
      return "catch_up";
    case ResumePlan::Kind::kFullSync:
      return "full_sync";
  }
  return "?";
}

}  // namespace ftd
