#include "tracking/audited_tracker.h"

#include <algorithm>
#include <iterator>

#include <spdlog/spdlog.h>

namespace ftd {

AuditedTracker::AuditedTracker(std::unique_ptr<DirtyTracker> inner,
                               std::span<const std::byte> memory, size_t page_size,
                               AuditOptions options)
    : inner_(std::move(inner)),
      memory_(memory),
      page_size_(page_size),
      options_(options),
      scanner_(page_size, options.hash_threads) {}

std::vector<uint32_t> AuditedTracker::audit(const std::vector<uint32_t>& tracked) {
  const std::vector<uint32_t> changed = scanner_.scan(memory_);
  std::vector<uint32_t> missed;
  std::set_difference(changed.begin(), changed.end(), tracked.begin(), tracked.end(),
                      std::back_inserter(missed));
  audits_.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("tracking.audit tracker={} epoch={} tracked={} changed={} missed={}",
                inner_->name(), epoch_, tracked.size(), changed.size(), missed.size());
  return missed;
}

Result<std::vector<uint32_t>> AuditedTracker::collect() {
  ++epoch_;
  FTD_ASSIGN_OR_RETURN(std::vector<uint32_t> pages, inner_->collect());
  if (baseline_taken_) {
    baseline_taken_ = false;
    std::vector<uint32_t> missed = audit(pages);
    if (!missed.empty()) {
      audit_misses_.fetch_add(1, std::memory_order_relaxed);
      missed_pages_.fetch_add(missed.size(), std::memory_order_relaxed);
      full_epochs_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error(
          "tracking.audit_miss tracker={} epoch={} missed_pages={} first_missed_page={} "
          "tracked_pages={} action=full_epoch (every page resent; see docs/tracking.md for "
          "the configurations that cause misses)",
          inner_->name(), epoch_, missed.size(), missed.front(), pages.size());
      const size_t all = (memory_.size() + page_size_ - 1) / page_size_;
      pages.resize(all);
      for (size_t i = 0; i < all; ++i) pages[i] = static_cast<uint32_t>(i);
    }
  } else if (options_.every_epochs > 0 && epoch_ % options_.every_epochs == 0) {
    // Baseline right after the inner tracker re-armed, writers still paused:
    // the next collect's set must then cover every change of the hashes.
    scanner_.reset();
    scanner_.scan(memory_);
    baseline_taken_ = true;
  }
  return pages;
}

TrackerCounters AuditedTracker::counters() const {
  TrackerCounters c = inner_->counters();
  c.audits = audits_.load(std::memory_order_relaxed);
  c.audit_misses = audit_misses_.load(std::memory_order_relaxed);
  c.missed_pages = missed_pages_.load(std::memory_order_relaxed);
  c.full_epochs = full_epochs_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace ftd
