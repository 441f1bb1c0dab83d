// A forked child that writes a shared memfd on command, holding a
// userfaultfd it created itself at a known fd number: the same situation as
// QEMU with libftd_uffd_preload.so, small enough for exact oracles. The
// parent maps the same memfd separately (its writes bypass the child's page
// tables, like a vhost-user back-end's).
// Thread contract: one test thread uses it; the destructor kills the child.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/mapped_region.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd::testing {

class WriterChild {
 public:
  static constexpr int kUffdFd = 900;
  static constexpr size_t kPage = 4096;

  static Result<WriterChild> start(size_t bytes);
  WriterChild(WriterChild&& o) noexcept
      : view_(std::move(o.view_)),
        to_child_(std::move(o.to_child_)),
        from_child_(std::move(o.from_child_)),
        pid_(std::exchange(o.pid_, -1)) {}
  WriterChild& operator=(WriterChild&&) = delete;
  ~WriterChild();

  pid_t pid() const { return pid_; }
  // Where the memfd is mapped in the child (same address as ours: mapped before fork).
  uint64_t address() const { return reinterpret_cast<uint64_t>(view_.data()); }
  size_t bytes() const { return view_.size(); }
  size_t pages() const { return view_.size() / kPage; }
  // Our own mapping of the same pages.
  std::span<std::byte> parent_view() const { return view_.bytes(); }

  // The child adds `delta` to one byte of each page (in order) and answers when done.
  Status write_pages(std::span<const uint32_t> pages, uint8_t delta = 1);

 private:
  WriterChild() = default;
  MappedRegion view_;
  UniqueFd to_child_, from_child_;
  pid_t pid_ = -1;
};

}  // namespace ftd::testing
