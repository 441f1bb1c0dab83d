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

#include "common/byte_buffer.h"
#include "disk/nbd_handshake.h"
#include "disk/nbd_io.h"
#include "disk/nbd_protocol.h"
#include "disk/nbd_request.h"

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

Status send_reply(int fd, uint64_t handle, uint32_t error) {
  std::array<std::byte, nbd::kSimpleReplySize> b{};
  nbd::store_be(b, nbd::kSimpleReplyMagic, 4);
  nbd::store_be(std::span(b).subspan(4), error, 4);
  nbd::store_be(std::span(b).subspan(8), handle, 8);
  return nbd::send_all(fd, b);
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
  return NbdServerStats{n_connections_.load(), n_writes_.load(), n_rejected_.load(),
                        n_protocol_errors_.load()};
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
    conn.thread = std::thread([this, &conn, id] { serve(conn, id); });
  }
}

void NbdServer::serve(Connection& conn, uint64_t id) {
  const int fd = conn.fd.get();
  nbd::ExportInfo exp{
      options_.export_name, options_.export_size,
      nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim | nbd::kFlagSendWriteZeroes,
      options_.max_request_bytes};
  Status status = nbd::set_receive_timeout(fd, options_.handshake_timeout);
  Result<nbd::HandshakeEnd> end = status
                                      ? nbd::serve_handshake(fd, exp)
                                      : Result<nbd::HandshakeEnd>(std::unexpected(status.error()));
  if (!end) {
    ++n_protocol_errors_;
    spdlog::warn("disk.nbd_handshake_failed conn={} error=\"{}\" action=close", id,
                 end.error().to_string());
  } else if (*end == nbd::HandshakeEnd::kAborted) {
    spdlog::info("disk.nbd_session conn={} end=aborted_in_handshake", id);
  } else {
    spdlog::info("disk.nbd_session conn={} export={} size={} state=transmission", id, exp.name,
                 exp.size);
    // Requests may be idle for any time once the export is open.
    status = nbd::set_receive_timeout(fd, std::chrono::milliseconds(0));
    if (status) status = transmission(fd, id);
    if (!status) {
      ++n_protocol_errors_;
      spdlog::warn("disk.nbd_session conn={} end=error error=\"{}\" action=close", id,
                   status.error().to_string());
    } else {
      spdlog::info("disk.nbd_session conn={} end=disconnect", id);
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  conn.done.store(true);
}

Status NbdServer::transmission(int fd, uint64_t id) {
  ByteBuffer payload;
  bool read_warned = false;
  while (true) {
    std::array<std::byte, nbd::kRequestHeaderSize> header;
    // A client that closes between requests just left (QEMU does on exit).
    FTD_ASSIGN_OR_RETURN(bool more, nbd::read_exact_or_eof(fd, header));
    if (!more) return ok();
    FTD_ASSIGN_OR_RETURN(nbd::Request req, nbd::parse_request(header));
    const auto cmd = static_cast<nbd::Command>(req.type);
    if (cmd == nbd::Command::kWrite && req.length > options_.max_request_bytes) {
      // Reading an arbitrary payload to skip it would let a peer stall us
      // for gigabytes; the stream is not worth saving.
      return make_error(ErrorCode::kResourceExhausted, "write of {} bytes (limit {})", req.length,
                        options_.max_request_bytes);
    }
    uint32_t error = nbd::validate_request(req, options_.export_size, options_.max_request_bytes);
    if (cmd == nbd::Command::kWrite) {
      payload.resize(req.length);
      FTD_TRY(nbd::read_exact(fd, payload));
    }
    if (error != 0) {
      ++n_rejected_;
      spdlog::warn(
          "disk.nbd_rejected conn={} cmd={} offset={} length={} export_size={} nbd_error={}", id,
          nbd::command_name(req.type), req.offset, req.length, options_.export_size, error);
      FTD_TRY(send_reply(fd, req.handle, error));
      continue;
    }
    Result<uint64_t> recorded = 0;
    switch (cmd) {
      case nbd::Command::kDisconnect:
        return ok();
      case nbd::Command::kRead:
        if (!read_warned)
          spdlog::warn("disk.nbd_read_refused conn={} offset={} length={} reason=write_only_target",
                       id, req.offset, req.length);
        read_warned = true;
        ++n_rejected_;
        FTD_TRY(send_reply(fd, req.handle, nbd::kEio));
        continue;
      case nbd::Command::kFlush:
        break;  // the log is the destination; durability is the replica's job
      case nbd::Command::kWrite:
        recorded = log_.append_data(req.offset, payload);
        break;
      case nbd::Command::kTrim:
      case nbd::Command::kWriteZeroes:
        recorded = log_.append_zeroes(req.offset, req.length);
        break;
    }
    if (!recorded) {
      // Not recorded, so not acknowledged: QEMU's mirror fails the job and
      // the disk is reported unprotected.
      ++n_rejected_;
      spdlog::error("disk.nbd_write_not_recorded conn={} offset={} length={} error=\"{}\"", id,
                    req.offset, req.length, recorded.error().to_string());
      FTD_TRY(send_reply(fd, req.handle, nbd::kEio));
      continue;
    }
    if (cmd != nbd::Command::kFlush) ++n_writes_;
    FTD_TRY(send_reply(fd, req.handle, 0));
  }
}

}  // namespace ftd
