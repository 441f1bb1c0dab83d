#include "qemu/qemu_reattach.h"

#include <spdlog/spdlog.h>

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

}  // namespace ftd
