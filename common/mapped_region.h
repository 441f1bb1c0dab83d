// An mmap'ed region, unmapped on destruction. Guest RAM (memfd / replica file)
// and anonymous buffers both live in one of these.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(MappedRegion&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedRegion& operator=(MappedRegion&& o) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  // Private anonymous memory, zero-filled.
  static Result<MappedRegion> anonymous(size_t size);
  // Shared mapping of an fd (memfd, tmpfs file, /proc/<pid>/fd/N).
  static Result<MappedRegion> map_fd(int fd, size_t size, bool writable);
  // Opens (creating and sizing if needed) a file and maps it shared read-write.
  static Result<MappedRegion> map_file(const std::string& path, size_t size, bool create);

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }

 private:
  MappedRegion(std::byte* data, size_t size) : data_(data), size_(size) {}
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ftd
