// Reading /proc/<pid>/maps: where a file (memfd) is mapped, and by whom.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

struct MapEntry {
  pid_t pid = -1;
  uint64_t start = 0;
  uint64_t end = 0;
  bool writable = false;
  bool shared = false;
  uint64_t inode = 0;
  std::string path;
};

// Mappings of inode `inode` in process `pid`.
Result<std::vector<MapEntry>> mappings_of_inode(pid_t pid, uint64_t inode);
// Mappings of `inode` in every process on the host (those we may read).
std::vector<MapEntry> mappings_of_inode_everywhere(uint64_t inode);
// Parses one maps line; false when it is not one.
bool parse_maps_line(const std::string& line, MapEntry& out);

}  // namespace ftd
