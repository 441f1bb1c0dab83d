// The server side of the NBD fixed-newstyle handshake for one export: what
// QEMU 7.2's client and libnbd send. NBD_OPT_GO / INFO / EXPORT_NAME / LIST /
// ABORT are answered; every other option (STARTTLS, STRUCTURED_REPLY, meta
// contexts) gets NBD_REP_ERR_UNSUP, so clients fall back to simple replies.
// Anything malformed is an error: the caller logs it and closes the socket
// (the byte stream cannot be resynchronised).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace ftd::nbd {

struct ExportInfo {
  std::string name;
  uint64_t size = 0;
  uint16_t transmission_flags = 0;
  uint32_t max_request_bytes = 0;  // advertised as NBD_INFO_BLOCK_SIZE maximum
};

enum class HandshakeEnd {
  kTransmission,  // the client chose the export: requests follow
  kAborted,       // the client ended the session (NBD_OPT_ABORT)
};

Result<HandshakeEnd> serve_handshake(int fd, const ExportInfo& exp);

}  // namespace ftd::nbd
