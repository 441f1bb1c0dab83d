#include "disk/disk_write_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace ftd {

Result<uint64_t> DiskWriteLog::append_data(uint64_t offset, std::span<const std::byte> data) {
  return append(offset, static_cast<uint32_t>(data.size()), DiskWrite::Kind::kData, data);
}

Result<uint64_t> DiskWriteLog::append_zeroes(uint64_t offset, uint32_t length) {
  return append(offset, length, DiskWrite::Kind::kZeroes, {});
}

Result<uint64_t> DiskWriteLog::append(uint64_t offset, uint32_t length, DiskWrite::Kind kind,
                                      std::span<const std::byte> data) {
  MutexLock lock(mu_);
  Entry entry;
  entry.write.offset = offset;
  entry.write.length = length;
  entry.write.kind = kind;
  // Spill once memory is full, and keep spilling until the next take: the
  // order lives in `entries_` either way.
  if (!data.empty() &&
      (spilled_bytes_ > 0 || memory_bytes_ + data.size() > options_.memory_limit)) {
    FTD_TRY(spill(entry, data));
  } else {
    entry.write.data.assign(data.begin(), data.end());
    memory_bytes_ += data.size();
  }
  entry.write.seq = next_seq_++;
  entries_.push_back(std::move(entry));
  return entries_.back().write.seq;
}

Status DiskWriteLog::spill(Entry& entry, std::span<const std::byte> data) {
  if (!spill_fd_) {
    spill_fd_.reset(::open(options_.spill_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!spill_fd_)
      return errno_error(fmt::format("disk write log: spill file in {}", options_.spill_dir));
    spdlog::warn("disk.log_spill dir={} memory_bytes={} limit={} reason=pipeline_behind",
                 options_.spill_dir, memory_bytes_, options_.memory_limit);
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(spill_fd_.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(spill_end_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error(fmt::format("disk write log: spill to {}", options_.spill_dir));
    done += static_cast<size_t>(n);
  }
  entry.spill_offset = static_cast<int64_t>(spill_end_);
  spill_end_ += data.size();
  spilled_bytes_ += data.size();
  ++spills_total_;
  return ok();
}

Result<std::vector<DiskWrite>> DiskWriteLog::take_epoch() {
  MutexLock lock(mu_);
  std::vector<DiskWrite> out;
  out.reserve(entries_.size());
  for (Entry& e : entries_) {
    if (e.spill_offset >= 0) {
      e.write.data.resize(e.write.length);
      size_t done = 0;
      while (done < e.write.length) {
        ssize_t n = ::pread(spill_fd_.get(), e.write.data.data() + done, e.write.length - done,
                            e.spill_offset + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        // The records stay in the log: a later take can try again.
        if (n < 0) return errno_error("disk write log: read back spill file");
        if (n == 0) return make_error(ErrorCode::kIo, "disk write log: spill file truncated");
        done += static_cast<size_t>(n);
      }
    }
  }
  for (Entry& e : entries_) out.push_back(std::move(e.write));
  entries_.clear();
  memory_bytes_ = 0;
  if (spilled_bytes_ > 0) {
    // Give the space back; the file itself is reused.
    if (::ftruncate(spill_fd_.get(), 0) != 0)
      spdlog::warn("disk.log_spill_truncate errno={}", errno);
    spill_end_ = 0;
    spilled_bytes_ = 0;
  }
  return out;
}

DiskWriteLogStats DiskWriteLog::stats() const {
  MutexLock lock(mu_);
  DiskWriteLogStats s;
  s.last_seq = next_seq_ - 1;
  s.pending_records = entries_.size();
  s.pending_bytes = memory_bytes_ + spilled_bytes_;
  s.spilled_bytes = spilled_bytes_;
  s.spills_total = spills_total_;
  return s;
}

}  // namespace ftd
