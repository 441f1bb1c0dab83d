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
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "checkpoint/codec.h"
#include "checkpoint/guest_engine.h"
#include "checkpoint/page_scanner.h"
#include "checkpoint/pipeline_stats.h"
#include "checkpoint/transport.h"
#include "common/mapped_region.h"

namespace ftd {

struct PipelineConfig {
  std::chrono::milliseconds epoch_interval{40};
  size_t max_inflight = 4;
  CompressionPolicy compression = CompressionPolicy::kAuto;
  unsigned scan_threads = 2;
  size_t sync_chunk_pages = 16384;  // 64 MiB of 4 KiB pages per initial-sync message
  int max_sync_rounds = 5;          // pre-copy passes after the first full copy
};

class CheckpointPipeline {
 public:
  static Result<std::unique_ptr<CheckpointPipeline>> create(GuestEngine& engine,
                                                            CheckpointTransport& transport,
                                                            PipelineConfig config);
  ~CheckpointPipeline();
  CheckpointPipeline(const CheckpointPipeline&) = delete;
  CheckpointPipeline& operator=(const CheckpointPipeline&) = delete;

  void add_output_gate(OutputGate* gate) { gates_.push_back(gate); }

  // A (re)connected secondary reports the epoch its replica is at. Decides
  // what the next checkpoint must carry: nothing extra (in step), the pages of
  // the epochs it missed, or a full initial sync.
  void on_connected(uint64_t replica_epoch);
  // The secondary applied `epoch`.
  void on_ack(uint64_t epoch, uint64_t apply_us);
  // The stream broke: unacknowledged checkpoints may be lost.
  void on_disconnected();

  // Runs the initial sync if needed, then one checkpoint; returns once it is
  // queued for shipping. The loop thread calls this; tests call it directly.
  Status step();

  // The loop: step() every epoch_interval, until stop().
  void start();
  void stop();

  PipelineStats stats() const;
  uint64_t last_captured_epoch() const { return captured_epoch_.load(); }
  uint64_t acked_epoch() const { return acked_epoch_.load(); }

 private:
  struct Captured {
    uint64_t epoch = 0;
    uint64_t base_epoch = 0;
    uint8_t flags = 0;
    bool xor_delta = true;
    std::vector<uint32_t> pages;
    std::vector<std::byte> contents;
    std::vector<std::byte> device_state;
    uint64_t generation = 0;
    std::optional<Error> resume_error;  // captured fine, but the guest did not resume
  };

  CheckpointPipeline(GuestEngine& engine, CheckpointTransport& transport, PipelineConfig config,
                     MappedRegion shadow);
  Status initial_sync();
  Status queue_sync_pages(std::span<const uint32_t> pages, uint64_t generation, const char* phase);
  Result<std::vector<uint32_t>> dirty_since_last_look();
  Result<Captured> capture();
  void ship_loop();
  Status ship(Captured& c);
  void copy_pages(std::span<const uint32_t> pages, std::vector<std::byte>& out) const;
  bool wait_for_room();

  GuestEngine& engine_;
  CheckpointTransport& transport_;
  const PipelineConfig config_;
  const size_t page_size_;
  const size_t page_count_;
  std::vector<OutputGate*> gates_;
  PageScanner scanner_;
  MappedRegion shadow_;
  ByteBuffer ship_base_;  // shipper thread only: base pages for XOR deltas  // RAM as the secondary
                          // has it once everything queued is applied

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Captured> ship_queue_;
  // Pages of each captured-but-unacknowledged epoch, to catch up a secondary
  // that reconnects a few epochs behind.
  std::map<uint64_t, std::vector<uint32_t>> unacked_pages_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> unacked_since_;
  bool need_full_sync_ = true;
  std::optional<uint64_t> catch_up_from_;              // replica epoch to rebuild from
  uint64_t replica_base_epoch_ = 0;                    // base for the next capture
  std::vector<std::vector<std::byte>> spare_buffers_;  // shipped page copies, for reuse
  std::vector<uint32_t> carry_over_;                   // dirty pages of a capture that failed
  uint64_t generation_ = 0;                            // bumps on every (re)connect
  bool connected_ = false;
  bool has_dirty_log_ = false;  // engine keeps a dirty log (else: scan)
  bool stopping_ = false;       // destruction: ends the ship thread too
  bool loop_stopping_ = false;  // stop(): ends only the timer loop

  std::atomic<uint64_t> captured_epoch_{0};
  std::atomic<uint64_t> acked_epoch_{0};
  StatsRecorder stats_;

  std::thread loop_thread_;
  std::thread ship_thread_;
};

}  // namespace ftd
