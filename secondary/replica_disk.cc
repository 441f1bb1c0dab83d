#include "secondary/replica_disk.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/file_util.h"

namespace ftd {

Result<ReplicaDisk> ReplicaDisk::open(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
  const bool resized = static_cast<uint64_t>(st.st_size) != size;
  // ftruncate allocates nothing: the image stays sparse until written.
  if (resized && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return errno_error(fmt::format("resize {} to {} bytes", path, size));
  return ReplicaDisk(std::move(fd), path, size, resized && st.st_size != 0);
}

Status ReplicaDisk::zero(uint64_t offset, uint32_t length) {
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  length) == 0)
    return ok();
  if (errno != EOPNOTSUPP) return errno_error(fmt::format("punch hole in {}", path_));
  // A filesystem without holes: write the zeros.
  const std::vector<std::byte> zeros(length);
  return pwrite_all(fd_.get(), zeros, offset, path_);
}

Status ReplicaDisk::write(const DiskWrite& w) {
  if (w.offset > size_ || w.length > size_ - w.offset)
    return make_error(ErrorCode::kInvalidArgument, "disk write {} at {}+{} beyond {} ({} bytes)",
                      w.seq, w.offset, w.length, path_, size_);
  if (w.kind == DiskWrite::Kind::kZeroes) return zero(w.offset, w.length);
  return pwrite_all(fd_.get(), std::span(w.data.data(), w.length), w.offset, path_);
}

Status ReplicaDisk::restore(uint64_t offset, uint32_t length, std::span<const std::byte> data) {
  if (data.empty()) return zero(offset, length);
  // Block by block: zero blocks become holes and only blocks that held data
  // are rewritten. Those were allocated before the failed change began, so a
  // roll back after ENOSPC needs no free space.
  constexpr uint32_t kBlock = 4096;
  for (uint32_t at = 0; at < length;) {
    const uint32_t n =
        std::min(kBlock - static_cast<uint32_t>((offset + at) % kBlock), length - at);
    const auto block = data.subspan(at, n);
    if (std::all_of(block.begin(), block.end(), [](std::byte b) { return b == std::byte{0}; }))
      FTD_TRY(zero(offset + at, n));
    else
      FTD_TRY(pwrite_all(fd_.get(), block, offset + at, path_));
    at += n;
  }
  return ok();
}

Status ReplicaDisk::read(uint64_t offset, std::span<std::byte> out) const {
  FTD_ASSIGN_OR_RETURN(size_t n, pread_all(fd_.get(), out, offset, path_));
  if (n != out.size())
    return make_error(ErrorCode::kIo, "{}: {} bytes at {} read {}", path_, out.size(), offset, n);
  return ok();
}

}  // namespace ftd
