#include "secondary/replica_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/file_util.h"
#include "common/unique_fd.h"

namespace ftd {
namespace {

uint64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

}  // namespace

Result<ReplicaStore> ReplicaStore::open(const std::string& dir, const std::string& vm_name,
                                        uint64_t memory_bytes, uint32_t page_size) {
  if (vm_name.empty() || vm_name.find('/') != std::string::npos || vm_name[0] == '.')
    return make_error(ErrorCode::kInvalidArgument, "invalid VM name '{}'", vm_name);
  if (page_size == 0 || memory_bytes == 0 || memory_bytes % page_size != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "memory size {} is not a positive multiple of page size {}", memory_bytes,
                      page_size);
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
  FTD_ASSIGN_OR_RETURN(s.ram_, MappedRegion::map_file(s.ram_path_, memory_bytes, true));

  // Meta: "<state> <epoch> <memory_bytes> <page_size>". Only a clean meta with
  // matching geometry resumes; anything else starts from epoch 0.
  std::ifstream meta(s.meta_path_);
  std::string state;
  uint64_t epoch = 0, mem = 0;
  uint32_t ps = 0;
  if (meta >> state >> epoch >> mem >> ps && state == "clean" && mem == memory_bytes &&
      ps == page_size) {
    auto dev = read_file(s.devstate_path_);
    if (dev) {
      s.epoch_ = epoch;
      s.device_state_ = std::move(*dev);
    }
  }
  if (s.epoch_ == 0) FTD_TRY(s.write_meta("clean", 0));
  return s;
}

Status ReplicaStore::write_meta(const std::string& state, uint64_t epoch) {
  std::string text = fmt::format("{} {} {} {}\n", state, epoch, ram_.size(), page_size_);
  return write_file_atomic(meta_path_, std::as_bytes(std::span(text)));
}

Status ReplicaStore::mark_running(uint64_t epoch) { return write_meta("running", epoch); }

Status ReplicaStore::reset() {
  epoch_ = 0;
  syncing_ = false;
  device_state_.clear();
  return write_meta("clean", 0);
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
    if (h.epoch <= epoch_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "checkpoint {} is not newer than the replica's epoch {}", h.epoch, epoch_);
    if (h.base_epoch != epoch_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "checkpoint {} is based on epoch {}, replica is at {}", h.epoch,
                        h.base_epoch, epoch_);
  }
  FTD_ASSIGN_OR_RETURN(DecodedCheckpoint d, decode_checkpoint(encoded, ram_.bytes()));
  // A sync chunk leaves the replica at "epoch 0, syncing": that is what it
  // acknowledges, never the epoch the replica had before (a stale replica's
  // old epoch would tell the primary that epochs it has not even taken are
  // applied, and release their output).
  ApplyStats stats{
      .epoch = sync_chunk ? 0 : h.epoch, .pages = h.page_count, .decode_us = micros_since(t0)};

  auto t1 = std::chrono::steady_clock::now();
  // Stage the device state first: a full disk fails here, before RAM changes.
  const std::string staged_dev = devstate_path_ + ".staged";
  if (!sync_chunk) {
    FTD_TRY(write_file_atomic(staged_dev, d.device_state));
  }
  if (auto st = write_meta("applying", h.epoch); !st) {
    if (!sync_chunk) ::unlink(staged_dev.c_str());
    return std::unexpected(std::move(st).error());
  }
  for (size_t i = 0; i < d.page_indices.size(); ++i) {
    std::memcpy(ram_.data() + uint64_t{d.page_indices[i]} * page_size_,
                d.pages.data() + i * page_size_, page_size_);
  }
  // RAM now holds pages of h.epoch. A failure from here on must not leave the
  // replica claiming its old epoch: a retry would resolve XOR deltas against
  // the new pages. Forget the epoch (the meta still says "applying", so a
  // reopen agrees) and let the primary send a full sync.
  auto torn = [&](Error e) -> std::unexpected<Error> {
    epoch_ = 0;
    syncing_ = false;
    device_state_.clear();
    return std::unexpected(e.with_context("replica torn, needs a full sync"));
  };
  if (sync_chunk) {
    // Initial sync is not a consistent state: epoch stays 0 until a checkpoint lands.
    syncing_ = true;
    epoch_ = 0;
    if (auto st = write_meta("clean", 0); !st) return torn(st.error());
  } else {
    if (::rename(staged_dev.c_str(), devstate_path_.c_str()) != 0)
      return torn(errno_error("rename " + staged_dev).error());
    if (auto st = write_meta("clean", h.epoch); !st) return torn(st.error());
    epoch_ = h.epoch;
    syncing_ = false;
    device_state_ = std::move(d.device_state);
  }
  stats.apply_us = micros_since(t1);
  return stats;
}

}  // namespace ftd
