// The replica's disk image (<dir>/<vm>.disk): a raw file of the guest disk's
// size, sparse where the guest never wrote. A checkpoint's disk writes land
// here only when the checkpoint commits (ReplicaStore::apply), after their
// old contents are in the disk undo log (disk_undo_log.h). Zeroes become
// holes (fallocate PUNCH_HOLE): they read back as zeros, byte-identical to the
// primary's image, and free space instead of taking it.
//
// Not thread-safe: owned by ReplicaStore.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/disk_write.h"

namespace ftd {

// Where the replica disk of VM `vm_name` lives in a replica directory; the
// standby QEMU is started on the same path.
inline std::string replica_disk_path(const std::string& dir, const std::string& vm_name) {
  return dir + "/" + vm_name + ".disk";
}

class ReplicaDisk {
 public:
  // Opens or creates the image with exactly `size` bytes. An existing image
  // of another size is resized (`resized()` says so: its contents are no
  // consistent copy of anything).
  static Result<ReplicaDisk> open(const std::string& path, uint64_t size);

  ReplicaDisk() = default;  // no disk
  ReplicaDisk(ReplicaDisk&&) = default;
  ReplicaDisk& operator=(ReplicaDisk&&) = default;

  uint64_t size() const { return size_; }
  bool resized() const { return resized_; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

  // Writes `w` (data, or zeros as a hole). ENOSPC/EIO come back as errors
  // naming the image; what was written before stays (the undo log restores it).
  Status write(const DiskWrite& w);
  // Restores `length` bytes at `offset` to `data`, or to zeros when `data` is
  // empty. Zeros become holes and only blocks holding data are rewritten, so
  // putting back what a failed write changed needs no free space.
  Status restore(uint64_t offset, uint32_t length, std::span<const std::byte> data);
  Status read(uint64_t offset, std::span<std::byte> out) const;

 private:
  ReplicaDisk(UniqueFd fd, std::string path, uint64_t size, bool resized)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size), resized_(resized) {}
  Status zero(uint64_t offset, uint32_t length);

  UniqueFd fd_;
  std::string path_;
  uint64_t size_ = 0;
  bool resized_ = false;
};

}  // namespace ftd
