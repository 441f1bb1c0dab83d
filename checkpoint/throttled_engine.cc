#include "checkpoint/throttled_engine.h"

#include <spdlog/spdlog.h>

namespace ftd {

ThrottledEngine::ThrottledEngine(GuestEngine& inner, ThrottleConfig config)
    : inner_(inner), config_(config), controller_(config) {}

ThrottledEngine::~ThrottledEngine() { stop(); }

Status ThrottledEngine::pause() {
  MutexLock lock(mu_);
  // Already stopped by the throttle: the capture takes the stop over (the
  // throttle will not resume it), no second stop needed.
  if (held_by_throttle_) {
    stopped_total_ +=
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - throttle_stop_since_);
    held_by_throttle_ = false;
  } else {
    FTD_TRY(inner_.pause());
  }
  held_by_pipeline_ = true;
  return ok();
}

Status ThrottledEngine::resume() {
  MutexLock lock(mu_);
  held_by_pipeline_ = false;
  return inner_.resume();
}

Result<std::vector<std::byte>> ThrottledEngine::capture_device_state() {
  auto state = inner_.capture_device_state();
  if (!state) return state;
  MutexLock lock(mu_);
  const auto now = Clock::now();
  if (last_capture_) {
    last_epoch_ = std::chrono::duration_cast<std::chrono::microseconds>(now - *last_capture_);
    epoch_fresh_ = true;
  }
  last_capture_ = now;
  return state;
}

void ThrottledEngine::after_checkpoint(uint64_t lag_epochs, double lag_ms) {
  MutexLock lock(mu_);
  if (!epoch_fresh_ || !running_) return;
  epoch_fresh_ = false;
  const ThrottleChange change = controller_.on_epoch(last_epoch_);
  if (change == ThrottleChange::kNone) return;
  if (change == ThrottleChange::kStarted) ++starts_;
  // The evidence: the epoch that crossed the bound (or came back under half
  // of it), how far the secondary is behind, and the resulting duty cycle.
  spdlog::warn(
      "throttle.{} epoch_ms={:.1f} max_epoch_ms={} lag_epochs={} lag_ms={:.0f} duty={:.2f} "
      "window_ms={} guest_stopped_s={:.2f}",
      to_string(change), last_epoch_.count() / 1e3, config_.max_epoch.count(), lag_epochs, lag_ms,
      controller_.duty(), config_.window.count(), stopped_total_.count() / 1e6);
  cv_.notify_all();
}

void ThrottledEngine::start() {
  MutexLock lock(mu_);
  if (!config_.enabled || running_) return;
  running_ = true;
  last_capture_.reset();  // an epoch spanning a stopped loop says nothing
  epoch_fresh_ = false;
  lock.unlock();
  thread_ = std::thread([this] { duty_loop(); });
}

void ThrottledEngine::stop() {
  {
    MutexLock lock(mu_);
    if (!running_) return;
    running_ = false;
  }
  cv_.notify_all();
  thread_.join();
  MutexLock lock(mu_);
  release();
  if (controller_.active())
    spdlog::info("throttle.stop reason=\"checkpoint loop stopped\" duty={:.2f}",
                 controller_.duty());
  controller_ = ThrottleController(config_);
}

void ThrottledEngine::release() {
  if (!held_by_throttle_) return;
  held_by_throttle_ = false;
  stopped_total_ +=
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - throttle_stop_since_);
  if (auto st = inner_.resume(); !st)
    spdlog::error("throttle.resume_failed error=\"{}\"", st.error().to_string());
}

void ThrottledEngine::duty_loop() {
  MutexLock lock(mu_);
  while (running_) {
    const double duty = controller_.duty();
    if (duty >= 1.0) {
      cv_.wait(mu_);  // until the controller engages, or stop()
      continue;
    }
    const auto window = std::chrono::duration<double, std::micro>(config_.window);
    const auto run = std::chrono::duration_cast<Clock::duration>(window * duty);
    const auto stopped = std::chrono::duration_cast<Clock::duration>(window * (1.0 - duty));
    // Run slice: the guest is left alone (a capture may pause and resume it).
    const auto run_until = Clock::now() + run;
    while (running_ && Clock::now() < run_until) cv_.wait_until(mu_, run_until);
    if (!running_) break;
    if (!held_by_pipeline_) {
      if (auto st = inner_.pause(); st) {
        held_by_throttle_ = true;
        throttle_stop_since_ = Clock::now();
      } else {
        spdlog::error("throttle.pause_failed error=\"{}\"", st.error().to_string());
      }
    }
    // Stop slice. A capture meanwhile takes the stop over (pause() above).
    const auto until = Clock::now() + stopped;
    while (running_ && Clock::now() < until) cv_.wait_until(mu_, until);
    release();
  }
  release();
}

ThrottleStats ThrottledEngine::stats() const {
  MutexLock lock(mu_);
  auto stopped = stopped_total_;
  if (held_by_throttle_)
    stopped +=
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - throttle_stop_since_);
  return {.enabled = config_.enabled,
          .active = controller_.active(),
          .duty = controller_.duty(),
          .max_epoch_ms = static_cast<uint64_t>(config_.max_epoch.count()),
          .last_epoch_ms = static_cast<uint64_t>(last_epoch_.count() / 1000),
          .starts = starts_,
          .stopped_s = stopped.count() / 1e6};
}

}  // namespace ftd
