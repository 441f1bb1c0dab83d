// The secondary's copy of a protected VM: guest RAM in a memory-mapped file
// (tmpfs by default, so a standby QEMU can map the very same pages) plus the
// device state of the last applied epoch.
//
// Atomic apply: a checkpoint is verified and fully decoded into staging memory
// before the replica is touched; any error leaves the replica at its previous
// epoch. The only window that can tear the image is the copy itself; it is
// bracketed in the meta file ("applying N"), and a store that opens in that
// state reports epoch 0 so the primary re-sends everything.
//
// Not thread-safe: its owner (SecondaryVm) serialises apply()/reset() with
// every reader of epoch(), memory() and device_state().
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/codec.h"
#include "common/file_lock.h"
#include "common/mapped_region.h"
#include "common/result.h"

namespace ftd {

struct ApplyStats {
  uint64_t epoch = 0;
  uint32_t pages = 0;
  uint64_t decode_us = 0;  // verify + decompress + resolve deltas
  uint64_t apply_us = 0;   // copy into the replica + meta update
};

class ReplicaStore {
 public:
  // Opens or creates the replica of `vm_name` under `dir`, locked for this
  // process's life (<dir>/<vm>.lock): a second daemon pointed at the same
  // replica fails here, naming the holder's pid, instead of both writing it.
  static Result<ReplicaStore> open(const std::string& dir, const std::string& vm_name,
                                   uint64_t memory_bytes, uint32_t page_size);

  ReplicaStore(ReplicaStore&&) = default;
  ReplicaStore& operator=(ReplicaStore&&) = default;

  // Last consistent epoch (0 = nothing consistent yet).
  uint64_t epoch() const { return epoch_; }
  // True while initial-sync chunks are arriving and no full checkpoint followed.
  bool syncing() const { return syncing_; }
  std::span<const std::byte> memory() const { return ram_.bytes(); }
  const std::vector<std::byte>& device_state() const { return device_state_; }
  const std::string& ram_path() const { return ram_path_; }
  uint64_t memory_bytes() const { return ram_.size(); }
  uint32_t page_size() const { return page_size_; }

  // Verifies and applies one encoded checkpoint; on error nothing changed.
  Result<ApplyStats> apply(std::span<const std::byte> encoded);

  // Forgets everything (epoch 0): the next checkpoint must be a full one.
  Status reset();

  // Failover: a guest is about to run on this image, which from then on is
  // nobody's replica. Recorded in the meta so that a daemon reopening the
  // directory (e.g. the host returning as secondary) never takes the image
  // for epoch `epoch` of a replica: it opens at epoch 0.
  Status mark_running(uint64_t epoch);

 private:
  ReplicaStore() = default;
  Status write_meta(const std::string& state, uint64_t epoch);

  std::optional<FileLock>
      lock_;  // first member initialised by open(): held before any file is touched
  std::string dir_, ram_path_, meta_path_, devstate_path_;
  uint32_t page_size_ = 4096;
  MappedRegion ram_;
  uint64_t epoch_ = 0;
  bool syncing_ = false;
  std::vector<std::byte> device_state_;
};

}  // namespace ftd
