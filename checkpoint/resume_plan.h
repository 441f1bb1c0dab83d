// What a (re)connected secondary needs before the next checkpoint, decided
// from what the primary knows — a pure function, so every case is testable
// without threads or streams:
//   in step    the replica is at the epoch we captured last: carry on;
//   catch up   the replica is a few epochs behind and we still hold the page
//              lists of every epoch it missed: resend those pages as absolute
//              contents in the next checkpoint;
//   full sync  anything else (first connection, nothing acknowledged since our
//              sync, replica ahead of us or from another life, missing page lists).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace ftd {

struct ResumeInputs {
  bool synced = false;          // an initial sync completed on the current stream's predecessor
  // The replica acknowledged a checkpoint taken after that sync, so the epoch
  // it reports is one of ours. Until then it may still hold (or, after a
  // restart that undid our sync, hold again) another primary's epoch N whose
  // number means nothing to us.
  bool acked_since_sync = false;
  uint64_t replica_epoch = 0;   // Welcome.applied_epoch
  uint64_t captured_epoch = 0;  // last epoch the pipeline captured
  std::span<const uint64_t> retained_epochs;  // unacked epochs whose page lists we kept, ascending
};

struct ResumePlan {
  enum class Kind { kInStep, kCatchUp, kFullSync };
  Kind kind = Kind::kFullSync;
  uint64_t from_epoch = 0;  // kInStep / kCatchUp: the replica's epoch (output up to it may go)
  std::string reason;       // for the log line
};

ResumePlan plan_resume(const ResumeInputs& in);
const char* to_string(ResumePlan::Kind kind);

}  // namespace ftd
