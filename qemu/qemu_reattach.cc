#include "qemu/qemu_reattach.h"

#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "qemu/qemu_identity.h"
#include "qemu/qmp_message.h"

namespace ftd {
namespace {

// A migration into the dead daemon's device-state socket may still be
// running (or stuck on the closed socket); capabilities cannot change and no
// checkpoint can start until it is over.
Status cancel_interrupted_migration(QmpClient& qmp) {
  FTD_ASSIGN_OR_RETURN(auto m, qmp.execute("query-migrate"));
  const std::string status = qmp_string(m, "status", "none");
  if (status == "none" || status == "completed" || status == "failed" || status == "cancelled")
    return ok();
  spdlog::warn("qemu.reattach.cancel_migration status={}", status);
  FTD_TRY(qmp.execute("migrate_cancel"));
  const auto deadline = deadline_after(std::chrono::seconds(5));
  while (Clock::now() < deadline) {
    FTD_ASSIGN_OR_RETURN(auto q, qmp.execute("query-migrate"));
    const std::string now = qmp_string(q, "status", "none");
    if (now == "cancelled" || now == "failed" || now == "completed") return ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return make_error(ErrorCode::kTimeout, "interrupted migration (status {}) did not cancel in 5 s",
                    status);
}

}  // namespace

Result<QemuProcess> reattach_to_run_dir_qemu(const QemuConfig& config) {
  RunDirQemu found = find_run_dir_qemu(config.pid_file, config.qmp_socket_path);
  if (found.kind != RunDirQemu::Kind::kLive)
    return make_error(ErrorCode::kFailedPrecondition,
                      "nothing to re-attach to: {}; start without --reattach to boot the guest "
                      "afresh",
                      found.detail);
  FTD_ASSIGN_OR_RETURN(QemuProcess qemu, QemuProcess::reattach(config, found.pid, /*adopt=*/true));
  if (auto st = cancel_interrupted_migration(qemu.qmp()); !st)
    return std::unexpected(qemu.explain(st.error()));
  FTD_ASSIGN_OR_RETURN(auto status, qemu.qmp().execute("query-status"));
  spdlog::info("qemu.reattach.found pid={} status={} pid_file={}", found.pid,
               qmp_string(status, "status", "?"), config.pid_file);
  return qemu;
}

Status retire_leftover_standby(const QemuConfig& config) {
  if (config.pid_file.empty()) return ok();
  RunDirQemu found = find_run_dir_qemu(config.pid_file, config.qmp_socket_path);
  if (found.kind != RunDirQemu::Kind::kLive) return ok();
  FTD_ASSIGN_OR_RETURN(UniqueFd pidfd, open_qemu_pidfd(found.pid, config.qmp_socket_path));
  auto qmp = QmpClient::connect(config.qmp_socket_path, deadline_after(std::chrono::seconds(5)));
  if (!qmp)
    return std::unexpected(qmp.error().with_context(
        fmt::format("QEMU pid {} left in the run directory: QMP", found.pid)));
  FTD_ASSIGN_OR_RETURN(auto status, qmp->execute("query-status"));
  const std::string state = qmp_string(status, "status", "?");
  if (state != "inmigrate" && state != "prelaunch")
    return make_error(ErrorCode::kFailedPrecondition,
                      "a guest QEMU runs in this VM's run directory (pid {}, status {}): it was "
                      "activated here and its daemon died; restart with --role primary --reattach "
                      "to protect it again without a reboot, or stop that QEMU first",
                      found.pid, state);
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0)
    return errno_error(fmt::format("kill leftover standby QEMU pid {}", found.pid));
  pollfd p{.fd = pidfd.get(), .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 5000) != 1)
    return make_error(ErrorCode::kTimeout, "leftover standby QEMU pid {} did not exit in 5 s",
                      found.pid);
  spdlog::warn(
      "standby.leftover_killed pid={} status={} why=\"left by a daemon that died, never "
      "activated\"",
      found.pid, state);
  return ok();
}

}  // namespace ftd
