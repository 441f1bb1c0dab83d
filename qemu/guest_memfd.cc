#include "qemu/guest_memfd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <spdlog/spdlog.h>

namespace ftd {

Result<GuestMemfd> find_guest_memfd(pid_t pid, std::optional<uint64_t> expected_size) {
  std::string dir = fmt::format("/proc/{}/fd", pid);
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "cannot list {}: {}", dir, ec.message());
  GuestMemfd best;
  std::string seen;  // memfds that did not fit, for the error message
  for (const auto& entry : it) {
    std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (ec || !target.starts_with("/memfd:")) continue;
    UniqueFd fd(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;  // closed meanwhile
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    auto size = static_cast<uint64_t>(st.st_size);
    int n = std::stoi(entry.path().filename().string());
    if (expected_size ? size == *expected_size : size > best.size) {
      best = GuestMemfd{std::move(fd), size, n};
      if (expected_size) break;
    } else {
      seen += fmt::format(" {}({} bytes)", target, size);
    }
  }
  if (!best.fd) {
    return make_error(ErrorCode::kNotFound,
                      "no guest RAM memfd{} in {} (is QEMU started with "
                      "memory-backend-memfd,share=on?) memfds seen:{}",
                      expected_size ? fmt::format(" of {} bytes", *expected_size) : "", dir,
                      seen.empty() ? " none" : seen);
  }
  spdlog::debug("qemu.memfd pid={} fd={} bytes={}", pid, best.qemu_fd, best.size);
  return best;
}

}  // namespace ftd
