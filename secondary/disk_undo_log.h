// Undo log of the replica disk (<dir>/<vm>.disk.undo): before a checkpoint's
// disk writes touch the image, the old contents of every range they cover are
// appended here, so a replica found half-applied can be put back exactly to
// the epoch the log names, disk and RAM together (ReplicaStore::recover).
// Same threat model and torn-tail rule as the RAM's undo_log.h: a record is
// complete before its range is written, records of an older log never verify
// (generation in every checksum), and clear() invalidates the header so a
// stale log is never played back.
//
// The header also keeps the disk's replication state at the base epoch (last
// applied write seq, complete copy or not): rolling back restores it too.
// A range whose old contents are all zeros is saved without its bytes and
// restored as a hole, which needs no free space on a full filesystem.
// Format: docs/formats.md. Not thread-safe: owned by ReplicaStore.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/disk_write.h"
#include "secondary/replica_disk.h"

namespace ftd {

// The disk's replication state at one epoch.
struct DiskReplicaState {
  uint64_t last_seq = 0;  // of the last write applied
  bool complete = false;  // the primary's first full copy had finished
};

class DiskUndoLog {
 public:
  static Result<DiskUndoLog> open(const std::string& path);

  DiskUndoLog() = default;
  DiskUndoLog(DiskUndoLog&&) = default;
  DiskUndoLog& operator=(DiskUndoLog&&) = default;

  // Starts the log of the change from `base_epoch` (disk state `base`) to
  // `epoch`, dropping any previous one.
  Status begin(uint64_t base_epoch, uint64_t epoch, DiskReplicaState base);
  // Appends the current contents of every range `writes` cover. On error the
  // log ends before the failed record (nothing of the image changed yet).
  Status save(std::span<const DiskWrite> writes, const ReplicaDisk& disk);
  // Invalidates the log: the change it guarded is committed or undone.
  Status clear();
  uint64_t bytes() const { return size_; }

  struct Replayed {
    uint64_t base_epoch = 0;
    uint64_t epoch = 0;
    DiskReplicaState base;
    uint64_t ranges = 0;
  };
  // Restores every saved range in `disk`. nullopt: no valid log (missing,
  // cleared, foreign); the image is then untouched.
  Result<std::optional<Replayed>> roll_back(ReplicaDisk& disk) const;

 private:
  DiskUndoLog(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  UniqueFd fd_;
  std::string path_;
  uint64_t size_ = 0;        // end of the current log; 0 = none
  uint64_t generation_ = 0;  // of the current log
  std::vector<std::byte> buffer_;
};

}  // namespace ftd
