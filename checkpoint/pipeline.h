// The primary's checkpoint loop: capture -> resume -> ship -> commit.
//
// Each epoch the guest is paused only to find its dirty pages, copy them and
// its device state into local memory; it then runs on while a shipper thread
// delta-encodes the copy against what the secondary already holds (a shadow
// of shipped RAM), compresses and sends it. Output gates release what the
// guest produced in epoch N once the secondary acknowledges N.
//
// Memory is bounded: at most `max_inflight` checkpoints are captured but not
// acknowledged. When the secondary falls behind, the next capture waits, so
// epochs get longer (back-pressure) instead of queues growing.
//
// Threads: the loop thread (or a test calling step()) captures; the shipper
// thread encodes and sends; the transport's reader thread calls on_connected
// / on_ack / on_disconnected; anyone may call stats(). State they share is
// guarded by mu_; mu_ is never held across a guest pause, an encode or a send.
// The engine, the transport and every output gate must outlive the pipeline.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/codec.h"
#include "checkpoint/epoch_policy.h"
#include "checkpoint/guest_engine.h"
#include "checkpoint/page_digests.h"
#include "checkpoint/page_scanner.h"
#include "checkpoint/pipeline_stats.h"
#include "checkpoint/throttled_engine.h"
#include "checkpoint/transport.h"
#include "common/mapped_region.h"
#include "common/mutex.h"
#include "common/range_workers.h"

namespace ftd {

struct PipelineConfig {
  EpochPolicy epochs = EpochPolicy::fixed(std::chrono::milliseconds(40));
  size_t max_inflight = 4;
  CompressionPolicy compression = CompressionPolicy::kAuto;
  unsigned scan_threads = 2;
  // Threads that delta-encode and compress each checkpoint (segmented lz4, codec.h).
  unsigned encode_threads = 2;
  size_t sync_chunk_pages = 16384;  // 64 MiB of 4 KiB pages per initial-sync message
  int max_sync_rounds = 5;          // pre-copy passes after the first full copy
  ThrottleConfig throttle;          // slow the guest under sustained overload (throttle.h)
  // A disk that lost protection (mirror failed, writes lost) gets a new full
  // copy at the first checkpoint this long after the loss or the last retry.
  std::chrono::milliseconds disk_retry_interval{5000};
};

class CheckpointPipeline {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<std::unique_ptr<CheckpointPipeline>> create(GuestEngine& engine,
                                                            CheckpointTransport& transport,
                                                            PipelineConfig config);
  ~CheckpointPipeline();
  CheckpointPipeline(const CheckpointPipeline&) = delete;
  CheckpointPipeline& operator=(const CheckpointPipeline&) = delete;

  // Before start()/step() only: the gate list is read without a lock.
  void add_output_gate(OutputGate* gate);

  // A (re)connected secondary reports the epoch its replica is at. Decides
  // what the next checkpoint must carry: nothing extra (in step), the pages of
  // the epochs it missed, or a full initial sync.
  // `replica_pages`: digests of the replica's pages as they are now (empty:
  // unknown). A full sync then sends only the pages that differ.
  void on_connected(uint64_t replica_epoch, std::vector<PageDigest> replica_pages = {});
  // The secondary applied `epoch`.
  void on_ack(uint64_t epoch, uint64_t apply_us);
  // The stream broke: unacknowledged checkpoints may be lost.
  void on_disconnected();

  // Runs the initial sync if needed, then one checkpoint; returns once it is
  // queued for shipping. The loop thread calls this; tests call it directly.
  Status step();

  // Planned migration, with the loop stopped: one more checkpoint with the
  // guest left paused, shipped and acknowledged within `timeout`. Returns its
  // epoch; on error the guest may be paused (resume it to carry on).
  Result<uint64_t> final_checkpoint(std::chrono::milliseconds timeout);
  // Let a guest paused by final_checkpoint() run again (handover refused).
  Status resume_after_final();

  // The loop: step() whenever the epoch policy says so, until stop().
  void start();
  void stop();

  PipelineStats stats() const;
  // Per-checkpoint samples since `since`: what `ftctl plan` models from.
  PlanSamples plan_samples_since(std::chrono::steady_clock::time_point since) const {
    return stats_.samples_since(since);
  }
  const PipelineConfig& config() const { return config_; }
  uint64_t last_captured_epoch() const { return captured_epoch_.load(); }
  uint64_t acked_epoch() const { return acked_epoch_.load(); }
  // The secondary acknowledged a checkpoint taken after the last initial
  // sync: its replica is a consistent state of the guest.
  bool replica_consistent() const {
    const uint64_t first = first_epoch_after_sync_.load();
    return first != 0 && acked_epoch_.load() >= first;
  }

 private:
  struct Captured {
    uint64_t epoch = 0;
    uint64_t base_epoch = 0;
    uint8_t flags = 0;
    bool xor_delta = true;
    std::vector<uint32_t> pages;
    std::vector<std::byte> contents;
    std::vector<std::byte> device_state;
    // The epoch's disk writes (plus a catch-up's missed ones); null = no disk.
    std::shared_ptr<const DiskEpoch> disk;
    uint64_t generation = 0;
    std::optional<Error> capture_error;  // nothing captured; `pages` must be carried over
    std::optional<Error> resume_error;   // captured fine, but the guest did not resume
  };
  // What a capture must add to the guest's dirty pages, decided under mu_.
  struct CapturePlan {
    uint64_t generation = 0;
    uint64_t base_epoch = 0;
    bool catch_up = false;
    std::vector<uint32_t> extra_pages;  // carried over or missed by the replica: sent absolute
    std::vector<DiskWrite> extra_disk;  // disk writes of the epochs the replica missed, in order
    std::optional<std::string> disk_error;  // the disk lost protection: never complete again
    std::vector<std::byte> buffer;          // a recycled page buffer (already faulted in)
  };

  CheckpointPipeline(GuestEngine& engine, std::unique_ptr<ThrottledEngine> throttled,
                     CheckpointTransport& transport, PipelineConfig config, MappedRegion shadow);
  Status initial_sync();
  // The pages of a full sync: all of them, or with the replica's digests
  // those that differ (equal ones go straight into the shadow).
  std::vector<uint32_t> pages_to_sync(std::vector<PageDigest> replica_pages);
  Status queue_sync_pages(std::span<const uint32_t> pages, uint64_t generation, const char* phase);
  Result<std::vector<uint32_t>> dirty_since_last_look();
  Result<Captured> capture(bool keep_paused = false);
  CapturePlan plan_capture() FTD_EXCLUDES(mu_);
  Captured capture_paused(CapturePlan plan, PauseBreakdown& timing, bool keep_paused);
  // Queues a capture for shipping (the step after capture()).
  void queue_captured(Captured c) FTD_EXCLUDES(mu_);
  void finish_capture(const Captured& c) FTD_EXCLUDES(mu_);
  void ship_loop();
  Status ship(Captured& c);
  void copy_pages(std::span<const uint32_t> pages, std::vector<std::byte>& out) const;
  // A page buffer the shipper is done with (already faulted in), or an empty one.
  std::vector<std::byte> take_spare_buffer() FTD_EXCLUDES(mu_);
  std::vector<std::byte> take_spare_buffer_locked() FTD_REQUIRES(mu_);
  // Called while paused at the start of a full sync (engine_.restart_disk_copy).
  void restart_disk_copy();
  // Logs `why` and marks the disk not protected (sticky until a new copy).
  void mark_disk_unprotected(const std::string& why);
  // Called while paused: a new full disk copy if the disk lost protection
  // and disk_retry_interval has passed.
  void retry_disk_copy_if_due() FTD_EXCLUDES(mu_);
  // Called while paused: the engine's disk writes, after `extra` (catch-up).
  std::shared_ptr<const DiskEpoch> take_disk_writes(std::vector<DiskWrite> extra,
                                                    const std::optional<std::string>& disk_error);
  bool wait_for_room() FTD_EXCLUDES(mu_);
  // A gate held output (its producer's thread): wakes the loop on the first
  // item since the last capture.
  void on_output() FTD_EXCLUDES(mu_);
  EpochSignals epoch_signals(Clock::time_point now, Clock::time_point last_checkpoint) const;
  // The loop thread: waits (without polling) until the policy triggers a
  // checkpoint or the loop stops (nullopt).
  std::optional<CheckpointTrigger> wait_for_trigger(Clock::time_point last_checkpoint,
                                                    Clock::time_point not_before) FTD_EXCLUDES(mu_);
  // Waits until everything queued has been sent (or the stream broke).
  bool wait_until_shipped() FTD_EXCLUDES(mu_);
  std::vector<uint64_t> retained_epochs() const FTD_REQUIRES(mu_);
  double lag_ms() const FTD_REQUIRES(mu_);

  // ---- constant after construction
  // With the throttle on, engine_ is this decorator around the caller's engine.
  const std::unique_ptr<ThrottledEngine> throttled_;
  GuestEngine& engine_;
  CheckpointTransport& transport_;
  const PipelineConfig config_;
  const size_t page_size_;
  const size_t page_count_;
  std::vector<OutputGate*> gates_;  // filled before the loop starts

  // ---- loop thread only (the capturing side)
  PageScanner scanner_;
  bool has_dirty_log_ = false;  // engine keeps a dirty log (else: scan)
  uint64_t disk_size_ = 0;      // last disk size the engine reported

  // ---- shipper thread only
  MappedRegion shadow_;           // RAM as the secondary has it once everything queued is applied
  EncodeScratch encode_scratch_;  // reused by every encode (already faulted in)
  ByteBuffer encoded_;            // the checkpoint being sent, reused likewise
  RangeWorkers encode_workers_;   // config_.encode_threads ways

  // ---- shared, guarded by mu_
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Captured> ship_queue_ FTD_GUARDED_BY(mu_);
  // Pages of each captured-but-unacknowledged epoch, to catch up a secondary
  // that reconnects a few epochs behind.
  std::map<uint64_t, std::vector<uint32_t>> unacked_pages_ FTD_GUARDED_BY(mu_);
  std::map<uint64_t, std::chrono::steady_clock::time_point> unacked_since_ FTD_GUARDED_BY(mu_);
  // Disk writes of the same epochs: a catch-up resends them (the replica
  // rejects a gap in the write sequence).
  std::map<uint64_t, std::shared_ptr<const DiskEpoch>> unacked_disk_ FTD_GUARDED_BY(mu_);
  // Why the disk is not protected (an engine error lost writes); sticky: the
  // replica disk cannot be trusted again without a new full copy of the disk.
  std::optional<std::string> disk_error_ FTD_GUARDED_BY(mu_);
  Clock::time_point next_disk_retry_ FTD_GUARDED_BY(mu_);
  DiskProgress disk_progress_ FTD_GUARDED_BY(mu_);
  bool need_full_sync_ FTD_GUARDED_BY(mu_) = true;
  std::optional<uint64_t> catch_up_from_ FTD_GUARDED_BY(mu_);  // replica epoch to rebuild from
  std::vector<PageDigest> replica_pages_ FTD_GUARDED_BY(mu_);  // for the next full sync
  uint64_t replica_base_epoch_ FTD_GUARDED_BY(mu_) = 0;        // base for the next capture
  std::vector<std::vector<std::byte>> spare_buffers_ FTD_GUARDED_BY(mu_);  // for reuse
  std::vector<uint32_t> carry_over_ FTD_GUARDED_BY(mu_);  // dirty pages of a failed capture
  uint64_t generation_ FTD_GUARDED_BY(mu_) = 0;           // bumps on every (re)connect
  bool connected_ FTD_GUARDED_BY(mu_) = false;
  bool stopping_ FTD_GUARDED_BY(mu_) = false;        // destruction: ends the ship thread too
  bool loop_stopping_ FTD_GUARDED_BY(mu_) = false;   // stop(): ends only the timer loop
  bool shipping_ FTD_GUARDED_BY(mu_) = false;        // an item is being encoded and sent
  bool sync_just_done_ FTD_GUARDED_BY(mu_) = false;  // the next capture is the first after it

  // ---- lock-free reads for status
  std::atomic<uint64_t> captured_epoch_{0};
  std::atomic<uint64_t> acked_epoch_{0};
  std::atomic<uint64_t> first_epoch_after_sync_{0};  // 0: no sync completed (or a new one due)
  // Output held since the last capture (reset while the guest is paused):
  // atomics, so neither a producer nor the pause waits for mu_ to update them.
  std::atomic<uint64_t> output_waiting_{0};
  std::atomic<int64_t> output_waiting_since_ns_{0};  // steady clock; valid when output_waiting_ > 0
  StatsRecorder stats_;                              // thread-safe on its own

  std::thread loop_thread_;
  std::thread ship_thread_;  // last: starts once everything above exists
};

}  // namespace ftd
