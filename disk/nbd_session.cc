#include "disk/nbd_session.h"

#include <sys/socket.h>

#include <array>

#include <spdlog/spdlog.h>

#include "common/byte_buffer.h"
#include "disk/nbd_io.h"
#include "disk/nbd_protocol.h"
#include "disk/nbd_request.h"

namespace ftd::nbd {
namespace {

Status send_reply(int fd, uint64_t handle, uint32_t error) {
  std::array<std::byte, kSimpleReplySize> b{};
  store_be(b, kSimpleReplyMagic, 4);
  store_be(std::span(b).subspan(4), error, 4);
  store_be(std::span(b).subspan(8), handle, 8);
  return send_all(fd, b);
}

Status transmission(int fd, uint64_t id, const ExportInfo& exp, DiskWriteLog& log,
                    SessionCounters& counters) {
  ByteBuffer payload;
  bool read_warned = false;
  while (true) {
    std::array<std::byte, kRequestHeaderSize> header;
    // A client that closes between requests just left (QEMU does on exit).
    FTD_ASSIGN_OR_RETURN(bool more, read_exact_or_eof(fd, header));
    if (!more) return ok();
    FTD_ASSIGN_OR_RETURN(Request req, parse_request(header));
    const auto cmd = static_cast<Command>(req.type);
    if (cmd == Command::kWrite && req.length > exp.max_request_bytes) {
      // Reading an arbitrary payload to skip it would let a peer stall us
      // for gigabytes; the stream is not worth saving.
      return make_error(ErrorCode::kResourceExhausted, "write of {} bytes (limit {})", req.length,
                        exp.max_request_bytes);
    }
    uint32_t error = validate_request(req, exp.size, exp.max_request_bytes);
    if (cmd == Command::kWrite) {
      payload.resize(req.length);
      FTD_TRY(read_exact(fd, payload));
    }
    if (error != 0) {
      ++counters.rejected;
      spdlog::warn(
          "disk.nbd_rejected conn={} cmd={} offset={} length={} export_size={} nbd_error={}", id,
          command_name(req.type), req.offset, req.length, exp.size, error);
      FTD_TRY(send_reply(fd, req.handle, error));
      continue;
    }
    Result<uint64_t> recorded = 0;
    switch (cmd) {
      case Command::kDisconnect:
        return ok();
      case Command::kRead:
        if (!read_warned)
          spdlog::warn("disk.nbd_read_refused conn={} offset={} length={} reason=write_only_target",
                       id, req.offset, req.length);
        read_warned = true;
        ++counters.rejected;
        FTD_TRY(send_reply(fd, req.handle, kEio));
        continue;
      case Command::kFlush:
        break;  // the log is the destination; durability is the replica's job
      case Command::kWrite:
        recorded = log.append_data(req.offset, payload);
        break;
      case Command::kTrim:
      case Command::kWriteZeroes:
        recorded = log.append_zeroes(req.offset, req.length);
        break;
    }
    if (!recorded) {
      // Not recorded, so not acknowledged: QEMU's mirror fails the job and
      // the disk is reported unprotected.
      ++counters.rejected;
      spdlog::error("disk.nbd_write_not_recorded conn={} offset={} length={} error=\"{}\"", id,
                    req.offset, req.length, recorded.error().to_string());
      FTD_TRY(send_reply(fd, req.handle, kEio));
      continue;
    }
    if (cmd != Command::kFlush) ++counters.writes;
    FTD_TRY(send_reply(fd, req.handle, 0));
  }
}

}  // namespace

void serve_session(int fd, uint64_t id, const ExportInfo& exp,
                   std::chrono::milliseconds handshake_timeout, DiskWriteLog& log,
                   SessionCounters& counters) {
  Status status = set_receive_timeout(fd, handshake_timeout);
  Result<HandshakeEnd> end =
      status ? serve_handshake(fd, exp) : Result<HandshakeEnd>(std::unexpected(status.error()));
  if (!end) {
    ++counters.protocol_errors;
    spdlog::warn("disk.nbd_handshake_failed conn={} error=\"{}\" action=close", id,
                 end.error().to_string());
  } else if (*end == HandshakeEnd::kAborted) {
    spdlog::info("disk.nbd_session conn={} end=aborted_in_handshake", id);
  } else {
    spdlog::info("disk.nbd_session conn={} export={} size={} state=transmission", id, exp.name,
                 exp.size);
    // Requests may be idle for any time once the export is open.
    status = set_receive_timeout(fd, std::chrono::milliseconds(0));
    if (status) status = transmission(fd, id, exp, log, counters);
    if (!status) {
      ++counters.protocol_errors;
      spdlog::warn("disk.nbd_session conn={} end=error error=\"{}\" action=close", id,
                   status.error().to_string());
    } else {
      spdlog::info("disk.nbd_session conn={} end=disconnect", id);
    }
  }
  ::shutdown(fd, SHUT_RDWR);
}

}  // namespace ftd::nbd
