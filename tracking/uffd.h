// userfaultfd plumbing for async write-protect tracking of another process:
// take its uffd (pidfd_getfd), enable the features, register and arm a range.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

// The features async write-protect tracking needs (WP_ASYNC,
// WP_UNPOPULATED, WP_HUGETLBFS_SHMEM).
uint64_t uffd_wp_async_features();

// A duplicate of fd `fd_in_target` of process `pid` (pidfd_open +
// pidfd_getfd; needs ptrace-attach rights over it).
Result<UniqueFd> take_fd_from(pid_t pid, int fd_in_target);
// Creates a userfaultfd in this process (user-mode faults only).
Result<UniqueFd> create_userfaultfd();
// UFFDIO_API with the async WP features; error naming the missing ones.
Status uffd_enable_wp_async(int uffd);
// UFFDIO_REGISTER (MODE_WP) of [start, start + length) of the uffd's mm.
Status uffd_register_wp(int uffd, uint64_t start, uint64_t length);
// UFFDIO_WRITEPROTECT (set) of the range: every page counts as clean.
Status uffd_write_protect(int uffd, uint64_t start, uint64_t length);

}  // namespace ftd
