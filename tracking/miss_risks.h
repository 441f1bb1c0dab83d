// Configurations in which a page-table-based tracker (uffd-wp, soft-dirty)
// can miss guest writes, checked before one is trusted:
//  - writes through another mapping of guest RAM (vhost-user back-ends,
//    any other process with a writable mapping): invisible to QEMU's PTEs;
//  - pages discarded behind QEMU's back (virtio-balloon, virtio-mem):
//    the PTE is zapped and the page comes back as a fresh zero page;
//  - shmem swap-out / THP collapse, which drop or rebuild QEMU's PTEs.
// kRefuse: the tracker must not be used (ftd scans instead); kWarn: logged.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ftd {

struct MissRisk {
  enum class Severity { kWarn, kRefuse };
  Severity severity = Severity::kWarn;
  std::string what;
};

struct MissRiskReport {
  std::vector<MissRisk> risks;

  bool refused() const;
  std::string refusals() const;  // "; "-joined kRefuse reasons
  void add(MissRisk::Severity s, std::string what) { risks.push_back({s, std::move(what)}); }
  void merge(const MissRiskReport& other);
};

// QEMU command-line devices that write or discard guest RAM behind QEMU's PTEs.
MissRiskReport check_qemu_argv(const std::vector<std::string>& argv);

// Host settings: shmem THP and swap (with `locked_bytes` of the target locked).
struct HostFiles {
  std::string shmem_enabled = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
  std::string swaps = "/proc/swaps";
};
MissRiskReport check_host(uint64_t ram_bytes, uint64_t locked_bytes, const HostFiles& files = {});

// Bytes of `pid` locked in memory (VmLck of /proc/<pid>/status), 0 if unknown.
uint64_t locked_bytes_of(pid_t pid);

// Writable mappings of the guest-RAM memfd (`inode`) other than QEMU's one.
MissRiskReport check_other_writers(pid_t qemu_pid, uint64_t inode);

}  // namespace ftd
