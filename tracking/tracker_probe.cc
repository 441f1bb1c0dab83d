#include "tracking/tracker_probe.h"

#include <spdlog/spdlog.h>

#include "tracking/scan_tracker.h"
#include "tracking/soft_dirty_tracker.h"
#include "tracking/uffd_wp_tracker.h"

namespace ftd {

Result<TrackerKind> parse_tracker_kind(std::string_view text) {
  if (text == "auto") return TrackerKind::kAuto;
  if (text == "uffd-wp") return TrackerKind::kUffdWp;
  if (text == "soft-dirty") return TrackerKind::kSoftDirty;
  if (text == "scan") return TrackerKind::kScan;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown dirty tracker '{}' (auto|uffd-wp|soft-dirty|scan)", text);
}

std::string_view to_string(TrackerKind kind) {
  switch (kind) {
    case TrackerKind::kAuto:
      return "auto";
    case TrackerKind::kUffdWp:
      return "uffd-wp";
    case TrackerKind::kSoftDirty:
      return "soft-dirty";
    case TrackerKind::kScan:
      return "scan";
  }
  return "?";
}

namespace {

Result<std::unique_ptr<DirtyTracker>> make_uffd_wp(const TrackerTarget& t,
                                                   const KernelProbes& probes) {
  if (auto st = probes.uffd_wp(); !st)
    return std::unexpected(st.error().with_context("kernel lacks async uffd-wp/PAGEMAP_SCAN"));
  if (!t.uffd_in_target)
    return make_error(ErrorCode::kFailedPrecondition,
                      "pid {} holds no userfaultfd (launch QEMU with libftd_uffd_preload.so)",
                      t.range.pid);
  FTD_ASSIGN_OR_RETURN(auto tracker, UffdWpTracker::attach(t.range, *t.uffd_in_target));
  return std::unique_ptr<DirtyTracker>(std::move(tracker));
}

Result<std::unique_ptr<DirtyTracker>> make_soft_dirty(const TrackerTarget& t,
                                                      const KernelProbes& probes) {
  if (auto st = probes.soft_dirty(); !st)
    return std::unexpected(st.error().with_context("soft-dirty unavailable"));
  FTD_ASSIGN_OR_RETURN(auto tracker, SoftDirtyTracker::open(t.range));
  return std::unique_ptr<DirtyTracker>(std::move(tracker));
}

TrackerChoice scan_choice(const TrackingOptions& o, const TrackerTarget& t, std::string reason) {
  return {std::make_unique<ScanTracker>(t.memory, t.range.page_size, o.scan_threads),
          TrackerKind::kScan, std::move(reason)};
}

TrackerChoice audited(const TrackingOptions& o, const TrackerTarget& t,
                      std::unique_ptr<DirtyTracker> inner, TrackerKind kind, std::string reason) {
  return {std::make_unique<AuditedTracker>(std::move(inner), t.memory, t.range.page_size, o.audit),
          kind, std::move(reason)};
}

void log_choice(const TrackerChoice& c, const TrackingOptions& o, const TrackerTarget& t) {
  for (const auto& r : t.risks.risks)
    if (r.severity == MissRisk::Severity::kWarn) spdlog::warn("tracking.risk {}", r.what);
  spdlog::info(
      "tracking.choice requested={} chosen={} audit_every={} pid={} bytes={} reason=\"{}\"",
      to_string(o.kind), to_string(c.kind), o.audit.every_epochs, t.range.pid, t.range.length,
      c.reason);
}

}  // namespace

Result<TrackerChoice> choose_tracker(const TrackingOptions& o, const TrackerTarget& t,
                                     const KernelProbes& probes) {
  if (t.memory.size() < t.range.length)
    return make_error(ErrorCode::kInvalidArgument, "tracker memory view ({} bytes) < range ({})",
                      t.memory.size(), t.range.length);
  if (o.kind == TrackerKind::kScan) {
    auto c = scan_choice(o, t, "scan requested");
    log_choice(c, o, t);
    return c;
  }
  // Page-table trackers cannot see writes that bypass QEMU's page tables.
  if (t.risks.refused()) {
    if (o.kind != TrackerKind::kAuto)
      return make_error(ErrorCode::kFailedPrecondition, "dirty tracker {} refused: {}",
                        to_string(o.kind), t.risks.refusals());
    spdlog::error("tracking.refused reason=\"{}\"", t.risks.refusals());
    auto c = scan_choice(o, t, "page-table trackers refused: " + t.risks.refusals());
    log_choice(c, o, t);
    return c;
  }
  std::string why;
  if (o.kind == TrackerKind::kAuto || o.kind == TrackerKind::kUffdWp) {
    auto tracker = make_uffd_wp(t, probes);
    if (tracker) {
      auto c = audited(o, t, std::move(*tracker), TrackerKind::kUffdWp,
                       "async uffd-wp + PAGEMAP_SCAN works on this kernel and the target holds a "
                       "userfaultfd");
      log_choice(c, o, t);
      return c;
    }
    if (o.kind == TrackerKind::kUffdWp)
      return std::unexpected(tracker.error().with_context("dirty tracker uffd-wp"));
    why = "uffd-wp: " + tracker.error().message;
  }
  if (o.kind == TrackerKind::kAuto || o.kind == TrackerKind::kSoftDirty) {
    auto tracker = make_soft_dirty(t, probes);
    if (tracker) {
      auto c = audited(o, t, std::move(*tracker), TrackerKind::kSoftDirty,
                       why.empty() ? "soft-dirty works on this kernel"
                                   : "soft-dirty works on this kernel; " + why);
      log_choice(c, o, t);
      return c;
    }
    if (o.kind == TrackerKind::kSoftDirty)
      return std::unexpected(tracker.error().with_context("dirty tracker soft-dirty"));
    why += "; soft-dirty: " + tracker.error().message;
  }
  auto c = scan_choice(o, t, why);
  log_choice(c, o, t);
  return c;
}

}  // namespace ftd
