#include "qemu/qemu_dirty_tracking.h"

#include <unistd.h>

#include "tracking/process_maps.h"

namespace ftd {
namespace {

// QEMU's one writable shared mapping of the guest-RAM memfd.
Result<TrackedRange> qemu_ram_range(QemuProcess& qemu) {
  FTD_ASSIGN_OR_RETURN(auto maps, mappings_of_inode(qemu.pid(), qemu.ram_inode()));
  std::vector<MapEntry> ram;
  for (auto& m : maps)
    if (m.writable && m.shared && m.path.rfind("/memfd:", 0) == 0) ram.push_back(m);
  if (ram.size() != 1 || ram[0].end - ram[0].start != qemu.ram_bytes())
    return make_error(ErrorCode::kNotFound,
                      "expected one {}-byte writable mapping of the guest-RAM memfd (inode {}) in "
                      "/proc/{}/maps, found {}",
                      qemu.ram_bytes(), qemu.ram_inode(), qemu.pid(), ram.size());
  return TrackedRange{.pid = qemu.pid(),
                      .start = ram[0].start,
                      .length = ram[0].end - ram[0].start,
                      .page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE))};
}

}  // namespace

MissRiskReport qemu_miss_risks(QemuProcess& qemu) {
  MissRiskReport risks = check_qemu_argv(qemu_argv(qemu.config()));
  // Also catches a balloon hot-plugged into an attached QEMU: query-balloon
  // only answers when one exists.
  if (qemu.qmp().execute("query-balloon"))
    risks.add(MissRisk::Severity::kRefuse,
              "QEMU has a balloon device (query-balloon answered): inflating it discards guest "
              "pages behind the dirty tracker");
  risks.merge(check_host(qemu.ram_bytes(), locked_bytes_of(qemu.pid())));
  risks.merge(check_other_writers(qemu.pid(), qemu.ram_inode()));
  return risks;
}

Result<TrackerChoice> choose_qemu_tracker(QemuProcess& qemu, const TrackingOptions& options,
                                          const KernelProbes& probes) {
  TrackerTarget target;
  auto range = qemu_ram_range(qemu);
  if (!range) {
    if (options.kind != TrackerKind::kAuto && options.kind != TrackerKind::kScan)
      return std::unexpected(range.error());
    // Without the range only the scan can work: pretend nothing else can.
    TrackingOptions scan = options;
    scan.kind = TrackerKind::kScan;
    target.range = {.pid = qemu.pid(), .start = 0, .length = qemu.ram_bytes()};
    target.memory = qemu.ram();
    auto c = choose_tracker(scan, target, probes);
    if (c) c->reason = "guest RAM mapping not found in QEMU: " + range.error().message;
    return c;
  }
  target.range = *range;
  target.memory = qemu.ram();
  target.uffd_in_target = qemu.uffd_fd_in_qemu();
  if (options.kind != TrackerKind::kScan) target.risks = qemu_miss_risks(qemu);
  return choose_tracker(options, target, probes);
}

}  // namespace ftd
