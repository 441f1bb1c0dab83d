// Blocking socket I/O for the NBD server. Reads: exactly n bytes or an error
// (EOF is kUnavailable, a receive timeout set with SO_RCVTIMEO kTimeout).
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

#include "common/result.h"

namespace ftd::nbd {

Status read_exact(int fd, std::span<std::byte> out);
// As read_exact, but a peer that closes before the first byte is `false`
// (a clean end between two requests), not an error.
Result<bool> read_exact_or_eof(int fd, std::span<std::byte> out);
// Sends all of `data`; MSG_NOSIGNAL: a peer that hung up is an error, not
// a SIGPIPE that kills the daemon.
Status send_all(int fd, std::span<const std::byte> data);
// SO_RCVTIMEO: a handshake that stalls becomes kTimeout; zero clears it.
Status set_receive_timeout(int fd, std::chrono::milliseconds timeout);

}  // namespace ftd::nbd
