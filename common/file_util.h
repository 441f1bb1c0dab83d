// Whole-file helpers for small state files (replica meta, device state,
// witness state): every error names the path; a full disk is an error that
// leaves the previous file in place.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ftd {

// Writes all of `data` to a blocking fd (retrying short writes and EINTR);
// `what` names the file in errors.
Status write_all(int fd, std::span<const std::byte> data, std::string_view what);

// Positional forms, for files written in place (undo logs, disk images):
// pwrite_all retries short writes and EINTR; pread_all reads until `data` is
// full or the file ends and returns how many bytes it read.
Status pwrite_all(int fd, std::span<const std::byte> data, uint64_t offset, std::string_view what);
Result<size_t> pread_all(int fd, std::span<std::byte> data, uint64_t offset, std::string_view what);

// Replaces `path` atomically: temp file, fsync, rename. Readers see the old
// or the new contents, never a mix, even across a crash.
Status write_file_atomic(const std::string& path, std::span<const std::byte> data);

Result<std::vector<std::byte>> read_file(const std::string& path);

}  // namespace ftd
