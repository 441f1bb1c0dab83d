// A GuestEngine adapter for qemu_bench: forwards to a QmpEngine and records,
// per checkpoint, the whole pause (pause() call to resume() return) and the
// QMP parts the engine timed (stop, device-state migrate, cont). What is left
// of the pause is the pipeline's dirty-page scan + copy.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "qemu/qmp_engine.h"

namespace ftd::bench {

class QmpProbe : public GuestEngine {
 public:
  using Clock = std::chrono::steady_clock;
  struct Sample {
    double total_ms = 0;
    QmpCheckpointTimings qmp;
  };

  explicit QmpProbe(QmpEngine& inner) : inner_(inner) {}

  std::string name() const override { return inner_.name(); }
  std::span<const std::byte> memory() const override { return inner_.memory(); }
  size_t page_size() const override { return inner_.page_size(); }
  Status pause() override {
    pause_start_ = Clock::now();
    captured_ = false;
    return inner_.pause();
  }
  std::optional<std::vector<uint32_t>> take_dirty_log() override { return inner_.take_dirty_log(); }
  Result<std::vector<std::byte>> capture_device_state() override {
    captured_ = true;
    return inner_.capture_device_state();
  }
  Status resume() override {
    auto st = inner_.resume();
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - pause_start_).count();
    std::lock_guard lock(mu_);
    // Only whole checkpoints (the initial sync pauses without a device-state capture).
    if (recording_ && captured_ && st) samples_.push_back({ms, inner_.last_timings()});
    return st;
  }

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

 private:
  QmpEngine& inner_;
  Clock::time_point pause_start_;
  bool captured_ = false;
  std::mutex mu_;
  bool recording_ = false;
  std::vector<Sample> samples_;
};

}  // namespace ftd::bench
