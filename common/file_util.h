// Whole-file helpers for small state files (replica meta, device state,
// witness state): every error names the path; a full disk is an error that
// leaves the previous file in place.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ftd {

// Writes all of `data` to a blocking fd (retrying short writes and EINTR);
// `what` names the file in errors.
Status write_all(int fd, std::span<const std::byte> data, std::string_view what);

// Replaces `path` atomically: temp file, fsync, rename. Readers see the old
// or the new contents, never a mix, even across a crash.
Status write_file_atomic(const std::string& path, std::span<const std::byte> data);

Result<std::vector<std::byte>> read_file(const std::string& path);

}  // namespace ftd
