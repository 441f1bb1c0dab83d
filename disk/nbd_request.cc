#include "disk/nbd_request.h"

#include <fmt/format.h>

#include "disk/nbd_protocol.h"

namespace ftd::nbd {

Result<Request> parse_request(std::span<const std::byte> h) {
  if (h.size() != kRequestHeaderSize)
    return make_error(ErrorCode::kCorrupt, "request header of {} bytes", h.size());
  if (load_be(h, 4) != kRequestMagic)
    return make_error(ErrorCode::kCorrupt, "request magic {:#x}", load_be(h, 4));
  Request r;
  r.flags = static_cast<uint16_t>(load_be(h.subspan(4), 2));
  r.type = static_cast<uint16_t>(load_be(h.subspan(6), 2));
  r.handle = load_be(h.subspan(8), 8);
  r.offset = load_be(h.subspan(16), 8);
  r.length = static_cast<uint32_t>(load_be(h.subspan(24), 4));
  return r;
}

uint32_t validate_request(const Request& r, uint64_t export_size, uint32_t max_request_bytes) {
  // Overflow-safe "offset + length <= size".
  const bool in_range = r.offset <= export_size && r.length <= export_size - r.offset;
  switch (static_cast<Command>(r.type)) {
    case Command::kDisconnect:
      return 0;
    case Command::kFlush:
      return r.offset == 0 && r.length == 0 ? 0 : kEinval;
    case Command::kRead:
      if (r.length == 0 || r.length > max_request_bytes || !in_range) return kEinval;
      return 0;
    case Command::kWrite:
      if (r.length == 0 || r.length > max_request_bytes) return kEinval;
      return in_range ? 0 : kEnospc;
    case Command::kTrim:
    case Command::kWriteZeroes:
      if (r.length == 0) return kEinval;
      return in_range ? 0 : kEnospc;
  }
  return kEinval;
}

std::string command_name(uint16_t type) {
  switch (static_cast<Command>(type)) {
    case Command::kRead:
      return "read";
    case Command::kWrite:
      return "write";
    case Command::kDisconnect:
      return "disc";
    case Command::kFlush:
      return "flush";
    case Command::kTrim:
      return "trim";
    case Command::kWriteZeroes:
      return "write_zeroes";
  }
  return fmt::format("cmd-{}", type);
}

}  // namespace ftd::nbd
