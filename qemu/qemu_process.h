// One guest QEMU: launched by us or attached to by pid + QMP socket (a
// restarted daemon re-attaching to its guest). Owns the QMP connection and,
// for memfd-backed guests, a read-only mapping of guest RAM.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>

#include "common/mapped_region.h"
#include "common/result.h"
#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp_client.h"

namespace ftd {

class QemuProcess {
 public:
  QemuProcess(QemuProcess&&) noexcept = default;
  QemuProcess& operator=(QemuProcess&&) noexcept = default;
  // A launched QEMU is SIGKILLed by its Subprocess, an adopted one through its
  // pidfd; a merely attached one is left running.
  ~QemuProcess();

  // Starts QEMU, waits for QMP and maps guest RAM (memfd mode). Errors: binary
  // missing, QEMU exiting at start (with the tail of its log), no memfd.
  static Result<QemuProcess> launch(const QemuConfig& config);
  // Attaches to a running QEMU whose RAM is a memory-backend-memfd,share=on.
  static Result<QemuProcess> attach(const std::string& qmp_socket_path, pid_t pid,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Re-attaches to the QEMU a previous daemon launched from `config` (same
  // run directory): checks through a pidfd that `pid` is that QEMU (its
  // command line names config's QMP socket), that its RAM has
  // config.memory_mib, and finds its userfaultfd. `adopt`: from now on it
  // ends with this object, as if we had launched it.
  static Result<QemuProcess> reattach(const QemuConfig& config, pid_t pid, bool adopt,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  pid_t pid() const { return pid_; }
  QmpClient& qmp() { return qmp_; }
  // Guest RAM as QEMU sees it (read-only): its memfd, or the file given as
  // config.ram_file (a standby on the replica).
  std::span<const std::byte> ram() const { return {ram_.data(), ram_.size()}; }
  uint64_t ram_bytes() const { return ram_bytes_; }
  // Inode of the guest-RAM memfd or file: finds QEMU's own mapping of it in /proc/<pid>/maps.
  uint64_t ram_inode() const { return ram_inode_; }
  // The fd number where libftd_uffd_preload.so left QEMU's userfaultfd, if
  // QEMU was launched (by us or a previous daemon) with it and the fd is there.
  std::optional<int> uffd_fd_in_qemu() const;
  const QemuConfig& config() const { return config_; }
  // Milliseconds from spawn until QMP answered (0 when attached).
  double start_ms() const { return start_ms_; }

  bool alive();
  // Turns a QMP/stream error into one that says QEMU died, with its exit code
  // and log tail, when that is what happened. `exit_grace`: how long to wait
  // for a dying QEMU to exit (default: 500 ms after a dropped connection, else 0).
  Error explain(const Error& error,
                std::optional<std::chrono::milliseconds> exit_grace = std::nullopt);
  std::string log_tail(size_t max_bytes = 2048) const;

  // `quit` over QMP, then waits for exit (SIGKILL after `timeout`).
  Status quit(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // SIGKILL, as in a host crash. Reaps a launched child.
  void kill();

 private:
  QemuProcess() = default;
  Status map_guest_ram(std::optional<uint64_t> expected_size);
  Status map_guest_ram_file(const std::string& path);

  QemuConfig config_;
  std::optional<Subprocess> child_;  // set when we launched it
  UniqueFd pidfd_;                   // set when re-attached: exit and signals without pid reuse
  bool adopted_ = false;             // re-attached and ours to end
  pid_t pid_ = -1;
  QmpClient qmp_;
  MappedRegion ram_;
  uint64_t ram_bytes_ = 0;
  uint64_t ram_inode_ = 0;
  double start_ms_ = 0;
};

}  // namespace ftd
