#include "secondary/replica_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/file_util.h"

namespace ftd {
namespace {

uint64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<ReplicaStore> ReplicaStore::open(const std::string& dir, const std::string& vm_name,
                                        uint64_t memory_bytes, uint32_t page_size,
                                        uint64_t disk_bytes) {
  if (vm_name.empty() || vm_name.find('/') != std::string::npos || vm_name[0] == '.')
    return make_error(ErrorCode::kInvalidArgument, "invalid VM name '{}'", vm_name);
  if (page_size == 0 || memory_bytes == 0 || memory_bytes % page_size != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "memory size {} is not a positive multiple of page size {}", memory_bytes,
                      page_size);
  if (disk_bytes % 512 != 0)
    return make_error(ErrorCode::kInvalidArgument, "disk size {} is not a multiple of 512",
                      disk_bytes);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + dir);
  ReplicaStore s;
  FTD_ASSIGN_OR_RETURN(FileLock lock,
                       FileLock::acquire(dir + "/" + vm_name + ".lock",
                                         "replica of VM '" + vm_name + "' in " + dir));
  s.lock_.emplace(std::move(lock));
  s.dir_ = dir;
  s.page_size_ = page_size;
  s.ram_path_ = dir + "/" + vm_name + ".ram";
  s.meta_path_ = dir + "/" + vm_name + ".meta";
  s.devstate_path_ = dir + "/" + vm_name + ".devstate";
  s.staged_path_ = s.devstate_path_ + ".staged";
  FTD_ASSIGN_OR_RETURN(s.ram_, MappedRegion::map_file(s.ram_path_, memory_bytes, true));
  FTD_ASSIGN_OR_RETURN(
      s.undo_, UndoLog::open(dir + "/" + vm_name + ".undo", page_size, memory_bytes / page_size));
  if (disk_bytes > 0) {
    FTD_ASSIGN_OR_RETURN(s.disk_, ReplicaDisk::open(replica_disk_path(dir, vm_name), disk_bytes));
    FTD_ASSIGN_OR_RETURN(s.disk_undo_, DiskUndoLog::open(dir + "/" + vm_name + ".disk.undo"));
  }
  FTD_TRY(s.recover());
  return s;
}

// Decides what the files left behind hold. The meta line is the commit
// record; the staged device state tells whether an apply got past its copy
// (apply() renames it only after the last page is in).
Status ReplicaStore::recover() {
  using State = ReplicaMeta::State;
  const std::optional<ReplicaMeta> meta = ReplicaMeta::read(meta_path_);
  uint64_t epoch = 0;
  recovery_ = "new replica";
  DiskReplicaState disk_state;
  if (meta) disk_state = {.last_seq = meta->disk_last_seq, .complete = meta->disk_complete};
  if (!meta || meta->memory_bytes != ram_.size() || meta->page_size != page_size_ ||
      meta->disk_bytes != disk_.size() || disk_.resized()) {
    if (meta) recovery_ = "geometry changed: starts from epoch 0";
  } else if (meta->state == State::kClean || meta->state == State::kKept) {
    epoch = meta->epoch;
    kept_ = meta->state == State::kKept;
    recovery_ = meta->to_string();
  } else if (meta->state == State::kRunning) {
    recovery_ =
        fmt::format("a guest ran on this image (failed over at epoch {}): epoch 0", meta->epoch);
  } else if (meta->state == State::kApplying && !exists(staged_path_)) {
    epoch = meta->epoch;  // every page and the device state are in: roll forward
    recovery_ = fmt::format("apply of epoch {} had finished its copy: rolled forward", epoch);
  } else {
    const uint64_t base = meta->state == State::kApplying ? meta->base_epoch : meta->epoch;
    FTD_ASSIGN_OR_RETURN(auto replayed, undo_.roll_back(ram_.bytes()));
    // The disk goes back with the RAM. A resync never touched it (sync
    // chunks carry no disk writes): its meta line holds the kept epoch's disk.
    bool disk_back = disk_.size() == 0 || meta->state == State::kResync;
    if (!disk_back) {
      FTD_ASSIGN_OR_RETURN(auto disk_replayed, disk_undo_.roll_back(disk_));
      if (disk_replayed && disk_replayed->base_epoch == base &&
          disk_replayed->epoch == meta->epoch) {
        disk_state = disk_replayed->base;
        disk_back = true;
      }
    }
    if (replayed && disk_back && replayed->base_epoch == base &&
        (meta->state != State::kResync || replayed->kind == UndoKind::kResync)) {
      epoch = base;
      kept_ = replayed->kind == UndoKind::kResync;
      recovery_ = fmt::format("interrupted {} ({}): rolled back {} pages to epoch {}",
                              meta->state == State::kResync ? "resync" : "apply", meta->to_string(),
                              replayed->pages, base);
    } else {
      recovery_ = fmt::format("interrupted change ({}) without a usable undo log: epoch 0",
                              meta->to_string());
    }
  }
  if (epoch != 0) {
    if (auto dev = read_file(devstate_path_)) {
      device_state_ = std::move(*dev);
    } else {
      recovery_ += "; device state missing: epoch 0";
      epoch = 0;
    }
  }
  epoch_ = epoch;
  if (epoch_ == 0) kept_ = false;
  disk_state_ = disk_state;
  if (epoch_ == 0 && disk_.size() > 0) {
    // No epoch vouches for what the disk holds (a guest ran on it, a torn
    // change, another geometry): zeros, like a new replica, and a write
    // sequence that starts over.
    FTD_TRY(wipe_disk());
    disk_state_ = {};
  }
  const bool meta_says_so =
      meta && meta->memory_bytes == ram_.size() && meta->page_size == page_size_ &&
      meta->epoch == epoch_ && meta->state == (kept_ ? State::kKept : State::kClean) &&
      meta->disk_bytes == disk_.size() && meta->disk_last_seq == disk_state_.last_seq &&
      meta->disk_complete == disk_state_.complete;
  if (!meta_says_so) return settle();
  // Nothing to rewrite (a full tmpfs must not stop a clean replica from opening).
  ::unlink(staged_path_.c_str());
  FTD_TRY(disk_undo_.clear());
  return undo_.clear();
}

Status ReplicaStore::wipe_disk() {
  if (disk_.size() == 0) return ok();
  // One hole at most kMaxDiskWriteLength long per call (restore()'s length is 32 bits).
  for (uint64_t at = 0; at < disk_.size(); at += kMaxDiskWriteLength)
    FTD_TRY(disk_.restore(
        at, static_cast<uint32_t>(std::min<uint64_t>(kMaxDiskWriteLength, disk_.size() - at)), {}));
  return ok();
}

Status ReplicaStore::write_meta(ReplicaMeta::State state, uint64_t epoch, uint64_t base_epoch,
                                std::optional<DiskReplicaState> disk) {
  const DiskReplicaState d = disk.value_or(disk_state_);
  return ReplicaMeta{.state = state,
                     .epoch = epoch,
                     .memory_bytes = ram_.size(),
                     .page_size = page_size_,
                     .base_epoch = base_epoch,
                     .disk_bytes = disk_.size(),
                     .disk_last_seq = d.last_seq,
                     .disk_complete = d.complete}
      .write(meta_path_);
}

Status ReplicaStore::settle() {
  if (auto st = write_meta(kept_ ? ReplicaMeta::State::kKept : ReplicaMeta::State::kClean, epoch_);
      !st) {
    meta_dirty_ = true;
    return st;
  }
  meta_dirty_ = false;
  // Only now: while the meta still named a change, these were its way back.
  ::unlink(staged_path_.c_str());
  FTD_TRY(disk_undo_.clear());
  return undo_.clear();
}

Status ReplicaStore::mark_running(uint64_t epoch) {
  return write_meta(ReplicaMeta::State::kRunning, epoch);
}

Status ReplicaStore::seed(std::span<const std::byte> ram) {
  if (ram.size() != ram_.size())
    return make_error(ErrorCode::kInvalidArgument, "seed of {} bytes for a {}-byte replica",
                      ram.size(), ram_.size());
  FTD_TRY(mark_running(epoch_));  // first: a crash mid-copy leaves an image nobody activates
  FTD_TRY(undo_.clear());
  std::memcpy(ram_.data(), ram.data(), ram.size());
  epoch_ = 0;
  syncing_ = false;
  kept_ = false;
  device_state_.clear();
  return ok();
}

Status ReplicaStore::reset() {
  epoch_ = 0;
  syncing_ = false;
  kept_ = false;
  device_state_.clear();
  FTD_TRY(wipe_disk());  // an epoch-0 replica's disk holds zeros (see recover())
  disk_state_ = {};
  return settle();
}

Result<ApplyStats> ReplicaStore::apply(std::span<const std::byte> encoded) {
  auto t0 = std::chrono::steady_clock::now();
  FTD_ASSIGN_OR_RETURN(CheckpointHeader h, peek_header(encoded));
  const bool sync_chunk = h.flags & kFlagSyncChunk;
  if (h.page_size != page_size_)
    return make_error(ErrorCode::kInvalidArgument, "checkpoint page size {} != replica's {}",
                      h.page_size, page_size_);
  if (sync_chunk) {
    if (h.base_epoch != 0)
      return make_error(ErrorCode::kCorrupt, "sync chunk with base epoch {}", h.base_epoch);
  } else {
    if (kept_ && !syncing_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "replica kept epoch {} through an undone resync: it needs a full sync "
                        "before checkpoint {}",
                        epoch_, h.epoch);
    const uint64_t base = resume_epoch();
    if (h.epoch <= base)
      return make_error(ErrorCode::kFailedPrecondition,
                        "checkpoint {} is not newer than the replica's epoch {}", h.epoch, base);
    if (h.base_epoch != base)
      return make_error(ErrorCode::kFailedPrecondition,
                        "checkpoint {} is based on epoch {}, replica is at {}", h.epoch,
                        h.base_epoch, base);
  }
  DecodedCheckpoint& d = decoded_;
  FTD_TRY(decode_checkpoint_into(encoded, ram_.bytes(), d, decode_workers_.get()));
  if (!sync_chunk) FTD_TRY(check_disk(h, d.disk));  // sync chunks carry no disk section
  // A sync chunk leaves the replica at "epoch 0, syncing": that is what it
  // acknowledges, never the epoch the replica had before (a stale replica's
  // old epoch would tell the primary that epochs it has not even taken are
  // applied, and release their output).
  if (meta_dirty_) FTD_TRY(settle());
  ApplyStats stats{.epoch = sync_chunk ? 0 : h.epoch,
                   .pages = h.page_count,
                   .sync_chunk = sync_chunk,
                   .decode_us = micros_since(t0)};
  auto t1 = std::chrono::steady_clock::now();
  auto applied = sync_chunk ? apply_sync_chunk(d, stats) : apply_checkpoint(h, d, stats);
  if (applied) applied->apply_us = micros_since(t1);
  return applied;
}

Status ReplicaStore::check_disk(const CheckpointHeader& h, const DiskEpoch& disk) const {
  if (disk.disk_size != disk_.size())
    return make_error(ErrorCode::kFailedPrecondition,
                      "checkpoint {} carries a disk of {} bytes, the replica's is {} bytes",
                      h.epoch, disk.disk_size, disk_.size());
  if (disk.writes.empty()) return ok();
  // A gap in the write sequence means writes the replica never saw. Only a
  // primary whose disk copy starts over (complete false) may leave one: the
  // copy rewrites everything before the disk counts as consistent again.
  const uint64_t first = disk.writes.front().seq;
  if (first != disk_state_.last_seq + 1 && disk.complete)
    return make_error(ErrorCode::kFailedPrecondition,
                      "checkpoint {}: disk writes start at seq {}, the replica applied up to {} "
                      "(writes lost in between)",
                      h.epoch, first, disk_state_.last_seq);
  return ok();
}

Result<uint64_t> ReplicaStore::write_disk(const DiskEpoch& disk) {
  uint64_t bytes = 0;
  for (const DiskWrite& w : disk.writes) {
    step(ApplyStep::kDiskWriting);
    FTD_TRY(disk_.write(w));
    bytes += w.length;
  }
  return bytes;
}

void ReplicaStore::copy_pages(const DecodedCheckpoint& d, std::span<const uint32_t> which) {
  // `which` is a sorted subset of d.page_indices; walk both.
  size_t i = 0;
  for (uint32_t page : which) {
    while (d.page_indices[i] != page) ++i;
    step(ApplyStep::kCopying);
    std::memcpy(ram_.data() + uint64_t{page} * page_size_, d.pages.data() + i * page_size_,
                page_size_);
  }
}

Result<ApplyStats> ReplicaStore::apply_sync_chunk(const DecodedCheckpoint& d, ApplyStats stats) {
  if (epoch_ == 0) {
    // Nothing consistent to keep (first sync): a plain copy.
    copy_pages(d, d.page_indices);
    syncing_ = true;
    stats.pages_written = static_cast<uint32_t>(d.page_indices.size());
    return stats;
  }
  // Keep epoch_: save each page the first time the resync overwrites it.
  // Unchanged pages are neither saved nor written (a resync after a short
  // outage rewrites mostly identical pages).
  changed_.clear();
  for (size_t i = 0; i < d.page_indices.size(); ++i) {
    const uint32_t p = d.page_indices[i];
    if (std::memcmp(ram_.data() + uint64_t{p} * page_size_, d.pages.data() + i * page_size_,
                    page_size_) != 0)
      changed_.push_back(p);
  }
  if (!resyncing()) {
    FTD_TRY(undo_.begin(epoch_, UndoKind::kResync));
    if (auto st = write_meta(ReplicaMeta::State::kResync, epoch_); !st) {
      (void)undo_.clear();
      return std::unexpected(st.error());
    }
    syncing_ = true;
  }
  FTD_TRY(undo_.save(changed_, ram_.bytes()));  // on error: RAM untouched, resync still undoable
  step(ApplyStep::kUndoSaved);
  copy_pages(d, changed_);
  step(ApplyStep::kCopied);
  stats.pages_written = static_cast<uint32_t>(changed_.size());
  return stats;
}

Result<ApplyStats> ReplicaStore::apply_checkpoint(const CheckpointHeader& h, DecodedCheckpoint& d,
                                                  ApplyStats stats) {
  // Stage the device state first: a full disk fails here, before RAM changes.
  FTD_TRY(write_file_atomic(staged_path_, d.device_state));
  step(ApplyStep::kStaged);
  const bool in_resync = resyncing();
  auto abandon = [&](const Error& e) -> std::unexpected<Error> {
    ::unlink(staged_path_.c_str());
    (void)disk_undo_.clear();             // nothing of the disk changed yet
    if (!in_resync) (void)undo_.clear();  // a resync's log still guards its earlier pages
    return std::unexpected(e);
  };
  // A resync's log already rolls back to the epoch it keeps; it grows by the
  // pages of this first checkpoint after the sync.
  if (!in_resync)
    if (auto st = undo_.begin(epoch_, UndoKind::kApply); !st) return abandon(st.error());
  if (auto st = undo_.save(d.page_indices, ram_.bytes()); !st) return abandon(st.error());
  // The disk's old contents too, with the disk state the roll back restores.
  const DiskReplicaState new_disk{
      .last_seq = d.disk.writes.empty() ? disk_state_.last_seq : d.disk.writes.back().seq,
      .complete = d.disk.complete};
  if (disk_.size() > 0) {
    if (auto st = disk_undo_.begin(undo_.base_epoch(), h.epoch, disk_state_); !st)
      return abandon(st.error());
    if (auto st = disk_undo_.save(d.disk.writes, disk_); !st) {
      disk_error_ = st.error().to_string();
      return abandon(st.error().with_context("save the replica disk's old contents"));
    }
  }
  step(ApplyStep::kUndoSaved);
  if (auto st = write_meta(ReplicaMeta::State::kApplying, h.epoch, undo_.base_epoch(), new_disk);
      !st)
    return abandon(st.error());
  step(ApplyStep::kMarked);
  copy_pages(d, d.page_indices);
  step(ApplyStep::kCopied);
  auto disk_bytes = write_disk(d.disk);
  if (!disk_bytes) {
    // ENOSPC/EIO: the RAM and the disk go back to the last consistent epoch.
    disk_error_ = disk_bytes.error().to_string();
    return undo_failed_change(disk_bytes.error().with_context("replica disk"));
  }
  // The rename is the "copy finished" mark that lets a reopen roll forward.
  if (::rename(staged_path_.c_str(), devstate_path_.c_str()) != 0)
    return undo_failed_change(errno_error("rename " + staged_path_).error());
  step(ApplyStep::kDeviceState);
  epoch_ = h.epoch;
  syncing_ = false;
  kept_ = false;
  std::swap(device_state_, d.device_state);  // keeps both buffers for reuse
  disk_state_ = new_disk;
  disk_bytes_applied_ += *disk_bytes;
  disk_error_.clear();
  // Committed either way: a reopen rolls forward from "applying" without the
  // staged file. A failed meta write is retried before the next change.
  (void)settle();
  (void)undo_.clear();  // even if settle() could not write: "applying" without staged rolls forward
  step(ApplyStep::kCommitted);
  stats.pages_written = static_cast<uint32_t>(d.page_indices.size());
  stats.disk_writes = static_cast<uint32_t>(d.disk.writes.size());
  stats.disk_bytes = *disk_bytes;
  return stats;
}

std::unexpected<Error> ReplicaStore::undo_failed_change(const Error& cause) {
  auto replayed = undo_.roll_back(ram_.bytes());
  bool disk_back = disk_.size() == 0;
  if (!disk_back) {
    auto disk_replayed = disk_undo_.roll_back(disk_);
    disk_back = disk_replayed && *disk_replayed;
  }
  if (!replayed || !*replayed || !disk_back) {
    // Cannot happen short of a vanished tmpfs file; a retry would resolve XOR
    // deltas against torn pages, so forget the epoch (the meta agrees).
    epoch_ = 0;
    syncing_ = kept_ = false;
    device_state_.clear();
    disk_state_ = {};  // the meta says "applying": a reopen wipes the disk
    return std::unexpected(cause.with_context("replica torn, needs a full sync"));
  }
  if ((*replayed)->kind == UndoKind::kResync) {
    syncing_ = false;  // back at the kept epoch: the sync chunks are undone too
    kept_ = true;
  }
  (void)settle();  // if the meta cannot be written, a reopen rolls back the same way
  return std::unexpected(cause.with_context(fmt::format("undone, replica at epoch {}", epoch_)));
}

Status ReplicaStore::roll_back_resync() {
  if (!resyncing()) return ok();
  FTD_ASSIGN_OR_RETURN(auto replayed, undo_.roll_back(ram_.bytes()));
  if (!replayed)
    return make_error(ErrorCode::kCorrupt, "undo log of the resync is unreadable: epoch {} lost",
                      epoch_);
  syncing_ = false;
  kept_ = true;
  (void)settle();  // RAM is epoch_ already; a stale meta only matters to a reopen, which agrees
  return ok();
}

}  // namespace ftd
