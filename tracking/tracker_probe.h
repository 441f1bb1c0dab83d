// Chooses the dirty tracker at run time: what was asked for, what the kernel
// can do (real probes, kernel_probes.h), what the configuration allows
// (miss_risks.h), and whether the target holds a uffd. Says why in one log
// line (`tracking.choice`), and in TrackerChoice::reason for status.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tracking/audited_tracker.h"
#include "tracking/dirty_tracker.h"
#include "tracking/kernel_probes.h"
#include "tracking/miss_risks.h"

namespace ftd {

enum class TrackerKind { kAuto, kUffdWp, kSoftDirty, kScan };
Result<TrackerKind> parse_tracker_kind(std::string_view text);  // auto|uffd-wp|soft-dirty|scan
std::string_view to_string(TrackerKind kind);

struct TrackingOptions {
  TrackerKind kind = TrackerKind::kAuto;
  AuditOptions audit;
  unsigned scan_threads = 1;  // for the scan backend
};

struct TrackerTarget {
  TrackedRange range;                 // the target's own address range
  std::optional<int> uffd_in_target;  // fd number of a uffd the target created, if any
  std::span<const std::byte> memory;  // our mapping of the same pages (scan, audit)
  MissRiskReport risks;               // from the check_* functions
};

struct TrackerChoice {
  std::unique_ptr<DirtyTracker> tracker;  // audited unless it is the scan itself
  TrackerKind kind = TrackerKind::kScan;
  std::string reason;
};

// kAuto tries uffd-wp, then soft-dirty, then scan, and never fails because
// of the kernel. An explicit kind that cannot be had is an error (an
// operator who asked for uffd-wp must not silently get a scan).
Result<TrackerChoice> choose_tracker(const TrackingOptions& options, const TrackerTarget& target,
                                     const KernelProbes& probes = {});

}  // namespace ftd
