// How to start a guest QEMU. The primary and the standby share this so the
// two machines are identical except for where RAM lives and `-incoming`.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "qemu/vm_spec.h"

namespace ftd {

// Guest NIC: a unix stream socket between QEMU and the daemon's output-commit
// proxy. Either QEMU connects as a *client* to the daemon's socket (which must
// listen before QEMU starts: QEMU 7.2 connects once, never again), or QEMU
// listens (`qemu_listens`) and the daemon dials; QEMU 7.2 accepts again after
// its peer closed, so a restarted daemon re-attaches to a running guest.
struct QemuNic {
  std::string socket_path;
  std::string mac = "52:54:00:12:34:56";
  bool qemu_listens = false;
};

// Guest disk: an image declared with -blockdev (format node kDiskNodeName
// over a file node) and a virtio-blk device kDiskDeviceId. Fixed names: the
// primary's mirror starts from the node, a standby must present the same
// device path for the device state to load. discard=unmap on both nodes: a
// guest TRIM really deallocates (reads as zeroes on raw and qcow2), as the
// replica applies it.
struct QemuDisk {
  std::string path;
  std::string format = "raw";  // "raw" or "qcow2"
};
// "--disk PATH[,format=raw|qcow2]" → QemuDisk. The path must exist; it may
// not contain a comma (the option separator).
Result<QemuDisk> parse_disk_spec(std::string_view spec);
inline constexpr const char* kDiskNodeName = "ftd-disk0";
inline constexpr const char* kDiskDeviceId = "ftd-disk0-dev";

struct QemuConfig {
  std::string qemu_binary = "qemu-system-x86_64";
  uint64_t memory_mib = 256;
  std::string kernel;  // empty: no -kernel (BIOS only; enough for QMP-level tests)
  std::string initrd;
  std::string append;
  std::vector<std::string> extra_args;
  // The operator's machine definition (docs/vm-spec.md): its -machine gets
  // ftd's memory-backend, its options follow ftd's; memory_mib stays the
  // size (the caller reconciles it with the spec's -m). Empty: ftd's built-in
  // machine (pc, TCG).
  std::optional<VmSpec> spec;
  std::string serial_log_path;  // empty: serial output discarded
  std::string qmp_socket_path;  // required; other sockets are derived from it
  std::string qemu_log_path;    // QEMU's stdout/stderr; empty: <qmp_socket_path>.log
  std::optional<QemuNic> nic;
  std::optional<QemuDisk> disk;
  std::string netns;  // run QEMU inside /run/netns/<netns>; empty: current
  std::chrono::milliseconds start_timeout{15000};

  // Where guest RAM lives. Empty: an anonymous memfd (share=on) that the
  // daemon maps through /proc/<pid>/fd (primary). Otherwise a file, e.g. the
  // secondary's replica on tmpfs (standby).
  std::string ram_file;
  // Start with `-incoming defer -S` (standby waiting for a device state).
  bool incoming = false;
  // QEMU dies with the thread that launched it (see SpawnOptions).
  bool kill_with_daemon = false;
  // QEMU outlives a crashed daemon: own session, no death signal (a clean
  // daemon stop still ends it). Excludes kill_with_daemon.
  bool survive_daemon = false;
  // QEMU writes (and locks) its pid here: how a restarted daemon finds it.
  std::string pid_file;
  // libftd_uffd_preload.so, loaded into QEMU with LD_PRELOAD so that QEMU
  // holds a userfaultfd at fd `uffd_fd` for the uffd-wp dirty tracker
  // (tracking/). Empty: not loaded (the tracker falls back).
  std::string uffd_preload_library;
  int uffd_fd = 1000;  // FTD_UFFD_DEFAULT_FD

  std::string effective_log_path() const {
    return qemu_log_path.empty() ? qmp_socket_path + ".log" : qemu_log_path;
  }
};

// The full QEMU command line for `config`.
std::vector<std::string> qemu_argv(const QemuConfig& config);

}  // namespace ftd
