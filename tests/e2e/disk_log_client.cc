#include "tests/e2e/disk_log_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common/result.h"

namespace ftd::testing {
namespace {

Result<UniqueFd> connect_once(const std::string& host, int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return make_error(ErrorCode::kIo, "socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return make_error(ErrorCode::kInvalidArgument, "bad address {}", host);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return make_error(ErrorCode::kUnavailable, "connect {}:{}: {}", host, port,
                      std::strerror(errno));
  return fd;
}

}  // namespace

Result<std::unique_ptr<DiskLogClient>> DiskLogClient::connect(const HostLan& lan, HostId from,
                                                              const std::string& host, int port,
                                                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto fd = lan.run_in(from, [&] { return connect_once(host, port); });
    if (fd) return std::unique_ptr<DiskLogClient>(new DiskLogClient(std::move(*fd)));
    if (std::chrono::steady_clock::now() > deadline)
      return std::unexpected(fd.error().with_context("disk log client"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

DiskLogClient::DiskLogClient(UniqueFd fd) : fd_(std::move(fd)) {
  reader_ = std::thread([this] { read_loop(); });
}

DiskLogClient::~DiskLogClient() {
  ::shutdown(fd_.get(), SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
}

void DiskLogClient::read_loop() {
  std::string buf;
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n <= 0) {
      std::lock_guard lock(mu_);
      if (progress_.unmounted == 0)
        progress_.error = n == 0 ? "connection closed" : std::strerror(errno);
      cv_.notify_all();
      return;
    }
    buf.append(chunk, static_cast<size_t>(n));
    size_t eol;
    while ((eol = buf.find('\n')) != std::string::npos) {
      const std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 1);
      unsigned long long v = 0;
      std::lock_guard lock(mu_);
      if (std::sscanf(line.c_str(), "fsynced %llu", &v) == 1) {
        if (progress_.lines == 0)
          progress_.first = v;
        else if (v != progress_.last + 1)
          ++progress_.breaks;
        progress_.last = std::max<uint64_t>(progress_.last, v);
        ++progress_.lines;
      } else if (std::sscanf(line.c_str(), "unmounted %llu", &v) == 1) {
        progress_.unmounted = v;
      } else {
        progress_.error = "unexpected line: " + line;
      }
      cv_.notify_all();
    }
  }
}

DiskLogProgress DiskLogClient::progress() const {
  std::lock_guard lock(mu_);
  return progress_;
}

bool DiskLogClient::wait_for(uint64_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return progress_.last >= n || !progress_.error.empty();
  }) && progress_.last >= n;
}

Result<uint64_t> DiskLogClient::stop(std::chrono::milliseconds timeout) {
  if (::send(fd_.get(), "q", 1, MSG_NOSIGNAL) != 1)
    return make_error(ErrorCode::kIo, "send stop: {}", std::strerror(errno));
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout,
                    [&] { return progress_.unmounted != 0 || !progress_.error.empty(); }))
    return make_error(ErrorCode::kTimeout, "no 'unmounted' answer within {} ms (last record {})",
                      timeout.count(), progress_.last);
  if (progress_.unmounted == 0)
    return make_error(ErrorCode::kIo, "disk log stream ended: {}", progress_.error);
  return progress_.unmounted;
}

}  // namespace ftd::testing
