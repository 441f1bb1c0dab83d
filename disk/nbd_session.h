// One client connection of the NBD server, start to end: the handshake, then
// requests until the client disconnects or sends what cannot be parsed.
// Writes, TRIMs and WRITE_ZEROES reach `log` before their reply; READ gets
// EIO (see nbd_server.h). Runs on the calling thread; returns when the
// session is over (the socket is shut down, not closed).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "disk/disk_write_log.h"
#include "disk/nbd_handshake.h"

namespace ftd::nbd {

// Shared by all sessions of a server.
struct SessionCounters {
  std::atomic<uint64_t> writes{0};           // WRITE/TRIM/WRITE_ZEROES recorded
  std::atomic<uint64_t> rejected{0};         // requests answered with an error
  std::atomic<uint64_t> protocol_errors{0};  // sessions closed on garbage
};

void serve_session(int fd, uint64_t id, const ExportInfo& exp,
                   std::chrono::milliseconds handshake_timeout, DiskWriteLog& log,
                   SessionCounters& counters);

}  // namespace ftd::nbd
