// One NBD transmission-phase request: parsing its 28-byte header and deciding
// whether it may run. Pure functions, no I/O (unit-tested on their own).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"

namespace ftd::nbd {

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// kCorrupt when the magic is wrong: the stream is lost, close the connection.
Result<Request> parse_request(std::span<const std::byte> header);

// The error to reply with (NBD errno), or 0 when the request may run:
// unknown command or flush with a range → EINVAL; empty or out-of-range
// read → EINVAL; out-of-range write/trim/zeroes → ENOSPC; a read or write
// longer than `max_request_bytes` → EINVAL.
uint32_t validate_request(const Request& r, uint64_t export_size, uint32_t max_request_bytes);

// For log lines: "write" / "trim" / "cmd-9".
std::string command_name(uint16_t type);

}  // namespace ftd::nbd
