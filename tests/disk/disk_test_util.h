// Shared by the disk suites: a private temp directory and byte patterns that
// say where they were written.
#pragma once

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ftd::testing {

class DiskTempDir {
 public:
  DiskTempDir() {
    char tmpl[] = "/tmp/ftd-disk-test-XXXXXX";  // short: unix socket paths
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~DiskTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// `n` bytes that differ per (seed, position), so a misplaced or reordered
// write shows up.
inline std::vector<std::byte> pattern(uint64_t seed, size_t n) {
  std::vector<std::byte> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
  return out;
}

}  // namespace ftd::testing
