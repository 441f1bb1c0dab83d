// A workload, not a VM: an in-process memory region with a seeded writer
// thread and numbered output messages. Used for benchmarks at sizes and rates
// QEMU under TCG cannot reach, and as an exact oracle in tests.
//
// Determinism: write number i (0-based) is a pure function of (config, i) —
// page, offset, length and bytes — so replay(config, K) rebuilds the exact
// memory image after K writes, starting from zeros like a fresh anonymous
// mapping (and a fresh replica). Pacing only decides *when* writes happen.
// Message m (0-based) is emitted right after write (m + 1) * writes_per_message
// - 1, so K writes also fix the number of messages: K / writes_per_message.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "common/mapped_region.h"
#include "common/result.h"
#include "synthetic/synthetic_disk.h"

namespace ftd {

class SyntheticEngine : public GuestEngine {
 public:
  struct Config {
    uint64_t memory_bytes = 64ull << 20;  // multiple of page_size
    size_t page_size = 4096;              // power of two, >= 8
    // Page writes per second (each write lands in one page); 0 = as fast as
    // the writer thread can go. Named for what a VM's dirty rate means, but
    // with locality many writes hit the same pages.
    uint64_t dirty_pages_per_sec = 1000;
    // Fraction of writes landing in the hot set (10% of the pages, contiguous,
    // seed-placed); the rest are uniform over all pages. 0.0..1.0.
    double locality = 0.0;
    uint64_t seed = 1;
    size_t bytes_per_write = 256;  // 1..page_size
    // 0 = no messages. Must not exceed dirty_pages_per_sec (a message follows
    // a write); needs dirty_pages_per_sec > 0.
    uint64_t messages_per_sec = 0;
    // Touch every page at start (content stays zero) so the region is real
    // RAM: untouched anonymous pages all map the one zero page, which makes
    // scans of them unrealistically cheap in benchmarks.
    bool prefault = false;
    // 0 = no disk. Otherwise a multiple of 512: every 32nd RAM write also
    // writes the disk (synthetic_disk.h), which take_disk_writes() hands over.
    uint64_t disk_bytes = 0;
  };

  // Called from the writer thread, in order, with 0, 1, 2, ... It must not
  // call pause()/resume() (the writer would wait for itself) and should be quick:
  // it runs between writes.
  using MessageSink = std::function<void(uint64_t message_number)>;

  struct DeviceState {
    uint64_t seed = 0;
    uint64_t writes_done = 0;
    uint64_t messages_emitted = 0;
  };

  // What write number i does (exposed for tests and oracles).
  struct WriteSpec {
    uint32_t page = 0;
    size_t offset = 0;  // within the page, 8-byte aligned
    size_t length = 0;
  };

  struct PrivateTag {
    explicit PrivateTag() = default;
  };

  // Validates `config`, maps the region and starts the writer (running).
  static Result<std::unique_ptr<SyntheticEngine>> create(const Config& config,
                                                         MessageSink sink = {});
  SyntheticEngine(PrivateTag, const Config& config, MappedRegion region, MessageSink sink);
  ~SyntheticEngine() override;
  SyntheticEngine(const SyntheticEngine&) = delete;
  SyntheticEngine& operator=(const SyntheticEngine&) = delete;

  static Status validate(const Config& config);
  // 0 when the config emits no messages.
  static uint64_t writes_per_message(const Config& config);
  static uint64_t messages_after(const Config& config, uint64_t writes);
  static WriteSpec describe_write(const Config& config, uint64_t i);
  // Applies write i to `memory` (the whole region, memory_bytes long).
  static void apply_write(std::span<std::byte> memory, const Config& config, uint64_t i);
  // The memory image after the first `writes` writes, from zeros.
  static Result<MappedRegion> replay(const Config& config, uint64_t writes);

  static std::vector<std::byte> encode_device_state(const DeviceState& state);
  static Result<DeviceState> decode_device_state(std::span<const std::byte> blob);

  // GuestEngine
  std::string name() const override { return "synthetic"; }
  std::span<const std::byte> memory() const override { return {region_.data(), region_.size()}; }
  size_t page_size() const override { return config_.page_size; }
  // Stops the writer at a write boundary; returns once it is stopped and every
  // message of the writes done so far has gone to the sink. Idempotent.
  Status pause() override;
  Status resume() override;
  // kFailedPrecondition unless paused (the counters must not move under it).
  Result<std::vector<std::byte>> capture_device_state() override;
  // Pages written since the previous call (since start for the first), sorted.
  std::optional<std::vector<uint32_t>> take_dirty_log() override;
  // kFailedPrecondition unless paused; every disk write since the previous call.
  Result<DiskEpoch> take_disk_writes() override;
  uint64_t disk_bytes() const override { return config_.disk_bytes; }

  // The guest's own disk image (empty without a disk). Exact while paused.
  std::span<const std::byte> disk() const { return disk_.bytes(); }

  const Config& config() const { return config_; }
  // Exact while paused; a lower bound while running.
  uint64_t writes_done() const { return writes_done_.load(std::memory_order_acquire); }
  uint64_t messages_emitted() const { return messages_after(config_, writes_done()); }
  bool paused() const;

 private:
  void writer_loop();
  // Blocks while a pause is requested; false when the engine is stopping.
  bool park_if_paused();
  void do_write(uint64_t i);

  const Config config_;
  const uint64_t writes_per_message_;
  MappedRegion region_;
  MessageSink sink_;
  // KVM-style dirty bitmap, one bit per page, set by the writer.
  std::vector<std::atomic<uint64_t>> dirty_bits_;
  std::atomic<uint64_t> writes_done_{0};
  MappedRegion disk_;                   // the guest's disk (no mapping without one)
  std::vector<DiskWrite> disk_writes_;  // writer thread only, or while parked

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> pause_requested_{false};
  bool parked_ = false;  // writer acknowledged the pause
  std::atomic<bool> stopping_{false};
  std::thread writer_;  // last member: started once everything above exists
};

}  // namespace ftd
