#include "common/mapped_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace ftd {

MappedRegion& MappedRegion::operator=(MappedRegion&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (data_) ::munmap(data_, size_);
}

Result<MappedRegion> MappedRegion::anonymous(size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno_error(fmt::format("mmap anonymous {} bytes", size));
  return MappedRegion(static_cast<std::byte*>(p), size);
}

Result<MappedRegion> MappedRegion::map_fd(int fd, size_t size, bool writable) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error(fmt::format("mmap fd {} ({} bytes)", fd, size));
  return MappedRegion(static_cast<std::byte*>(p), size);
}

Result<MappedRegion> MappedRegion::map_file(const std::string& path, size_t size, bool create) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600));
  if (!fd) return errno_error(fmt::format("open {}", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(fmt::format("stat {}", path));
  if (static_cast<size_t>(st.st_size) != size) {
    if (!create) {
      return make_error(ErrorCode::kInvalidArgument, "{} has {} bytes, expected {}", path,
                        st.st_size, size);
    }
    // posix_fallocate rather than ftruncate so a full tmpfs fails here, not with SIGBUS later.
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
      return errno_error(fmt::format("truncate {}", path));
    if (int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size)); rc != 0) {
      errno = rc;
      return errno_error(fmt::format("allocate {} bytes for {}", size, path));
    }
  }
  return map_fd(fd.get(), size, true);
}

}  // namespace ftd
