// Minimal blocking-with-deadline unix stream sockets: the QMP connection, the
// device-state stream QEMU migrates into, and the stream we feed a standby.
// Every call takes a deadline so a dead or stuck QEMU becomes an error, not a hang.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadline_after(std::chrono::milliseconds d) { return Clock::now() + d; }
// Time left until `deadline`, at least 1 ms (a timeout of 0 would mean "no wait").
inline std::chrono::milliseconds time_left(Deadline deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(d, std::chrono::milliseconds(1));
}
double ms_since(Clock::time_point start);

// A listening unix socket; the path is unlinked on destruction.
class UnixListener {
 public:
  UnixListener() = default;
  UnixListener(UnixListener&&) noexcept = default;
  UnixListener& operator=(UnixListener&&) noexcept;
  ~UnixListener();

  // Replaces a stale socket file at `path`.
  static Result<UnixListener> listen(const std::string& path);
  Result<UniqueFd> accept(Deadline deadline);
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
};

// One connect attempt (non-blocking sockets are not used: a unix connect is immediate).
Result<UniqueFd> connect_unix(const std::string& path);
// Retries connect until the deadline: QEMU creates its sockets asynchronously.
// `still_worth_waiting` lets the caller stop early (e.g. the QEMU process exited).
template <typename Pred>
Result<UniqueFd> connect_unix_retry(const std::string& path, Deadline deadline,
                                    Pred still_worth_waiting);

// Milliseconds left until `deadline` (0 when past), for poll().
int remaining_ms(Deadline deadline);
// Waits until `fd` is readable/writable; kTimeout past the deadline.
Status wait_fd(int fd, short events, Deadline deadline, std::string_view what);
// Reads until EOF; error on timeout or when more than `max_bytes` arrive.
Result<std::vector<std::byte>> read_until_eof(int fd, Deadline deadline, size_t max_bytes);
Status write_all(int fd, std::span<const std::byte> data, Deadline deadline);

}  // namespace ftd

#include "qemu/unix_socket_inl.h"
