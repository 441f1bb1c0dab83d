#include "disk/nbd_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <spdlog/spdlog.h>

#include "disk/nbd_protocol.h"

namespace ftd {
namespace {

Result<UniqueFd> listen_unix_private(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return make_error(ErrorCode::kInvalidArgument, "NBD socket path '{}' empty or longer than {}",
                      path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  ::unlink(path.c_str());  // a stale socket of a previous run
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("bind " + path);
  // Before listen(): nobody can connect while the mode is still wider.
  if (::chmod(path.c_str(), 0600) != 0) return errno_error("chmod " + path);
  if (::listen(fd.get(), 8) != 0) return errno_error("listen " + path);
  return fd;
}

}  // namespace

Result<std::unique_ptr<NbdServer>> NbdServer::start(NbdServerOptions options, DiskWriteLog& log) {
  if (options.export_size == 0)
    return make_error(ErrorCode::kInvalidArgument, "NBD export '{}' has size 0",
                      options.export_name);
  FTD_ASSIGN_OR_RETURN(UniqueFd listener, listen_unix_private(options.socket_path));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC));
  if (!wake) return errno_error("eventfd");
  std::unique_ptr<NbdServer> server(
      new NbdServer(std::move(options), log, std::move(listener), std::move(wake)));
  server->accept_thread_ = std::thread([s = server.get()] { s->accept_loop(); });
  spdlog::info("disk.nbd_listen socket={} export={} size={} max_request={}",
               server->options_.socket_path, server->options_.export_name,
               server->options_.export_size, server->options_.max_request_bytes);
  return server;
}

NbdServer::~NbdServer() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Connection> connections;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    connections.swap(connections_);
  }
  // shutdown() wakes a thread blocked in recv; the fds close after the joins.
  for (Connection& c : connections) ::shutdown(c.fd.get(), SHUT_RDWR);
  for (Connection& c : connections) c.thread.join();
  ::unlink(options_.socket_path.c_str());
}

NbdServerStats NbdServer::stats() const {
  return NbdServerStats{n_connections_.load(), counters_.writes.load(), counters_.rejected.load(),
                        counters_.protocol_errors.load()};
}

nbd::ExportInfo NbdServer::export_info() const {
  return {options_.export_name, options_.export_size,
          nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim | nbd::kFlagSendWriteZeroes,
          options_.max_request_bytes};
}

void NbdServer::reap_finished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void NbdServer::accept_loop() {
  while (true) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("disk.nbd_poll_failed errno={} action=stop_accepting", errno);
      return;
    }
    if (fds[1].revents != 0) return;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    MutexLock lock(mu_);
    if (stopping_) return;
    reap_finished();
    if (connections_.size() >= options_.max_connections) {
      spdlog::warn("disk.nbd_refused reason=too_many_connections limit={}",
                   options_.max_connections);
      continue;  // fd closes here
    }
    uint64_t id = ++n_connections_;
    Connection& conn = connections_.emplace_back();
    conn.fd = std::move(fd);
    conn.thread = std::thread([this, &conn, id] {
      nbd::serve_session(conn.fd.get(), id, export_info(), options_.handshake_timeout, log_,
                         counters_);
      conn.done.store(true);
    });
  }
}

}  // namespace ftd
