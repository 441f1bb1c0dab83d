#include "qemu/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace ftd {
namespace {

Result<sockaddr_un> make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "unix socket path '{}' is empty or longer than {} bytes", path,
                      sizeof(addr.sun_path) - 1);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

int remaining_ms(Deadline deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

UnixListener& UnixListener::operator=(UnixListener&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) ::unlink(path_.c_str());
    fd_ = std::move(o.fd_);
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

UnixListener::~UnixListener() {
  if (fd_ && !path_.empty()) ::unlink(path_.c_str());
}

Result<UnixListener> UnixListener::listen(const std::string& path) {
  FTD_ASSIGN_OR_RETURN(sockaddr_un addr, make_addr(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("bind " + path);
  if (::listen(fd.get(), 4) != 0) return errno_error("listen " + path);
  UnixListener l;
  l.fd_ = std::move(fd);
  l.path_ = path;
  return l;
}

Result<UniqueFd> UnixListener::accept(Deadline deadline) {
  FTD_TRY(wait_fd(fd_.get(), POLLIN, deadline, "accept on " + path_));
  UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return errno_error("accept " + path_);
  return conn;
}

Result<UniqueFd> connect_unix(const std::string& path) {
  FTD_ASSIGN_OR_RETURN(sockaddr_un addr, make_addr(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("connect " + path);
  return fd;
}

Status wait_fd(int fd, short events, Deadline deadline, std::string_view what) {
  while (true) {
    pollfd p{.fd = fd, .events = events, .revents = 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return ok();  // readable, writable, HUP or ERR: the next syscall tells which
    if (r < 0 && errno != EINTR) return errno_error(fmt::format("poll ({})", what));
    if (r == 0) return make_error(ErrorCode::kTimeout, "timed out waiting: {}", what);
  }
}

Result<std::vector<std::byte>> read_until_eof(int fd, Deadline deadline, size_t max_bytes) {
  std::vector<std::byte> out;
  out.reserve(512 * 1024);
  std::byte buf[64 * 1024];
  while (true) {
    FTD_TRY(wait_fd(fd, POLLIN, deadline,
                    fmt::format("end of stream (got {} bytes so far)", out.size())));
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return out;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno_error(fmt::format("read stream after {} bytes", out.size()));
    }
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return make_error(ErrorCode::kCorrupt, "stream exceeds {} bytes", max_bytes);
    out.insert(out.end(), buf, buf + n);
  }
}

Status write_all(int fd, std::span<const std::byte> data, Deadline deadline) {
  size_t done = 0;
  while (done < data.size()) {
    FTD_TRY(wait_fd(fd, POLLOUT, deadline,
                    fmt::format("stream writable ({} of {} bytes sent)", done, data.size())));
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno_error(fmt::format("write stream after {} of {} bytes", done, data.size()));
    }
    done += static_cast<size_t>(n);
  }
  return ok();
}

}  // namespace ftd
