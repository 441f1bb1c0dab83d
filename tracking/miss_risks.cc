#include "tracking/miss_risks.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "tracking/process_maps.h"

namespace ftd {

bool MissRiskReport::refused() const {
  for (const auto& r : risks)
    if (r.severity == MissRisk::Severity::kRefuse) return true;
  return false;
}

std::string MissRiskReport::refusals() const {
  std::string out;
  for (const auto& r : risks)
    if (r.severity == MissRisk::Severity::kRefuse) out += (out.empty() ? "" : "; ") + r.what;
  return out;
}

void MissRiskReport::merge(const MissRiskReport& other) {
  risks.insert(risks.end(), other.risks.begin(), other.risks.end());
}

MissRiskReport check_qemu_argv(const std::vector<std::string>& argv) {
  MissRiskReport report;
  for (const auto& a : argv) {
    if (a.find("virtio-balloon") != std::string::npos)
      report.add(MissRisk::Severity::kRefuse,
                 fmt::format("balloon device ({}): inflating discards guest pages, zapping the "
                             "page-table entries dirty tracking reads",
                             a));
    if (a.find("virtio-mem") != std::string::npos)
      report.add(MissRisk::Severity::kRefuse,
                 fmt::format("virtio-mem device ({}): unplug discards guest pages", a));
    if (a.find("vhost-user") != std::string::npos)
      report.add(MissRisk::Severity::kRefuse,
                 fmt::format("vhost-user device ({}): the back-end writes guest RAM through its "
                             "own mapping, invisible to QEMU's page tables",
                             a));
  }
  return report;
}

namespace {

// The bracketed choice of a sysfs enum file ("always [never] ..."), or "".
std::string selected_choice(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto open = text.find('['), close = text.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return text.substr(open + 1, close - open - 1);
}

bool swap_active(const std::string& swaps_path) {
  std::ifstream in(swaps_path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line))
    if (!line.empty()) return true;
  return false;
}

}  // namespace

MissRiskReport check_host(uint64_t ram_bytes, uint64_t locked_bytes, const HostFiles& files) {
  MissRiskReport report;
  const std::string thp = selected_choice(files.shmem_enabled);
  if (!thp.empty() && thp != "never" && thp != "deny")
    report.add(MissRisk::Severity::kWarn,
               fmt::format("{} is [{}]: khugepaged may collapse guest RAM into huge pages, "
                           "rebuilding QEMU's page-table entries; set it to never (the auditor "
                           "would catch a miss)",
                           files.shmem_enabled, thp));
  if (swap_active(files.swaps) && locked_bytes < ram_bytes)
    report.add(MissRisk::Severity::kWarn,
               fmt::format("swap is on ({}) and QEMU has {} of {} bytes locked: swapping out "
                           "guest RAM drops its page-table entries; start QEMU with "
                           "-overcommit mem-lock=on or disable swap",
                           files.swaps, locked_bytes, ram_bytes));
  return report;
}

uint64_t locked_bytes_of(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmLck:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kb = 0;
      fields >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

MissRiskReport check_other_writers(pid_t qemu_pid, uint64_t inode) {
  MissRiskReport report;
  int qemu_writable = 0;
  for (const auto& m : mappings_of_inode_everywhere(inode)) {
    // Inode numbers are per file system: only memfd mappings are the same file.
    if (!m.writable || m.path.rfind("/memfd:", 0) != 0) continue;
    if (m.pid == qemu_pid && ++qemu_writable == 1) continue;
    report.add(MissRisk::Severity::kRefuse,
               fmt::format("pid {} maps guest RAM writable at {:#x}-{:#x} ({}): its writes are "
                           "invisible to QEMU's page tables",
                           m.pid, m.start, m.end, m.path));
  }
  return report;
}

}  // namespace ftd
