#include "tests/tracking/writer_child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "tracking/kernel_abi.h"

namespace ftd::testing {
namespace {

bool read_exact(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_exact(int fd, const void* buf, size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Child side: raw syscalls only (forked from a test process).
[[noreturn]] void child_main(int in, int out, std::byte* base) {
  int uffd = static_cast<int>(::syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY | O_CLOEXEC));
  char status = uffd >= 0 && ::dup2(uffd, WriterChild::kUffdFd) >= 0 ? 'R' : 'E';
  write_exact(out, &status, 1);
  for (;;) {
    uint32_t header[2];  // count, delta
    if (!read_exact(in, header, sizeof header)) ::_exit(0);
    uint32_t chunk[1024];
    for (uint32_t left = header[0]; left > 0;) {
      const uint32_t n = left < 1024 ? left : 1024;
      if (!read_exact(in, chunk, n * sizeof(uint32_t))) ::_exit(1);
      for (uint32_t i = 0; i < n; ++i) {
        auto* b = reinterpret_cast<volatile uint8_t*>(base + size_t{chunk[i]} * WriterChild::kPage +
                                                      (chunk[i] % 4000));
        *b = static_cast<uint8_t>(*b + header[1]);
      }
      left -= n;
    }
    char done = 'D';
    write_exact(out, &done, 1);
  }
}

}  // namespace

Result<WriterChild> WriterChild::start(size_t bytes) {
  WriterChild w;
  UniqueFd memfd(::memfd_create("ftd-writer-child", MFD_CLOEXEC));
  if (!memfd) return errno_error("memfd_create");
  if (::ftruncate(memfd.get(), static_cast<off_t>(bytes)) != 0) return errno_error("ftruncate");
  FTD_ASSIGN_OR_RETURN(w.view_, MappedRegion::map_fd(memfd.get(), bytes, true));
  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd down_r(down[0]), up_w(up[1]);
  w.to_child_.reset(down[1]);
  w.from_child_.reset(up[0]);
  w.pid_ = ::fork();
  if (w.pid_ < 0) return errno_error("fork");
  if (w.pid_ == 0) child_main(down_r.get(), up_w.get(), w.view_.data());
  char status = 0;
  if (!read_exact(w.from_child_.get(), &status, 1) || status != 'R')
    return make_error(ErrorCode::kIo, "writer child could not create its userfaultfd");
  return w;
}

Status WriterChild::write_pages(std::span<const uint32_t> pages, uint8_t delta) {
  const uint32_t header[2] = {static_cast<uint32_t>(pages.size()), delta};
  if (!write_exact(to_child_.get(), header, sizeof header) ||
      !write_exact(to_child_.get(), pages.data(), pages.size_bytes()))
    return errno_error("send pages to writer child");
  char done = 0;
  if (!read_exact(from_child_.get(), &done, 1) || done != 'D')
    return make_error(ErrorCode::kIo, "writer child did not finish");
  return ok();
}

WriterChild::~WriterChild() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

}  // namespace ftd::testing
