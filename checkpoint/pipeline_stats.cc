#include "checkpoint/pipeline_stats.h"

#include <algorithm>

namespace ftd {
namespace {

template <typename T>
void push_capped(std::deque<std::pair<std::chrono::steady_clock::time_point, T>>& log,
                 std::chrono::steady_clock::time_point now, T value, size_t cap) {
  log.emplace_back(now, std::move(value));
  if (log.size() > cap) log.pop_front();
}

template <typename T>
std::vector<T> values_since(
    const std::deque<std::pair<std::chrono::steady_clock::time_point, T>>& log,
    std::chrono::steady_clock::time_point since) {
  std::vector<T> out;
  for (const auto& [t, v] : log)
    if (t >= since) out.push_back(v);
  return out;
}

}  // namespace

uint64_t percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

void PauseBuckets::add(uint64_t us) {
  auto bound = std::lower_bound(kUpperBoundsUs.begin(), kUpperBoundsUs.end(), us);
  ++counts[static_cast<size_t>(bound - kUpperBoundsUs.begin())];
  sum_us += us;
  ++count;
}

void StatsRecorder::record_pause(const PauseBreakdown& p) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  checkpoint_times_.push_back(now);
  while (now - checkpoint_times_.front() > kWindow) checkpoint_times_.pop_front();
  pauses_.push_back(p.total_us);
  if (pauses_.size() > kPauseSamples) pauses_.pop_front();
  last_pause_ = p;
  push_capped(plan_pauses_, now, p, kPlanSamples);
  pause_buckets_.add(p.total_us);
  ++checkpoints_;
}

void StatsRecorder::record_sent(uint64_t raw_bytes, uint64_t encoded_bytes, uint64_t ship_us,
                                uint64_t encode_us) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  push_capped(plan_ships_, now, ShipSample{raw_bytes, encoded_bytes, ship_us, encode_us},
              kPlanSamples);
  sends_.emplace_back(now, encoded_bytes);
  while (now - sends_.front().first > kWindow) sends_.pop_front();
  raw_ += raw_bytes;
  sent_ += encoded_bytes;
}

void StatsRecorder::record_apply(uint64_t apply_us) {
  std::lock_guard lock(mu_);
  last_apply_us_ = apply_us;
}

void StatsRecorder::record_commit(uint64_t us) {
  std::lock_guard lock(mu_);
  push_capped(plan_commits_, Clock::now(), us, kPlanSamples);
}

PlanSamples StatsRecorder::samples_since(Clock::time_point since) const {
  std::lock_guard lock(mu_);
  return {values_since(plan_pauses_, since), values_since(plan_ships_, since),
          values_since(plan_commits_, since)};
}

void StatsRecorder::record_trigger(bool by_output) {
  std::lock_guard lock(mu_);
  ++(by_output ? by_output_ : by_timer_);
}

void StatsRecorder::record_backpressure() {
  std::lock_guard lock(mu_);
  ++backpressure_;
}

void StatsRecorder::set_sync_progress(double p, bool done) {
  std::lock_guard lock(mu_);
  sync_progress_ = p;
  synced_ = done;
}

void StatsRecorder::set_sync_pages(uint64_t sent, uint64_t skipped) {
  std::lock_guard lock(mu_);
  sync_pages_sent_ = sent;
  sync_pages_skipped_ = skipped;
}

void StatsRecorder::fill(PipelineStats& s) const {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  auto rate = [&](size_t events, Clock::time_point first) {
    double secs = std::chrono::duration<double>(now - first).count();
    return secs > 0.05 ? static_cast<double>(events) / secs : 0.0;
  };
  s.checkpoints = checkpoints_;
  s.checkpoints_per_sec = checkpoint_times_.size() > 1
                              ? rate(checkpoint_times_.size() - 1, checkpoint_times_.front())
                              : 0;
  uint64_t window_bytes = 0;
  for (auto& [t, b] : sends_) window_bytes += b;
  s.bytes_per_sec = sends_.empty() ? 0 : rate(window_bytes, sends_.front().first);
  s.compression_ratio = sent_ ? static_cast<double>(raw_) / static_cast<double>(sent_) : 0;
  s.bytes_sent = sent_;
  s.raw_bytes = raw_;
  std::vector<uint64_t> p(pauses_.begin(), pauses_.end());
  s.pause_p50_us = percentile(p, 50);
  s.pause_p99_us = percentile(p, 99);
  s.pause_max_us = p.empty() ? 0 : *std::max_element(p.begin(), p.end());
  s.last_pause = last_pause_;
  s.pause_buckets = pause_buckets_;
  s.last_apply_us = last_apply_us_;
  s.backpressure_waits = backpressure_;
  s.checkpoints_by_output = by_output_;
  s.checkpoints_by_timer = by_timer_;
  s.sync_progress = sync_progress_;
  s.synced = synced_;
  s.sync_pages_sent = sync_pages_sent_;
  s.sync_pages_skipped = sync_pages_skipped_;
}

}  // namespace ftd
