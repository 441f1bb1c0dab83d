#include "common/result.h"

#include <cerrno>
#include <cstring>

namespace ftd {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kIo:
      return "i/o error";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kUnimplemented:
      return "not implemented";
    case ErrorCode::kResourceExhausted:
      return "resource exhausted";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::unexpected<Error> errno_error(std::string_view what) {
  int e = errno;
  return std::unexpected(Error{ErrorCode::kIo, fmt::format("{}: {}", what, std::strerror(e))});
}

}  // namespace ftd
