#include "tracking/process_maps.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace ftd {

bool parse_maps_line(const std::string& line, MapEntry& out) {
  // "start-end perms offset dev inode   path"
  unsigned long long start = 0, end = 0, inode = 0;
  char perms[8] = {};
  int path_at = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %llu %n", &start, &end, perms, &inode,
                  &path_at) < 4)
    return false;
  out.start = start;
  out.end = end;
  out.writable = perms[1] == 'w';
  out.shared = perms[3] == 's';
  out.inode = inode;
  out.path = path_at > 0 && static_cast<size_t>(path_at) <= line.size() ? line.substr(path_at) : "";
  return true;
}

namespace {

void scan_maps(pid_t pid, uint64_t inode, std::ifstream& in, std::vector<MapEntry>& out) {
  std::string line;
  while (std::getline(in, line)) {
    MapEntry e;
    if (parse_maps_line(line, e) && e.inode == inode) {
      e.pid = pid;
      out.push_back(std::move(e));
    }
  }
}

}  // namespace

Result<std::vector<MapEntry>> mappings_of_inode(pid_t pid, uint64_t inode) {
  const std::string path = fmt::format("/proc/{}/maps", pid);
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read {}", path);
  std::vector<MapEntry> out;
  scan_maps(pid, inode, in, out);
  return out;
}

std::vector<MapEntry> mappings_of_inode_everywhere(uint64_t inode) {
  std::vector<MapEntry> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "maps");
    if (!in) continue;  // exited meanwhile, or not ours to read
    scan_maps(static_cast<pid_t>(std::stol(name)), inode, in, out);
  }
  return out;
}

}  // namespace ftd
