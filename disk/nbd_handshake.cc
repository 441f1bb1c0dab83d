#include "disk/nbd_handshake.h"

#include <algorithm>
#include <array>
#include <vector>

#include "disk/nbd_io.h"
#include "disk/nbd_protocol.h"

namespace ftd::nbd {
namespace {

// Options are tiny (an export name, a few info requests); a larger one is garbage.
constexpr uint32_t kMaxOptionBytes = 4096;
// A client that keeps sending options without choosing an export is broken.
constexpr int kMaxOptions = 64;

Status send(int fd, std::span<const std::byte> bytes) { return send_all(fd, bytes); }

Status send_option_reply(int fd, uint32_t option, uint32_t type,
                         std::span<const std::byte> data = {}) {
  std::vector<std::byte> b(20 + data.size());
  store_be(b, kOptReplyMagic, 8);
  store_be(std::span(b).subspan(8), option, 4);
  store_be(std::span(b).subspan(12), type, 4);
  store_be(std::span(b).subspan(16), data.size(), 4);
  std::copy(data.begin(), data.end(), b.begin() + 20);
  return send(fd, b);
}

Status send_export_info(int fd, uint32_t option, const ExportInfo& exp) {
  std::array<std::byte, 12> info{};
  store_be(info, kInfoExport, 2);
  store_be(std::span(info).subspan(2), exp.size, 8);
  store_be(std::span(info).subspan(10), exp.transmission_flags, 2);
  return send_option_reply(fd, option, kRepInfo, info);
}

Status send_block_size(int fd, uint32_t option, const ExportInfo& exp) {
  std::array<std::byte, 14> info{};
  store_be(info, kInfoBlockSize, 2);
  store_be(std::span(info).subspan(2), 1, 4);     // minimum: any byte granularity
  store_be(std::span(info).subspan(6), 4096, 4);  // preferred
  store_be(std::span(info).subspan(10), exp.max_request_bytes, 4);
  return send_option_reply(fd, option, kRepInfo, info);
}

// NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, count × u16.
// Returns true when the export was granted.
Result<bool> answer_info(int fd, uint32_t option, std::span<const std::byte> data,
                         const ExportInfo& exp) {
  if (data.size() < 6) return make_error(ErrorCode::kCorrupt, "NBD_OPT_GO shorter than 6 bytes");
  uint64_t name_len = load_be(data, 4);
  if (name_len > data.size() - 6) {
    FTD_TRY(send_option_reply(fd, option, kRepErrInvalid));
    return false;
  }
  auto name_bytes = data.subspan(4, name_len);
  uint64_t requests = load_be(data.subspan(4 + name_len), 2);
  if (data.size() != 6 + name_len + 2 * requests) {
    FTD_TRY(send_option_reply(fd, option, kRepErrInvalid));
    return false;
  }
  std::string name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
  // An empty name selects the default (only) export.
  if (!name.empty() && name != exp.name) {
    FTD_TRY(send_option_reply(fd, option, kRepErrUnknown));
    return false;
  }
  bool block_size_requested = false;
  for (uint64_t i = 0; i < requests; ++i)
    block_size_requested |= load_be(data.subspan(6 + name_len + 2 * i), 2) == kInfoBlockSize;
  FTD_TRY(send_export_info(fd, option, exp));
  if (block_size_requested) FTD_TRY(send_block_size(fd, option, exp));
  FTD_TRY(send_option_reply(fd, option, kRepAck));
  return true;
}

Status answer_list(int fd, const ExportInfo& exp) {
  std::vector<std::byte> entry(4 + exp.name.size());
  store_be(entry, exp.name.size(), 4);
  std::transform(exp.name.begin(), exp.name.end(), entry.begin() + 4,
                 [](char c) { return static_cast<std::byte>(c); });
  FTD_TRY(send_option_reply(fd, kOptList, kRepServer, entry));
  return send_option_reply(fd, kOptList, kRepAck);
}

// Old-style export selection: no reply header, just size and flags.
Status answer_export_name(int fd, const ExportInfo& exp, bool no_zeroes) {
  std::vector<std::byte> b(no_zeroes ? 10 : 10 + 124);
  store_be(b, exp.size, 8);
  store_be(std::span(b).subspan(8), exp.transmission_flags, 2);
  return send(fd, b);
}

}  // namespace

Result<HandshakeEnd> serve_handshake(int fd, const ExportInfo& exp) {
  std::array<std::byte, 18> hello{};
  store_be(hello, kMagic, 8);
  store_be(std::span(hello).subspan(8), kOptMagic, 8);
  store_be(std::span(hello).subspan(16), kFlagFixedNewstyle | kFlagNoZeroes, 2);
  FTD_TRY(send(fd, hello));

  std::array<std::byte, 4> client_flags_bytes;
  FTD_TRY(read_exact(fd, client_flags_bytes));
  uint64_t client_flags = load_be(client_flags_bytes, 4);
  if ((client_flags & ~uint64_t{kClientFlagsKnown}) != 0 ||
      (client_flags & kFlagFixedNewstyle) == 0)
    return make_error(ErrorCode::kCorrupt, "client flags {:#x} (fixed newstyle required)",
                      client_flags);
  const bool no_zeroes = (client_flags & kFlagNoZeroes) != 0;

  for (int n = 0; n < kMaxOptions; ++n) {
    std::array<std::byte, 16> head;
    FTD_TRY(read_exact(fd, head));
    if (load_be(head, 8) != kOptMagic)
      return make_error(ErrorCode::kCorrupt, "option without IHAVEOPT magic");
    auto option = static_cast<uint32_t>(load_be(std::span(head).subspan(8), 4));
    auto length = static_cast<uint32_t>(load_be(std::span(head).subspan(12), 4));
    if (length > kMaxOptionBytes)
      return make_error(ErrorCode::kCorrupt, "option {} of {} bytes (limit {})", option, length,
                        kMaxOptionBytes);
    std::vector<std::byte> data(length);
    FTD_TRY(read_exact(fd, data));
    switch (option) {
      case kOptExportName: {
        std::string name(reinterpret_cast<const char*>(data.data()), data.size());
        if (!name.empty() && name != exp.name)
          return make_error(ErrorCode::kNotFound, "client asked for export '{}'", name);
        FTD_TRY(answer_export_name(fd, exp, no_zeroes));
        return HandshakeEnd::kTransmission;
      }
      case kOptGo:
      case kOptInfo: {
        FTD_ASSIGN_OR_RETURN(bool granted, answer_info(fd, option, data, exp));
        if (granted && option == kOptGo) return HandshakeEnd::kTransmission;
        break;
      }
      case kOptList:
        if (length != 0) {
          FTD_TRY(send_option_reply(fd, option, kRepErrInvalid));
        } else {
          FTD_TRY(answer_list(fd, exp));
        }
        break;
      case kOptAbort:
        (void)send_option_reply(fd, option, kRepAck);  // the client may already be gone
        return HandshakeEnd::kAborted;
      default:
        FTD_TRY(send_option_reply(fd, option, kRepErrUnsup));
    }
  }
  return make_error(ErrorCode::kCorrupt, "{} options without choosing an export", kMaxOptions);
}

}  // namespace ftd::nbd
