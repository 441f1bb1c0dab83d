#include "tracking/uffd.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "tracking/kernel_abi.h"

namespace ftd {

uint64_t uffd_wp_async_features() {
  return UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
}

Result<UniqueFd> take_fd_from(pid_t pid, int fd_in_target) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return errno_error(fmt::format("pidfd_open({})", pid));
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd_in_target, 0)));
  if (!fd) return errno_error(fmt::format("pidfd_getfd(pid {}, fd {})", pid, fd_in_target));
  return fd;
}

Result<UniqueFd> create_userfaultfd() {
  UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY | O_CLOEXEC)));
  if (!fd) return errno_error("userfaultfd");
  return fd;
}

Status uffd_enable_wp_async(int uffd) {
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = uffd_wp_async_features();
  if (::ioctl(uffd, UFFDIO_API, &api) != 0) {
    // EINVAL: the kernel does not know one of the features. Ask what it has.
    const int err = errno;
    uffdio_api probe{};
    probe.api = UFFD_API;
    uint64_t have = 0;
    if (UniqueFd fresh = create_userfaultfd().value_or(UniqueFd{});
        fresh && ::ioctl(fresh.get(), UFFDIO_API, &probe) == 0)
      have = probe.features;
    return make_error(ErrorCode::kUnimplemented,
                      "UFFDIO_API with WP_ASYNC|WP_UNPOPULATED|WP_HUGETLBFS_SHMEM: {}; kernel "
                      "features {:#x}, missing {:#x} (needs Linux >= 6.7)",
                      std::strerror(err), have, uffd_wp_async_features() & ~have);
  }
  return ok();
}

Status uffd_register_wp(int uffd, uint64_t start, uint64_t length) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = length;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
    return errno_error(fmt::format("UFFDIO_REGISTER WP [{:#x}, +{:#x})", start, length));
  return ok();
}

Status uffd_write_protect(int uffd, uint64_t start, uint64_t length) {
  uffdio_writeprotect wp{};
  wp.range.start = start;
  wp.range.len = length;
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
    return errno_error(fmt::format("UFFDIO_WRITEPROTECT [{:#x}, +{:#x})", start, length));
  return ok();
}

}  // namespace ftd
