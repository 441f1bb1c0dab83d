// The primary's record of guest disk writes between two checkpoints. The NBD
// server appends every write QEMU's mirror sends (before it replies, so an
// acknowledged write is never lost); the pipeline moves everything received
// so far out with take_epoch() while the guest is paused.
//
// Memory is bounded: once the records held in memory reach `memory_limit`
// bytes of data, further records go to an unlinked spill file until the next
// take_epoch(). The server never waits for the pipeline: a reply withheld
// until a checkpoint drains the log would deadlock QMP `stop`, which waits
// for every in-flight write.
//
// Thread contract: append() from the server's connection threads, take_epoch()
// and stats() from any thread; all calls are serialized by one mutex.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/disk_write.h"

namespace ftd {

struct DiskWriteLogOptions {
  size_t memory_limit = size_t{256} << 20;  // data bytes held in memory before spilling
  std::string spill_dir;                    // where the (unlinked) spill file lives; required
};

struct DiskWriteLogStats {
  uint64_t last_seq = 0;         // seq of the newest record (0: none yet)
  uint64_t pending_records = 0;  // not yet taken
  uint64_t pending_bytes = 0;    // data bytes of those (zero ranges count 0)
  uint64_t spilled_bytes = 0;    // of pending_bytes, on the spill file
  uint64_t spills_total = 0;     // records ever spilled
};

class DiskWriteLog {
 public:
  explicit DiskWriteLog(DiskWriteLogOptions options) : options_(std::move(options)) {}

  // Records a data write; `data` is the whole payload. Returns its seq. An
  // error (spill file unwritable, disk full) means the write was NOT
  // recorded: the server must fail the request, never acknowledge it.
  Result<uint64_t> append_data(uint64_t offset, std::span<const std::byte> data);
  // Records a range that now reads as zeroes (TRIM, WRITE_ZEROES).
  Result<uint64_t> append_zeroes(uint64_t offset, uint32_t length);

  // Every record appended since the previous call, in seq order; the log is
  // then empty (seqs continue). Spilled payloads are read back here.
  Result<std::vector<DiskWrite>> take_epoch();

  DiskWriteLogStats stats() const;

 private:
  struct Entry {
    DiskWrite write;            // data empty while spilled
    int64_t spill_offset = -1;  // where the payload sits in the spill file
  };
  Result<uint64_t> append(uint64_t offset, uint32_t length, DiskWrite::Kind kind,
                          std::span<const std::byte> data) FTD_EXCLUDES(mu_);
  Status spill(Entry& entry, std::span<const std::byte> data) FTD_REQUIRES(mu_);

  const DiskWriteLogOptions options_;
  mutable Mutex mu_;
  std::vector<Entry> entries_ FTD_GUARDED_BY(mu_);
  uint64_t next_seq_ FTD_GUARDED_BY(mu_) = 1;
  uint64_t memory_bytes_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t spilled_bytes_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t spills_total_ FTD_GUARDED_BY(mu_) = 0;
  UniqueFd spill_fd_ FTD_GUARDED_BY(mu_);  // O_TMPFILE: gone with the process
  uint64_t spill_end_ FTD_GUARDED_BY(mu_) = 0;
};

}  // namespace ftd
