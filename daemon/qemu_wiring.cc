#include "daemon/qemu_wiring.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "net/network_proxy.h"
#include "qemu/qmp_engine.h"
#include "qemu/standby_qemu.h"
#include "tracking/uffd_preload_path.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;

// Held guest frames = the proxy's output-commit buffer.
class NetworkGate : public OutputGate {
 public:
  explicit NetworkGate(std::unique_ptr<net::NetworkProxy> proxy) : proxy_(std::move(proxy)) {}
  void advance_epoch() override { proxy_->advance_epoch(); }
  void commit(uint64_t epoch) override { proxy_->commit(epoch); }
  void set_passthrough() override { proxy_->set_passthrough(); }
  Stats stats() const override {
    auto s = proxy_->stats();
    return {s.frames_held, s.frames_released, s.frames_dropped};
  }

 private:
  std::unique_ptr<net::NetworkProxy> proxy_;
};

struct Paths {
  std::string run_dir, qmp, nic, serial;
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
  return p;
}

Result<QemuConfig> qemu_config(const EngineOptions& o, const Paths& p) {
  QemuConfig c;
  c.qemu_binary = o.qemu_binary;
  c.memory_mib = o.memory_mib;
  c.kernel = o.kernel;
  c.initrd = o.initrd;
  if (c.kernel.empty() || c.initrd.empty()) {
    const char* env = std::getenv("FTD_GUEST_DIR");
    const char* home = std::getenv("HOME");
    std::string dir = env ? env : std::string(home ? home : "/root") + "/.cache/ftd/guest";
    if (c.kernel.empty()) c.kernel = dir + "/vmlinuz";
    if (c.initrd.empty()) c.initrd = dir + "/initrd.img";
  }
  for (const auto& f : {c.kernel, c.initrd})
    if (!fs::exists(f))
      return make_error(ErrorCode::kNotFound,
                        "guest file {} not found (build the test guest: ninja guest, or pass "
                        "--kernel/--initrd)",
                        f);
  c.append = o.append;
  c.serial_log_path = p.serial;
  c.qmp_socket_path = p.qmp;
  c.nic = QemuNic{.socket_path = p.nic, .mac = o.mac};
  // A guest without its daemon has no gated output and no replication; the
  // daemon builds its QEMUs from the main thread, which lives as long as it.
  c.kill_with_daemon = true;
  return c;
}

Result<std::unique_ptr<net::NetworkProxy>> start_proxy(const EngineOptions& o, const Paths& p,
                                                       bool passthrough) {
  if (o.tap.empty())
    return make_error(ErrorCode::kInvalidArgument, "--tap is required with --engine qmp");
  FTD_ASSIGN_OR_RETURN(net::TapDevice tap,
                       net::TapDevice::open({.name = o.tap, .bridge = o.bridge}));
  return net::NetworkProxy::start({.socket_path = p.nic, .passthrough = passthrough},
                                  std::move(tap));
}

class QemuActivator : public Activator {
 public:
  QemuActivator(QemuConfig config, std::unique_ptr<net::NetworkProxy> proxy)
      : config_(std::move(config)), proxy_(std::move(proxy)) {}
  std::string name() const override { return "qmp"; }

  Status prepare(const std::string& replica_ram_path) override {
    replica_path_ = replica_ram_path;
    FTD_ASSIGN_OR_RETURN(auto standby, StandbyQemu::prelaunch(config_, replica_ram_path));
    spdlog::info("standby.ready pid={} start_ms={:.0f} replica={}", standby.process().pid(),
                 standby.start_ms(), replica_ram_path);
    standby_.emplace(std::move(standby));
    return ok();
  }

  Result<ActivationReport> activate(uint64_t epoch, std::span<const std::byte> memory,
                                    std::span<const std::byte> device_state) override {
    if (!standby_)
      return make_error(ErrorCode::kFailedPrecondition, "no standby QEMU was prelaunched");
    auto t = standby_->activate(device_state);
    if (!t) {
      // QEMU exits when an incoming migration fails: bring up a fresh standby
      // so an operator can retry once the cause is fixed.
      auto err = t.error();
      standby_.reset();
      if (auto again = prepare(replica_path_); !again)
        spdlog::error("standby.relaunch_failed error=\"{}\"", again.error().to_string());
      return std::unexpected(err.with_context("activate standby QEMU"));
    }
    auto ps = proxy_->stats();
    return ActivationReport{
        .epoch = epoch,
        .activation_us = static_cast<uint64_t>(t->total_ms * 1000),
        .detail = fmt::format(
            "standby QEMU pid {} running: load {:.1f} ms, cont {:.1f} ms, announce {:.1f} ms; "
            "NIC connected={} frames out={}",
            standby_->process().pid(), t->load_ms, t->cont_ms, t->announce_ms, ps.guest_connected,
            ps.frames_released)};
  }

 private:
  QemuConfig config_;
  std::unique_ptr<net::NetworkProxy> proxy_;  // before standby_: outlives QEMU
  std::string replica_path_;
  std::optional<StandbyQemu> standby_;
};

}  // namespace

Result<std::unique_ptr<GuestEngine>> build_qmp_engine(
    const EngineOptions& o, const std::string& vm,
    std::vector<std::unique_ptr<OutputGate>>& gates) {
  FTD_ASSIGN_OR_RETURN(Paths p, make_paths(o, vm));
  FTD_ASSIGN_OR_RETURN(QemuConfig config, qemu_config(o, p));
  // Only the protected QEMU needs a userfaultfd (uffd-wp tracker).
  config.uffd_preload_library =
      o.uffd_preload.empty() ? default_uffd_preload_library() : o.uffd_preload;
  QmpEngineOptions engine_options;
  FTD_ASSIGN_OR_RETURN(engine_options.tracking.kind, parse_tracker_kind(o.dirty_tracker));
  engine_options.tracking.audit.every_epochs = o.audit_every;
  // The proxy listens before QEMU starts: QEMU 7.2's stream netdev connects once.
  FTD_ASSIGN_OR_RETURN(auto proxy, start_proxy(o, p, /*passthrough=*/false));
  FTD_ASSIGN_OR_RETURN(QemuProcess qemu, QemuProcess::launch(config));
  spdlog::info("qemu.started pid={} memory_mib={} start_ms={:.0f} qmp={} serial={}", qemu.pid(),
               o.memory_mib, qemu.start_ms(), p.qmp, p.serial);
  if (auto st = proxy->wait_for_guest(std::chrono::seconds(5)); !st)
    spdlog::warn("qemu.nic_not_connected error=\"{}\"", st.error().to_string());
  FTD_ASSIGN_OR_RETURN(auto engine, QmpEngine::create(std::move(qemu), engine_options));
  gates.push_back(std::make_unique<NetworkGate>(std::move(proxy)));
  return std::unique_ptr<GuestEngine>(std::move(engine));
}

Result<std::unique_ptr<Activator>> build_qmp_activator(const EngineOptions& o,
                                                       const std::string& vm) {
  FTD_ASSIGN_OR_RETURN(Paths p, make_paths(o, vm));
  FTD_ASSIGN_OR_RETURN(QemuConfig config, qemu_config(o, p));
  // Before failover the standby guest is stopped, so nothing flows; after it,
  // this host owns the VM and its output is not held.
  FTD_ASSIGN_OR_RETURN(auto proxy, start_proxy(o, p, /*passthrough=*/true));
  return std::unique_ptr<Activator>(std::make_unique<QemuActivator>(config, std::move(proxy)));
}

}  // namespace ftd
