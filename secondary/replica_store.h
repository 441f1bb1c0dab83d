// The secondary's copy of a protected VM: guest RAM in a memory-mapped file
// (tmpfs by default, so a standby QEMU can map the very same pages) plus the
// device state of the last applied epoch.
//
// Atomic apply: a checkpoint is verified and fully decoded into staging memory
// before the replica is touched; any error leaves the replica at its previous
// epoch.
//
// Crash-safe apply: the pages a change overwrites are first saved in an undo
// log (<dir>/<vm>.undo, see undo_log.h) and the change is bracketed in the
// meta file (replica_meta.h). A store that opens after its process died
// mid-change rolls back to the previous epoch, or forward to the new one when
// the copy provably finished; it reports epoch 0 only if nothing was ever
// committed. Threat model: process death with the replica on tmpfs.
//
// Double-buffered resync: sync chunks arriving while a consistent epoch N is
// held save each page the first time they overwrite it, so epoch() stays N
// (what failover activates, after roll_back_resync()) until the first
// checkpoint after the sync commits.
//
// Not thread-safe: its owner (SecondaryVm) serialises apply()/reset() with
// every reader of epoch(), memory() and device_state().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/codec.h"
#include "common/file_lock.h"
#include "common/mapped_region.h"
#include "common/result.h"
#include "secondary/disk_undo_log.h"
#include "secondary/replica_disk.h"
#include "secondary/replica_meta.h"
#include "secondary/undo_log.h"

namespace ftd {

struct ApplyStats {
  uint64_t epoch = 0;  // the epoch to acknowledge; 0 for a sync chunk (nothing consistent new)
  uint32_t pages = 0;
  bool sync_chunk = false;
  uint32_t pages_written = 0;  // a resync skips pages whose contents did not change
  uint64_t decode_us = 0;      // verify + decompress + resolve deltas
  uint64_t apply_us = 0;       // undo log + copy into the replica + meta updates
  uint32_t disk_writes = 0;    // applied to the replica disk
  uint64_t disk_bytes = 0;     // of those writes (data and zeroes)
};

// The points inside apply() where a process may die; tests kill one there.
// kDiskWriting runs before each disk write (after the pages are copied).
enum class ApplyStep {
  kStaged,
  kUndoSaved,
  kMarked,
  kCopying,
  kCopied,
  kDeviceState,
  kCommitted,
  kDiskWriting
};

class ReplicaStore {
 public:
  // Opens or creates the replica of `vm_name` under `dir`, locked for this
  // process's life (<dir>/<vm>.lock): a second daemon pointed at the same
  // replica fails here, naming the holder's pid, instead of both writing it.
  // A change interrupted by the death of the previous owner is undone (or
  // completed) here; recovery() says which.
  // `disk_bytes` > 0: the VM has a replicated disk, kept in <dir>/<vm>.disk
  // (a multiple of 512 bytes).
  static Result<ReplicaStore> open(const std::string& dir, const std::string& vm_name,
                                   uint64_t memory_bytes, uint32_t page_size,
                                   uint64_t disk_bytes = 0);

  ReplicaStore(ReplicaStore&&) = default;
  // Decompress and resolve checkpoints on `threads` cores (1: the caller's alone).
  void set_decode_threads(unsigned threads) {
    decode_workers_ = threads > 1 ? std::make_unique<RangeWorkers>(threads) : nullptr;
  }
  ReplicaStore& operator=(ReplicaStore&&) = default;

  // Last consistent epoch (0 = nothing consistent yet): what failover activates.
  uint64_t epoch() const { return epoch_; }
  // The epoch a primary may send deltas against (Welcome.applied_epoch): 0
  // while sync chunks are overwriting the RAM, and after an undone resync.
  uint64_t resume_epoch() const { return syncing_ || kept_ ? 0 : epoch_; }
  // True while initial-sync chunks are arriving and no full checkpoint followed.
  bool syncing() const { return syncing_; }
  // Sync chunks are overwriting a consistent epoch that the undo log keeps.
  bool resyncing() const { return undo_.active() && undo_.kind() == UndoKind::kResync; }
  uint64_t undo_bytes() const { return undo_.bytes(); }
  // What open() found and did, for the log ("clean", "rolled back ...").
  const std::string& recovery() const { return recovery_; }
  std::span<const std::byte> memory() const { return ram_.bytes(); }
  const std::vector<std::byte>& device_state() const { return device_state_; }
  const std::string& ram_path() const { return ram_path_; }
  uint64_t memory_bytes() const { return ram_.size(); }
  uint32_t page_size() const { return page_size_; }

  // The replica disk (disk_bytes() 0: none). It always holds epoch()'s disk.
  uint64_t disk_bytes() const { return disk_.size(); }
  const std::string& disk_path() const { return disk_.path(); }
  DiskReplicaState disk_state() const { return disk_state_; }
  uint64_t disk_bytes_applied() const { return disk_bytes_applied_; }  // since open
  // Why the last checkpoint's disk writes could not be applied (ENOSPC,
  // EIO); empty once one commits again.
  const std::string& disk_error() const { return disk_error_; }
  // The replica may run with its disk: no disk, or a complete copy and no
  // failed apply since.
  bool disk_consistent() const {
    return disk_.size() == 0 || (disk_state_.complete && disk_error_.empty());
  }

  // Verifies and applies one encoded checkpoint; on error nothing changed.
  Result<ApplyStats> apply(std::span<const std::byte> encoded);

  // Puts a resync in progress back to epoch(): afterwards RAM and device
  // state are that epoch again. Failover calls this before activating.
  Status roll_back_resync();

  // Forgets everything (epoch 0): the next checkpoint must be a full one.
  Status reset();

  // Failover: a guest is about to run on this image, which from then on is
  // nobody's replica. Recorded in the meta so that a daemon reopening the
  // directory (e.g. the host returning as secondary) never takes the image
  // for epoch `epoch` of a replica: it opens at epoch 0.
  Status mark_running(uint64_t epoch);

  // Planned migration: the image takes a guest's final RAM, which is no
  // epoch of any replica (meta `running`: it reopens at epoch 0). The next
  // primary's differential sync then sends only the pages that differ.
  Status seed(std::span<const std::byte> ram);

  // Test seam: `hook` runs at each step of apply() (kCopying before every page).
  void set_step_hook(std::function<void(ApplyStep)> hook) { step_hook_ = std::move(hook); }

 private:
  ReplicaStore() = default;
  Status recover();
  Result<ApplyStats> apply_sync_chunk(const DecodedCheckpoint& d, ApplyStats stats);
  Result<ApplyStats> apply_checkpoint(const CheckpointHeader& h, DecodedCheckpoint& d,
                                      ApplyStats stats);
  void copy_pages(const DecodedCheckpoint& d, std::span<const uint32_t> which);
  // A change failed after the RAM was touched: undo it from the log.
  std::unexpected<Error> undo_failed_change(const Error& cause);
  // Makes the meta say what memory says (clean/kept epoch_), then drops the
  // undo log and any staged device state. Sets meta_dirty_ when it cannot.
  Status settle();
  Status write_meta(ReplicaMeta::State state, uint64_t epoch, uint64_t base_epoch = 0,
                    std::optional<DiskReplicaState> disk = std::nullopt);
  // Checks a decoded checkpoint's disk against the replica's before anything changes.
  Status check_disk(const CheckpointHeader& h, const DiskEpoch& disk) const;
  // Holes over the whole image: a replica disk whose contents no epoch
  // vouches for starts again from zeros, like a fresh one.
  Status wipe_disk();
  Result<uint64_t> write_disk(const DiskEpoch& disk);
  void step(ApplyStep s) {
    if (step_hook_) step_hook_(s);
  }

  std::optional<FileLock>
      lock_;  // first member initialised by open(): held before any file is touched
  std::string dir_, ram_path_, meta_path_, devstate_path_, staged_path_;
  uint32_t page_size_ = 4096;
  MappedRegion ram_;
  UndoLog undo_;
  ReplicaDisk disk_;
  DiskUndoLog disk_undo_;
  DiskReplicaState disk_state_;
  uint64_t disk_bytes_applied_ = 0;
  std::string disk_error_;
  uint64_t epoch_ = 0;
  bool syncing_ = false;
  bool kept_ = false;        // epoch_ survived an undone resync: not a delta base
  bool meta_dirty_ = false;  // the meta file lags memory (a write failed): settle() first
  std::string recovery_;
  std::vector<std::byte> device_state_;
  std::vector<uint32_t> changed_;  // reused: pages a sync chunk really changes
  // Reused by every apply: a fresh multi-MiB decode buffer per checkpoint
  // costs a page fault per 4 KiB (perf: the secondary's top cost at 50k pages/s).
  DecodedCheckpoint decoded_;
  // Decodes on this many cores (set_decode_threads); null: the applying thread alone.
  std::unique_ptr<RangeWorkers> decode_workers_;
  std::function<void(ApplyStep)> step_hook_;
};

}  // namespace ftd
