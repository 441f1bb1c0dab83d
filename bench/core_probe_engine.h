// A GuestEngine adapter for core_bench: forwards to a real engine and times
// each pause from the pause() call to the return of resume(), so the benchmark
// can take percentiles over exactly the steady-state window (PipelineStats
// keeps lifetime percentiles, which include the big post-sync checkpoint).
//
// With `hide_dirty_log` it still drains the inner engine's dirty log (so the
// true dirty count is known) but returns nullopt, forcing the pipeline onto
// the page scanner. `freeze()` pauses the guest for good, so a final
// checkpoint captures a state the replica can be compared with.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "checkpoint/guest_engine.h"

namespace ftd {

class ProbeEngine : public GuestEngine {
 public:
  using Clock = std::chrono::steady_clock;

  struct Sample {
    uint64_t total_us = 0;      // pause() entry to resume() return
    uint64_t find_copy_us = 0;  // dirty log return to device-state capture (scan + copy)
    uint32_t true_dirty = 0;    // pages in the inner engine's dirty log
  };

  ProbeEngine(GuestEngine& inner, bool hide_dirty_log)
      : inner_(inner), hide_dirty_log_(hide_dirty_log) {}

  std::string name() const override { return inner_.name(); }
  std::span<const std::byte> memory() const override { return inner_.memory(); }
  size_t page_size() const override { return inner_.page_size(); }

  Status pause() override {
    pause_start_ = Clock::now();
    return inner_.pause();
  }
  Status resume() override {
    if (frozen_) return ok();
    auto st = inner_.resume();
    const auto end = Clock::now();
    std::lock_guard lock(mu_);
    if (recording_ && log_taken_)
      samples_.push_back({us(pause_start_, end), us(log_return_, devstate_start_), true_dirty_});
    log_taken_ = false;
    return st;
  }
  Result<std::vector<std::byte>> capture_device_state() override {
    devstate_start_ = Clock::now();
    return inner_.capture_device_state();
  }
  std::optional<std::vector<uint32_t>> take_dirty_log() override {
    auto log = inner_.take_dirty_log();
    true_dirty_ = log ? static_cast<uint32_t>(log->size()) : 0;
    log_taken_ = true;
    log_return_ = Clock::now();
    if (hide_dirty_log_) return std::nullopt;
    return log;
  }

  // Starts a fresh sample window.
  void start_recording() {
    std::lock_guard lock(mu_);
    samples_.clear();
    recording_ = true;
  }
  std::vector<Sample> stop_recording() {
    std::lock_guard lock(mu_);
    recording_ = false;
    return std::move(samples_);
  }

  // Pauses the guest and keeps it paused through later pause/resume pairs.
  Status freeze() {
    FTD_TRY(inner_.pause());
    frozen_ = true;
    return ok();
  }

 private:
  static uint64_t us(Clock::time_point a, Clock::time_point b) {
    return b > a ? static_cast<uint64_t>(
                       std::chrono::duration_cast<std::chrono::microseconds>(b - a).count())
                 : 0;
  }

  GuestEngine& inner_;
  const bool hide_dirty_log_;
  // Written only by the pipeline's loop thread (the one that pauses/resumes).
  Clock::time_point pause_start_, log_return_, devstate_start_;
  uint32_t true_dirty_ = 0;
  bool log_taken_ = false;
  bool frozen_ = false;

  std::mutex mu_;  // guards the sample window, read by the benchmark thread
  bool recording_ = false;
  std::vector<Sample> samples_;
};

}  // namespace ftd
