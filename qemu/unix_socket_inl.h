// Template part of unix_socket.h.
#pragma once

#include <cerrno>
#include <thread>

namespace ftd {

template <typename Pred>
Result<UniqueFd> connect_unix_retry(const std::string& path, Deadline deadline,
                                    Pred still_worth_waiting) {
  while (true) {
    auto fd = connect_unix(path);
    if (fd) return fd;
    if (fd.error().code == ErrorCode::kInvalidArgument) return fd;
    if (!still_worth_waiting()) return fd;
    if (Clock::now() >= deadline) {
      return make_error(ErrorCode::kTimeout, "timed out connecting to {}: {}", path,
                        fd.error().message);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace ftd
