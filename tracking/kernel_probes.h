// Real run-time tests of the kernel mechanisms, done on a scratch memfd in
// this process: headers and version numbers say what a kernel *should* do;
// these say what it does (e.g. writing clear_refs succeeds silently on a
// kernel without CONFIG_MEM_SOFT_DIRTY). ok() = works; error = why not.
#pragma once

#include <functional>

#include "common/result.h"

namespace ftd {

// Async uffd-wp + PAGEMAP_SCAN: arms a scratch memfd mapping, writes two
// pages, expects exactly those two back, then none.
Status probe_uffd_wp();
// Soft-dirty: clears the bits (clear_refs 4 on this process), writes one page
// of a scratch mapping, expects exactly that page's bit 55, then none.
Status probe_soft_dirty();

// The seam choose_tracker() tests through: what the kernel can do.
struct KernelProbes {
  std::function<Status()> uffd_wp = probe_uffd_wp;
  std::function<Status()> soft_dirty = probe_soft_dirty;
};

}  // namespace ftd
