#include "disk/nbd_io.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

namespace ftd::nbd {

Status read_exact(int fd, std::span<std::byte> out) {
  FTD_ASSIGN_OR_RETURN(bool got, read_exact_or_eof(fd, out));
  if (!got) return make_error(ErrorCode::kUnavailable, "peer closed before {} bytes", out.size());
  return ok();
}

Result<bool> read_exact_or_eof(int fd, std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::recv(fd, out.data() + done, out.size() - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0 && done == 0) return false;
    if (n == 0)
      return make_error(ErrorCode::kUnavailable, "peer closed after {} of {} bytes", done,
                        out.size());
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return make_error(ErrorCode::kTimeout, "peer sent {} of {} bytes in time", done, out.size());
    return errno_error("nbd recv");
  }
  return true;
}

Status send_all(int fd, std::span<const std::byte> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("nbd send");
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status set_receive_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{.tv_sec = static_cast<time_t>(timeout.count() / 1000),
             .tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return errno_error("setsockopt SO_RCVTIMEO");
  return ok();
}

}  // namespace ftd::nbd
