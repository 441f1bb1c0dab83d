// A GuestEngine decorator that applies the throttle (throttle.h): while the
// controller's duty cycle is below 1, a thread keeps the guest stopped for
// (1 - duty) of every window. The pipeline pauses and resumes the guest
// through this decorator, so the two never fight over it: a capture that
// starts while the throttle holds the guest stopped takes it over (its
// resume lets the guest run), and the throttle never resumes a guest it did
// not stop itself.
//
// The duty cycle thread runs only between start() and stop(), i.e. while the
// pipeline's checkpoint loop runs: everything that stops checkpointing to
// keep the guest paused (fencing, a final checkpoint) stops the loop first.
#pragma once

#include <chrono>
#include <thread>

#include "checkpoint/guest_engine.h"
#include "checkpoint/pipeline_stats.h"
#include "checkpoint/throttle.h"
#include "common/mutex.h"

namespace ftd {

class ThrottledEngine final : public GuestEngine {
 public:
  ThrottledEngine(GuestEngine& inner, ThrottleConfig config);
  ~ThrottledEngine() override;
  ThrottledEngine(const ThrottledEngine&) = delete;
  ThrottledEngine& operator=(const ThrottledEngine&) = delete;

  std::string name() const override { return inner_.name(); }
  std::span<const std::byte> memory() const override { return inner_.memory(); }
  size_t page_size() const override { return inner_.page_size(); }
  Status pause() override FTD_EXCLUDES(mu_);
  Status resume() override FTD_EXCLUDES(mu_);
  // Also marks the end of an epoch: the time between two captures is what
  // the controller bounds.
  Result<std::vector<std::byte>> capture_device_state() override FTD_EXCLUDES(mu_);
  std::optional<std::vector<uint32_t>> take_dirty_log() override { return inner_.take_dirty_log(); }
  Result<DiskEpoch> take_disk_writes() override { return inner_.take_disk_writes(); }
  uint64_t disk_bytes() const override { return inner_.disk_bytes(); }
  double start_ms() const override { return inner_.start_ms(); }

  // After each checkpoint of the loop: feeds the epoch just captured to the
  // controller and logs throttle.start / throttle.stop with the evidence.
  void after_checkpoint(uint64_t lag_epochs, double lag_ms) FTD_EXCLUDES(mu_);

  // The duty cycle thread (the pipeline's loop start/stop). stop() resumes
  // a guest the throttle holds stopped and forgets the duty cycle.
  void start() FTD_EXCLUDES(mu_);
  void stop() FTD_EXCLUDES(mu_);

  ThrottleStats stats() const FTD_EXCLUDES(mu_);

 private:
  using Clock = std::chrono::steady_clock;
  void duty_loop() FTD_EXCLUDES(mu_);
  // Lets a guest the throttle stopped run again.
  void release() FTD_REQUIRES(mu_);

  GuestEngine& inner_;
  const ThrottleConfig config_;

  mutable Mutex mu_;  // every pause/resume of inner_ happens under it
  CondVar cv_;
  ThrottleController controller_ FTD_GUARDED_BY(mu_);
  bool running_ FTD_GUARDED_BY(mu_) = false;           // the duty cycle thread should run
  bool held_by_pipeline_ FTD_GUARDED_BY(mu_) = false;  // a capture has the guest paused
  bool held_by_throttle_ FTD_GUARDED_BY(mu_) = false;  // the throttle stopped the guest
  Clock::time_point throttle_stop_since_ FTD_GUARDED_BY(mu_);
  std::chrono::microseconds stopped_total_ FTD_GUARDED_BY(mu_){0};
  std::optional<Clock::time_point> last_capture_ FTD_GUARDED_BY(mu_);
  std::chrono::microseconds last_epoch_ FTD_GUARDED_BY(mu_){0};
  bool epoch_fresh_ FTD_GUARDED_BY(mu_) = false;  // last_epoch_ not yet fed to the controller
  uint64_t starts_ FTD_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace ftd
