// Numbers an operator (ftctl status) and the benchmarks need from the pipeline.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace ftd {

// Where one pause went (microseconds).
struct PauseBreakdown {
  uint64_t stop_us = 0;      // engine.pause()
  uint64_t dirty_us = 0;     // finding dirty pages (scan or dirty log)
  uint64_t copy_us = 0;      // copying dirty pages out
  uint64_t devstate_us = 0;  // capturing device state
  uint64_t resume_us = 0;    // engine.resume()
  uint64_t total_us = 0;     // guest not running, end to end
  uint32_t dirty_pages = 0;
  uint64_t devstate_bytes = 0;  // size of the captured device state
};

// One checkpoint as `ftctl plan` samples it (planning/): its pause, and once
// known, what shipping it cost and how long until the secondary acknowledged it.
struct ShipSample {
  uint64_t raw_bytes = 0, encoded_bytes = 0;
  uint64_t ship_us = 0;    // delta-encode + compress + send, on the shipper thread
  uint64_t encode_us = 0;  // the delta-encode + compress + shadow update part of it
};
struct PlanSamples {
  std::vector<PauseBreakdown> pauses;  // captured in the window, oldest first
  std::vector<ShipSample> ships;       // shipped in the window
  std::vector<uint64_t> commit_us;  // capture done -> ack (ship + RTT + apply), acked in the window
};

// Guest pauses bucketed by length since start (a Prometheus histogram). The
// percentiles above are over recent samples; this keeps every pause, cheaply.
struct PauseBuckets {
  static constexpr std::array<uint64_t, 13> kUpperBoundsUs = {
      100,    250,    500,     1'000,   2'500,   5'000,    10'000,
      25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000};
  std::array<uint64_t, kUpperBoundsUs.size() + 1> counts{};  // last: above every bound
  uint64_t sum_us = 0;
  uint64_t count = 0;

  void add(uint64_t us);
};

// The primary's view of its disk: what it captured and whether the replica
// can hold a consistent copy of it.
struct DiskProgress {
  uint64_t disk_size = 0;          // 0: no replicated disk
  bool complete = false;           // the last capture's disk was a full copy
  uint64_t last_seq = 0;           // of the last write captured
  uint64_t writes = 0, bytes = 0;  // captured, all time (bytes of data and zeroes)
  std::string error;               // non-empty: the disk is not protected, and why
  uint64_t copy_retries = 0;       // new full copies started after a loss of protection
};

// The overload throttle (checkpoint/throttle.h).
struct ThrottleStats {
  bool enabled = false;
  bool active = false;         // the guest's duty cycle is below 100 %
  double duty = 1.0;           // fraction of each window the guest may run
  uint64_t max_epoch_ms = 0;   // the bound it keeps epochs under
  uint64_t last_epoch_ms = 0;  // capture to capture
  uint64_t starts = 0;         // times it engaged since the daemon started
  double stopped_s = 0;        // guest time taken away by the throttle, all time
};

struct PipelineStats {
  uint64_t epoch = 0;        // last captured
  uint64_t acked_epoch = 0;  // last acknowledged
  uint64_t checkpoints = 0;  // total captured
  double checkpoints_per_sec = 0;
  PauseBreakdown last_pause;
  uint64_t pause_p50_us = 0, pause_p99_us = 0, pause_max_us = 0;
  PauseBuckets pause_buckets;
  double bytes_per_sec = 0;      // encoded bytes sent, recent window
  double compression_ratio = 0;  // raw / encoded, all time
  uint64_t bytes_sent = 0, raw_bytes = 0;
  uint64_t lag_epochs = 0;
  double lag_ms = 0;  // age of the oldest unacknowledged checkpoint
  uint64_t last_apply_us = 0;
  uint64_t backpressure_waits = 0;
  ThrottleStats throttle;
  // Which rule started each checkpoint of the loop (checkpoint/epoch_policy.h).
  uint64_t checkpoints_by_output = 0, checkpoints_by_timer = 0;
  double sync_progress = 0;  // 0..1
  bool synced = false;
  uint64_t sync_pages_sent = 0, sync_pages_skipped = 0;  // last full sync (differential)
  bool connected = false;
  DiskProgress disk;
};

// Thread-safe accumulator; rates are over a sliding window of recent events.
class StatsRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  void record_pause(const PauseBreakdown& p);
  void record_sent(uint64_t raw_bytes, uint64_t encoded_bytes, uint64_t ship_us = 0,
                   uint64_t encode_us = 0);
  // A checkpoint was acknowledged `us` after its capture finished.
  void record_commit(uint64_t us);
  void record_apply(uint64_t apply_us);
  void record_backpressure();
  void record_trigger(bool by_output);
  void set_sync_progress(double p, bool done);
  void set_sync_pages(uint64_t sent, uint64_t skipped);

  // Fills the fields this recorder owns.
  void fill(PipelineStats& s) const;
  // What happened since `since` (at most the last kPlanSamples of each kind).
  PlanSamples samples_since(Clock::time_point since) const;

 private:
  static constexpr auto kWindow = std::chrono::seconds(5);
  static constexpr size_t kPauseSamples = 2048;
  static constexpr size_t kPlanSamples = 4096;
  template <typename T>
  using Timed = std::deque<std::pair<Clock::time_point, T>>;

  mutable std::mutex mu_;
  std::deque<Clock::time_point> checkpoint_times_;
  std::deque<std::pair<Clock::time_point, uint64_t>> sends_;
  std::deque<uint64_t> pauses_;
  PauseBreakdown last_pause_;
  Timed<PauseBreakdown> plan_pauses_;
  Timed<ShipSample> plan_ships_;
  Timed<uint64_t> plan_commits_;
  PauseBuckets pause_buckets_;
  uint64_t checkpoints_ = 0, raw_ = 0, sent_ = 0, last_apply_us_ = 0, backpressure_ = 0;
  uint64_t by_output_ = 0, by_timer_ = 0;
  double sync_progress_ = 0;
  uint64_t sync_pages_sent_ = 0, sync_pages_skipped_ = 0;
  bool synced_ = false;
};

// p-th percentile (0..100) of samples; 0 for none.
uint64_t percentile(std::vector<uint64_t> samples, double p);

}  // namespace ftd
