#include "bench/qemu_rig.h"

#include <stdlib.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "tracking/uffd_preload_path.h"

namespace ftd::bench {
Result<std::unique_ptr<Rig>> Rig::create(RigConfig config) {
  auto rig = std::make_unique<Rig>(Key{}, std::move(config));
  FTD_TRY(rig->setup());
  return rig;
}

QemuConfig Rig::guest_config(const std::string& name) const {
  QemuConfig c;
  c.memory_mib = config_.memory_mib;
  c.kernel = config_.guest_dir + "/vmlinuz";
  c.initrd = config_.guest_dir + "/" + config_.initrd;
  c.append = config_.append;
  c.qmp_socket_path = dir_ + "/" + name + ".qmp";
  c.serial_log_path = dir_ + "/" + name + ".serial";
  c.nic = QemuNic{.socket_path = dir_ + "/" + name + ".nic"};
  c.start_timeout = std::chrono::seconds(60);
  return c;
}

Result<net::TapDevice> Rig::open_tap(const std::string& name) {
  return ns_.run([&] {
    return net::TapDevice::open({.name = name, .bridge = bridge_.name(), .disable_ipv6 = true});
  });
}

Status Rig::setup() {
  char tmpl[] = "/tmp/ftd-qbench-XXXXXX";  // short: unix socket paths
  if (!::mkdtemp(tmpl)) return errno_error("mkdtemp");
  dir_ = tmpl;
  replica_dir_ = fmt::format("/dev/shm/ftd-qbench-{}-{}", ::getpid(), config_.tag);
  primary_config_ = guest_config("p");
  primary_config_.uffd_preload_library = default_uffd_preload_library();
  standby_config_ = guest_config("s");

  FTD_ASSIGN_OR_RETURN(ns_, net::NetNamespace::create(net::unique_ifname("ftqb")));
  FTD_ASSIGN_OR_RETURN(bridge_, net::Bridge::create(ns_.name(), "br0"));
  FTD_TRY(net::add_address(ns_.name(), bridge_.name(), kHostCidr));
  FTD_TRY(net::link_up(ns_.name(), bridge_.name()));
  FTD_ASSIGN_OR_RETURN(auto primary_tap, open_tap("tapp"));
  FTD_ASSIGN_OR_RETURN(auto standby_tap, open_tap("taps"));
  // Proxies listen before their QEMUs start (QEMU 7.2's stream netdev connects once).
  FTD_ASSIGN_OR_RETURN(auto primary_proxy,
                       net::NetworkProxy::start({.socket_path = primary_config_.nic->socket_path},
                                                std::move(primary_tap)));
  gate_ = std::make_unique<NetworkGate>(std::move(primary_proxy));
  FTD_ASSIGN_OR_RETURN(auto standby_proxy,
                       net::NetworkProxy::start(
                           {.socket_path = standby_config_.nic->socket_path, .passthrough = true},
                           std::move(standby_tap)));

  auto activator = std::make_unique<QemuActivator>(standby_config_, std::move(standby_proxy));
  activator_ = activator.get();
  const uint64_t bytes = config_.memory_mib << 20;
  FTD_ASSIGN_OR_RETURN(vm_, SecondaryVm::open({.vm_name = "qbench",
                                               .memory_bytes = bytes,
                                               .page_size = 4096,
                                               .replica_dir = replica_dir_},
                                              std::move(activator)));
  service_ = std::make_unique<ReplicationService>(*vm_);
  grpc::ServerBuilder builder;
  apply_replication_server_args(builder);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    return make_error(ErrorCode::kUnavailable, "cannot start gRPC server on loopback");
  return ok();
}

Result<double> Rig::boot(std::chrono::seconds timeout) {
  const auto t0 = Clock::now();
  primary_tail_ = std::make_unique<SerialTail>(primary_config_.serial_log_path);
  FTD_ASSIGN_OR_RETURN(auto qemu, QemuProcess::launch(primary_config_));
  primary_.emplace(std::move(qemu));
  if (auto st = gate_->proxy().wait_for_guest(std::chrono::seconds(5)); !st)
    return std::unexpected(st.error().with_context("guest NIC"));
  if (auto line = primary_tail_->wait_for("FTD-GUEST-READY", timeout); !line)
    return std::unexpected(primary_->explain(line.error()));
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Result<double> Rig::protect() {
  if (!primary_) return make_error(ErrorCode::kFailedPrecondition, "guest not booted");
  QmpEngineOptions options;
  options.tracking.kind = config_.tracker;
  FTD_ASSIGN_OR_RETURN(engine_, QmpEngine::create(std::move(*primary_), options));
  primary_.reset();
  probe_ = std::make_unique<QmpProbe>(*engine_);

  const uint64_t bytes = config_.memory_mib << 20;
  v1::Hello hello;
  hello.set_protocol_version(1);
  hello.set_vm_name("qbench");
  hello.set_memory_bytes(bytes);
  hello.set_page_size(4096);
  client_ = std::make_unique<ReplicationClient>(fmt::format("127.0.0.1:{}", port_), hello);

  PipelineConfig pc;
  pc.epochs = config_.epochs;
  pc.scan_threads = config_.scan_threads;
  FTD_ASSIGN_OR_RETURN(pipeline_, CheckpointPipeline::create(*probe_, *client_, pc));
  pipeline_->add_output_gate(gate_.get());
  auto* pipeline = pipeline_.get();
  auto* acks = &acks_;
  client_->start({
      .on_connected = [pipeline](
                          uint64_t e,
                          std::vector<PageDigest> d) { pipeline->on_connected(e, std::move(d)); },
      .on_ack =
          [pipeline, acks](uint64_t e, uint64_t us) {
            if (e > 0) {
              std::lock_guard lock(acks->mu);
              if (!acks->first_checkpoint_ack) acks->first_checkpoint_ack = Clock::now();
            }
            pipeline->on_ack(e, us);
          },
      .on_disconnected = [pipeline](const std::string&) { pipeline->on_disconnected(); },
  });
  if (!wait_until([&] { return client_->connected(); }, 10))
    return make_error(ErrorCode::kUnavailable, "replication client did not connect: {}",
                      client_->last_error());
  const auto t0 = Clock::now();
  pipeline_->start();
  const double timeout = 60.0 + static_cast<double>(config_.memory_mib) / 8.0;
  if (!wait_until(
          [&] {
            std::lock_guard lock(acks_.mu);
            return acks_.first_checkpoint_ack.has_value();
          },
          timeout))
    return make_error(ErrorCode::kTimeout, "no checkpoint acknowledged {:.0f} s after start",
                      timeout);
  std::lock_guard lock(acks_.mu);
  return std::chrono::duration<double>(*acks_.first_checkpoint_ack - t0).count();
}

bool Rig::wait_steady(double timeout_s, double& waited_s) {
  const auto t0 = Clock::now();
  const uint64_t catch_up = pipeline_->last_captured_epoch();
  const bool steady = wait_until(
      [&] {
        auto s = pipeline_->stats();
        return s.acked_epoch >= catch_up + 3 && s.lag_epochs <= 1;
      },
      timeout_s);
  waited_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return steady;
}

void Rig::lose_primary() {
  if (client_) client_->stop();  // no more acks: nothing touches the gate or proxy
  if (pipeline_) pipeline_->stop();
  pipeline_.reset();
  if (engine_) engine_->process().kill();
  gate_.reset();  // its proxy, and the host's tap with it
}

Rig::~Rig() {
  lose_primary();
  client_.reset();
  probe_.reset();
  engine_.reset();
  primary_.reset();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
  service_.reset();
  vm_.reset();  // kills the standby QEMU, then its NIC proxy
  primary_tail_.reset();
  std::error_code ec;
  if (!replica_dir_.empty()) std::filesystem::remove_all(replica_dir_, ec);
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  // bridge_ and ns_ are removed by their destructors.
}

}  // namespace ftd::bench
