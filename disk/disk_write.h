// One guest disk write, as the primary's NBD server received it from QEMU's
// write-blocking mirror, and as a checkpoint carries it to the replica disk.
// TRIM and WRITE_ZEROES both become kZeroes: the replica image must stay byte
// for byte equal to the primary's, and a discarded range may read as anything.
#pragma once

#include <cstdint>
#include <vector>

#include "common/byte_buffer.h"

namespace ftd {

struct DiskWrite {
  enum class Kind : uint8_t { kData = 0, kZeroes = 1 };

  uint64_t seq = 0;  // arrival order on the primary, from 1, never reused
  uint64_t offset = 0;
  uint32_t length = 0;
  Kind kind = Kind::kData;
  ByteBuffer data;  // `length` bytes for kData, empty for kZeroes
};

// What one checkpoint carries for the disk: every write with seq in
// (first_seq - 1, last_seq], in order. `complete` is false while QEMU's mirror
// still copies the disk for the first time (before BLOCK_JOB_READY): such a
// replica disk is not consistent and must not be activated with RAM.
struct DiskEpoch {
  uint64_t disk_size = 0;  // bytes; 0 = the VM has no replicated disk
  bool complete = false;
  std::vector<DiskWrite> writes;
};

}  // namespace ftd
