// Kernel interfaces for dirty tracking that Debian 12's linux-libc-dev (6.1)
// predates: the PAGEMAP_SCAN ioctl (Linux 6.7) and the userfaultfd features
// WP_UNPOPULATED (6.4) and WP_ASYNC (6.7). Values copied from the upstream
// uapi headers (include/uapi/linux/fs.h, userfaultfd.h); each is defined only
// when the installed header lacks it, so newer headers win.
#pragma once

#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#ifndef PAGEMAP_SCAN
#define FTD_DEFINE_PAGEMAP_SCAN 1
#endif

#ifdef FTD_DEFINE_PAGEMAP_SCAN
// Categories (pm_scan_arg masks, page_region.categories).
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};

// Write-protect the pages matched (needs a WP_ASYNC userfaultfd on the range).
#define PM_SCAN_WP_MATCHING (1 << 0)
// Fail with EPERM when a page of the range is not under async uffd-wp.
#define PM_SCAN_CHECK_WPASYNC (1 << 1)

struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif  // FTD_DEFINE_PAGEMAP_SCAN

// Soft-dirty bit of a /proc/<pid>/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
inline constexpr unsigned kPagemapSoftDirtyBit = 55;
