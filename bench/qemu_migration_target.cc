#include "bench/qemu_migration_target.h"

#include <fcntl.h>
#include <unistd.h>

#include "bench/qemu_migration.h"
#include "common/unique_fd.h"

namespace ftd::bench {

Result<std::unique_ptr<MigrationTarget>> MigrationTarget::launch(Rig& rig,
                                                                 const std::string& name) {
  std::unique_ptr<MigrationTarget> t(new MigrationTarget());
  QemuConfig config = rig.guest_config(name);
  FTD_ASSIGN_OR_RETURN(auto tap, rig.open_tap("tap" + name));
  // QEMU 7.2's stream netdev connects once at start: the proxy listens first.
  FTD_ASSIGN_OR_RETURN(t->proxy_, net::NetworkProxy::start(
                                      {.socket_path = config.nic->socket_path, .passthrough = true},
                                      std::move(tap)));
  t->ram_path_ = fmt::format("/dev/shm/ftd-migtarget-{}-{}", ::getpid(), name);
  {
    UniqueFd fd(::open(t->ram_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return errno_error("create " + t->ram_path_);
    if (::ftruncate(fd.get(), static_cast<off_t>(config.memory_mib << 20)) != 0)
      return errno_error("size " + t->ram_path_);
  }
  FTD_ASSIGN_OR_RETURN(StandbyQemu q, StandbyQemu::prelaunch(config, t->ram_path_));
  t->qemu_.emplace(std::move(q));
  t->uri_ = "unix:" + config.qmp_socket_path + ".migrate";
  t->serial_log_path_ = config.serial_log_path;
  return t;
}

Status MigrationTarget::listen() {
  // prelaunch() set ftd's device-state-only capabilities; this one gets the RAM.
  FTD_TRY(enable_full_migration(qmp()));
  FTD_TRY(qmp().execute("migrate-incoming", {{"uri", uri_}}));
  FTD_TRY(qmp().execute("cont"));
  return ok();
}

MigrationTarget::~MigrationTarget() {
  if (qemu_) qemu_->process().kill();
  qemu_.reset();
  proxy_.reset();
  if (!ram_path_.empty()) ::unlink(ram_path_.c_str());
}

}  // namespace ftd::bench
