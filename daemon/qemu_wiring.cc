#include "daemon/qemu_wiring.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "net/network_proxy.h"
#include "qemu/network_gate.h"
#include "qemu/qemu_activator.h"
#include "qemu/qemu_identity.h"
#include "qemu/qemu_reattach.h"
#include "qemu/qmp_engine.h"
#include "secondary/replica_disk.h"
#include "tracking/uffd_preload_path.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;

struct Paths {
  std::string run_dir, qmp, nic, serial, pid_file;
};

Result<Paths> make_paths(const EngineOptions& o, const std::string& vm) {
  Paths p;
  p.run_dir = o.run_dir.empty() ? "/run/ftd/" + vm : o.run_dir;
  std::error_code ec;
  fs::create_directories(p.run_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "create run dir {}: {}", p.run_dir, ec.message());
  p.qmp = p.run_dir + "/qmp.sock";
  p.nic = p.run_dir + "/nic.sock";
  p.serial = p.run_dir + "/serial.log";
  p.pid_file = p.run_dir + "/qemu.pid";
  return p;
}

Result<QemuConfig> qemu_config(const EngineOptions& o, const Paths& p) {
  QemuConfig c;
  c.qemu_binary = o.qemu_binary;
  c.memory_mib = o.memory_mib;
  c.kernel = o.kernel;
  c.initrd = o.initrd;
  c.spec = o.spec;
  // A spec with its own -kernel boots it: --kernel/--initrd/--append apply
  // only to specs without one.
  if (o.spec && std::ranges::any_of(o.spec->options,
                                    [](const QemuOption& x) { return x.name == "-kernel"; })) {
    c.kernel.clear();
    c.initrd.clear();
  }
  // A spec that boots its own kernel, firmware or disk gets no test guest.
  const bool default_guest = !o.spec || !o.spec->boots_itself;
  if (default_guest && (c.kernel.empty() || c.initrd.empty())) {
    const char* env = std::getenv("FTD_GUEST_DIR");
    const char* home = std::getenv("HOME");
    std::string dir = env ? env : std::string(home ? home : "/root") + "/.cache/ftd/guest";
    if (c.kernel.empty()) c.kernel = dir + "/vmlinuz";
    if (c.initrd.empty()) c.initrd = dir + "/initrd.img";
  }
  for (const auto& f : {c.kernel, c.initrd})
    if (!f.empty() && !fs::exists(f))
      return make_error(ErrorCode::kNotFound,
                        "guest file {} not found (build the test guest: ninja guest, or pass "
                        "--kernel/--initrd)",
                        f);
  if (!c.kernel.empty()) c.append = o.append;  // QEMU refuses -append without -kernel
  c.serial_log_path = p.serial;
  c.qmp_socket_path = p.qmp;
  c.nic = QemuNic{.socket_path = p.nic, .mac = o.mac};
  // A guest without its daemon has no gated output and no replication; the
  // daemon builds its QEMUs from the main thread, which lives as long as it.
  c.kill_with_daemon = true;
  return c;
}

Result<std::unique_ptr<net::NetworkProxy>> start_proxy(const EngineOptions& o, const Paths& p,
                                                       bool passthrough, bool dial = false) {
  if (o.tap.empty())
    return make_error(ErrorCode::kInvalidArgument, "--tap is required with --engine qmp");
  FTD_ASSIGN_OR_RETURN(net::TapDevice tap,
                       net::TapDevice::open({.name = o.tap, .bridge = o.bridge}));
  return net::NetworkProxy::start({.socket_path = p.nic, .dial = dial, .passthrough = passthrough},
                                  std::move(tap));
}

// The primary's guest: launched so that it outlives a crash of this daemon
// (own session, pid file, NIC socket QEMU listens on), or, with --reattach,
// the one a crashed predecessor left running. A live QEMU in the run
// directory is never silently replaced by a second guest.
Result<QemuProcess> primary_qemu(const EngineOptions& o, const std::string& vm, QemuConfig config) {
  if (o.reattach) return reattach_to_run_dir_qemu(config);
  RunDirQemu found = find_run_dir_qemu(config.pid_file, config.qmp_socket_path);
  if (found.kind == RunDirQemu::Kind::kLive)
    return make_error(ErrorCode::kFailedPrecondition,
                      "the guest QEMU of VM '{}' still runs (pid {}, pid file {}), left by a "
                      "daemon that died: restart with --reattach to protect it again without a "
                      "reboot, or stop that QEMU first",
                      vm, found.pid, config.pid_file);
  if (found.kind == RunDirQemu::Kind::kStale)
    spdlog::warn("qemu.stale_pid_file {} action=launch", found.detail);
  return QemuProcess::launch(config);
}

// How a QmpEngine drives its QEMU: on the primary, and on the secondary for
// the activated standby when it is protected in turn.
Result<QmpEngineOptions> engine_options(const EngineOptions& o) {
  QmpEngineOptions e;
  FTD_ASSIGN_OR_RETURN(e.tracking.kind, parse_tracker_kind(o.dirty_tracker));
  e.tracking.audit.every_epochs = o.audit_every;
  return e;
}

// The guest disk's capture: ftd's NBD server in the run directory.
QmpDiskCaptureOptions disk_capture(const EngineOptions& o, const Paths& p) {
  return {.nbd_socket_path = p.run_dir + "/disk.nbd.sock",
          .spill_dir = o.disk_spill_dir.empty() ? p.run_dir : o.disk_spill_dir};
}

// Every guest QEMU gets a userfaultfd (uffd-wp tracker), the standby too: it
// may be protected after failover.
std::string uffd_preload(const EngineOptions& o) {
  return o.uffd_preload.empty() ? default_uffd_preload_library() : o.uffd_preload;
}

}  // namespace

Result<std::unique_ptr<GuestEngine>> build_qmp_engine(
    const EngineOptions& o, const std::string& vm,
    std::vector<std::unique_ptr<OutputGate>>& gates) {
  FTD_ASSIGN_OR_RETURN(Paths p, make_paths(o, vm));
  FTD_ASSIGN_OR_RETURN(QemuConfig config, qemu_config(o, p));
  config.uffd_preload_library = uffd_preload(o);
  config.pid_file = p.pid_file;
  config.kill_with_daemon = false;
  config.survive_daemon = true;
  config.nic->qemu_listens = true;
  FTD_ASSIGN_OR_RETURN(QmpEngineOptions qmp_options, engine_options(o));
  if (!o.disk.empty()) {
    FTD_ASSIGN_OR_RETURN(config.disk, parse_disk_spec(o.disk));
    qmp_options.disk = disk_capture(o, p);
  }
  FTD_ASSIGN_OR_RETURN(QemuProcess qemu, primary_qemu(o, vm, config));
  // Output is held from the first frame on (a re-attached guest's secondary
  // may still hold an older replica it could activate); the proxy dials QEMU's
  // NIC socket, now and after every disconnect. Until it is connected QEMU
  // drops what the guest sends (its stream netdev's link is down).
  FTD_ASSIGN_OR_RETURN(auto proxy, start_proxy(o, p, /*passthrough=*/false, /*dial=*/true));
  spdlog::info("qemu.{} pid={} memory_mib={} start_ms={:.0f} qmp={} serial={}",
               o.reattach ? "reattached" : "started", qemu.pid(), o.memory_mib, qemu.start_ms(),
               p.qmp, p.serial);
  if (auto st = proxy->wait_for_guest(std::chrono::seconds(5)); !st)
    spdlog::warn("qemu.nic_not_connected error=\"{}\"", st.error().to_string());
  FTD_ASSIGN_OR_RETURN(auto engine, QmpEngine::create(std::move(qemu), qmp_options));
  gates.push_back(std::make_unique<NetworkGate>(std::move(proxy)));
  return std::unique_ptr<GuestEngine>(std::move(engine));
}

Result<std::unique_ptr<Activator>> build_qmp_activator(const EngineOptions& o,
                                                       const std::string& vm,
                                                       const std::string& replica_dir) {
  FTD_ASSIGN_OR_RETURN(Paths p, make_paths(o, vm));
  FTD_ASSIGN_OR_RETURN(QemuConfig config, qemu_config(o, p));
  config.uffd_preload_library = uffd_preload(o);
  // Launched like the primary's guest, because once activated it *is* the
  // VM: it outlives a crash of this daemon (own session, pid file, NIC socket
  // QEMU listens on), and `--role primary --reattach` takes it over. A
  // standby that was never activated is retired by the next daemon instead
  // (QemuActivator::prepare).
  config.pid_file = p.pid_file;
  config.kill_with_daemon = false;
  config.survive_daemon = true;
  config.nic->qemu_listens = true;
  FTD_ASSIGN_OR_RETURN(QmpEngineOptions qmp_options, engine_options(o));
  if (o.disk_mib > 0) {
    // The replica disk (raw) under the primary's node names and device id,
    // so that the device state loads. The standby reads nothing before it
    // is activated; then the image holds the last committed epoch's disk.
    config.disk = QemuDisk{.path = replica_disk_path(replica_dir, vm), .format = "raw"};
    // Protected in turn after failover: the mirror copies it to the next
    // secondary like any primary's disk.
    qmp_options.disk = disk_capture(o, p);
  }
  // Before failover the standby guest is stopped, so nothing flows; after it,
  // this host owns the VM and its output is not held (until re-protection).
  FTD_ASSIGN_OR_RETURN(auto proxy, start_proxy(o, p, /*passthrough=*/true, /*dial=*/true));
  return std::unique_ptr<Activator>(
      std::make_unique<QemuActivator>(config, std::move(proxy), std::move(qmp_options)));
}

}  // namespace ftd
