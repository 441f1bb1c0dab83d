// Status returns for I/O paths: an Error carries a code and a human message;
// Result<T> is std::expected<T, Error>. Exceptions never cross threads.
#pragma once

#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace ftd {

enum class ErrorCode {
  kInvalidArgument,  // caller's input is wrong (unknown VM, bad flag)
  kNotFound,
  kCorrupt,  // malformed/truncated/checksum mismatch
  kIo,       // syscall or socket failure
  kTimeout,
  kUnavailable,  // peer gone / not connected
  kFailedPrecondition,
  kUnimplemented,
  kResourceExhausted,  // a peer asks for more than we allow (oversized message, full disk)
  kInternal,
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "context: message", keeping the code. Used to add where an error passed through.
  Error with_context(std::string_view context) const {
    return Error{code, fmt::format("{}: {}", context, message)};
  }
  std::string to_string() const { return fmt::format("{} ({})", message, ftd::to_string(code)); }
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

template <typename... Args>
std::unexpected<Error> make_error(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{code, fmt::format(f, std::forward<Args>(args)...)});
}

// Error from errno after a failed syscall: "what: strerror(errno)".
std::unexpected<Error> errno_error(std::string_view what);

inline Status ok() { return {}; }

}  // namespace ftd

// Propagates an error from an expression yielding Status/Result<T>.
#define FTD_TRY(expr)                                    \
  do {                                                   \
    if (auto _ftd_r = (expr); !_ftd_r) {                 \
      return std::unexpected(std::move(_ftd_r).error()); \
    }                                                    \
  } while (0)

#define FTD_CONCAT_INNER(a, b) a##b
#define FTD_CONCAT(a, b) FTD_CONCAT_INNER(a, b)
// FTD_ASSIGN_OR_RETURN(auto x, expr): binds the value or returns the error.
#define FTD_ASSIGN_OR_RETURN(lhs, expr) \
  FTD_ASSIGN_OR_RETURN_IMPL(FTD_CONCAT(_ftd_res_, __LINE__), lhs, expr)
#define FTD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)           \
  auto tmp = (expr);                                        \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)
