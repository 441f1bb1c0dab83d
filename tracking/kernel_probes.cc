#include "tracking/kernel_probes.h"

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "common/mapped_region.h"
#include "tracking/soft_dirty_tracker.h"
#include "tracking/uffd.h"
#include "tracking/uffd_wp_tracker.h"

namespace ftd {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 16;

Result<MappedRegion> scratch_memfd() {
  UniqueFd fd(::memfd_create("ftd-tracker-probe", MFD_CLOEXEC));
  if (!fd) return errno_error("memfd_create");
  if (::ftruncate(fd.get(), kPages * kPage) != 0) return errno_error("ftruncate memfd");
  return MappedRegion::map_fd(fd.get(), kPages * kPage, true);
}

TrackedRange self_range(const MappedRegion& m) {
  return {.pid = ::getpid(),
          .start = reinterpret_cast<uint64_t>(m.data()),
          .length = m.size(),
          .page_size = kPage};
}

// Writes `pages`, collects twice: the first must be exactly `pages`, the second empty.
Status expect_exact(DirtyTracker& tracker, MappedRegion& m, const std::vector<uint32_t>& pages) {
  for (uint32_t p : pages) {
    volatile auto* b = reinterpret_cast<volatile unsigned char*>(m.data() + p * kPage + 17);
    *b = static_cast<unsigned char>(*b + 1);
  }
  FTD_ASSIGN_OR_RETURN(auto first, tracker.collect());
  if (first != pages)
    return make_error(ErrorCode::kUnimplemented, "{}: wrote {} pages, {} reported", tracker.name(),
                      pages.size(), first.size());
  FTD_ASSIGN_OR_RETURN(auto second, tracker.collect());
  if (!second.empty())
    return make_error(ErrorCode::kUnimplemented, "{}: {} pages reported again without writes",
                      tracker.name(), second.size());
  return ok();
}

}  // namespace

Status probe_uffd_wp() {
  FTD_ASSIGN_OR_RETURN(MappedRegion m, scratch_memfd());
  // Populate first: the probe must also see writes to present pages.
  for (size_t p = 0; p < kPages; p += 2) m.data()[p * kPage] = std::byte{1};
  FTD_ASSIGN_OR_RETURN(UniqueFd uffd, create_userfaultfd());
  FTD_ASSIGN_OR_RETURN(auto tracker, UffdWpTracker::arm(self_range(m), std::move(uffd)));
  return expect_exact(*tracker, m, {2, 5});
}

Status probe_soft_dirty() {
  FTD_ASSIGN_OR_RETURN(MappedRegion m, scratch_memfd());
  for (size_t p = 0; p < kPages; ++p) m.data()[p * kPage] = std::byte{1};
  FTD_ASSIGN_OR_RETURN(auto tracker, SoftDirtyTracker::open(self_range(m)));
  auto st = expect_exact(*tracker, m, {3});
  if (!st)
    return make_error(ErrorCode::kUnimplemented,
                      "{} (a kernel built without CONFIG_MEM_SOFT_DIRTY accepts clear_refs but "
                      "never sets pagemap bit 55)",
                      st.error().message);
  return ok();
}

}  // namespace ftd
