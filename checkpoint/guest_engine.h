// Where checkpoints come from. An engine owns (or attaches to) one guest and
// can pause it, expose its RAM, serialize its device state, and resume it.
// Implementations: SyntheticEngine (checkpoint/), QmpEngine (qemu/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "disk/disk_write.h"

namespace ftd {

class GuestEngine {
 public:
  virtual ~GuestEngine() = default;

  virtual std::string name() const = 0;  // "synthetic", "qmp"
  // Guest RAM as mapped into this process. Stable for the engine's lifetime.
  virtual std::span<const std::byte> memory() const = 0;
  virtual size_t page_size() const { return 4096; }

  virtual Status pause() = 0;
  virtual Status resume() = 0;
  // Called while paused: the device state (everything but RAM) as an opaque blob.
  virtual Result<std::vector<std::byte>> capture_device_state() = 0;
  // Called while paused. Engines that know exactly which pages were written
  // since the previous call (a KVM-style dirty log) return them, sorted;
  // the others return nullopt and the pipeline finds dirty pages by scanning.
  virtual std::optional<std::vector<uint32_t>> take_dirty_log() { return std::nullopt; }
  // Called while paused: the disk writes since the previous call (every write
  // the guest completed before the pause, in order). Engines without a
  // replicated disk return an empty DiskEpoch (disk_size 0).
  virtual Result<DiskEpoch> take_disk_writes() { return DiskEpoch{}; }
  // Size of the replicated disk in bytes (0: none), announced in the Hello so
  // that a secondary with another replica disk size refuses the stream.
  virtual uint64_t disk_bytes() const { return 0; }
  // ms its VM process took to start (launch -> ready), 0 when unknown: what
  // a standby of this VM would take (ftctl plan's migration turnaround).
  virtual double start_ms() const { return 0; }
  // Called while paused, at the start of a full sync: the replica lost the
  // disk writes of the epochs it never acknowledged. An engine that can
  // starts its disk copy over (its epochs are incomplete until the copy
  // finished), so the replica disk becomes consistent again; the others
  // keep going, and the replica refuses the gap (never activatable with an
  // inconsistent disk). True when a new copy started (or one that was never
  // shipped goes on); an error: the disk is not protected any more.
  virtual Result<bool> restart_disk_copy() { return false; }
};

}  // namespace ftd
