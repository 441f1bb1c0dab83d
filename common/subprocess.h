// A child process we started: killed (SIGKILL) and reaped on destruction
// unless it was waited for. Used for QEMU, `ip`, and daemons under test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

struct SpawnOptions {
  std::vector<std::string> argv;
  // Extra environment entries ("K=V"), added to the parent's environment.
  std::vector<std::string> env;
  // Redirect stdout+stderr to this file (appending); empty keeps the parent's.
  std::string log_path;
  // File descriptors passed to the child at the same number (CLOEXEC cleared).
  std::vector<int> inherit_fds;
  // Enter this network namespace (/run/netns/<name>) before exec.
  std::string netns;
  // SIGKILL the child when the spawning *thread* exits (PR_SET_PDEATHSIG):
  // a guest must not outlive the daemon that gates its output. Spawn from a
  // long-lived thread (e.g. main) when setting this.
  bool kill_with_parent = false;
  // Own session (setsid) instead of only an own process group: no controlling
  // terminal's hangup or job control reaches it. For a process that must
  // outlive us (a guest QEMU a restarted daemon re-attaches to).
  bool new_session = false;
};

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&& o) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  static Result<Subprocess> spawn(const SpawnOptions& options);

  pid_t pid() const { return pid_; }
  bool running();  // false once it exited (reaps it)
  // Waits for exit; returns the exit code (128+signal if killed) or a timeout error.
  Result<int> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Sends a signal; SIGKILL + reap is what the destructor does.
  void kill(int sig);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs a command to completion, capturing stdout+stderr; error if it exits non-zero.
Result<std::string> run_command(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace ftd
