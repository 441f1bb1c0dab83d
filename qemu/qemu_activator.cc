#include "qemu/qemu_activator.h"

#include <spdlog/spdlog.h>

#include "qemu/network_gate.h"
#include "qemu/qemu_reattach.h"

namespace ftd {

Status QemuActivator::prepare(const std::string& replica_ram_path) {
  replica_path_ = replica_ram_path;
  FTD_TRY(retire_leftover_standby(config_));
  FTD_ASSIGN_OR_RETURN(auto standby, StandbyQemu::prelaunch(config_, replica_ram_path));
  spdlog::info("standby.ready pid={} start_ms={:.0f} replica={}", standby.process().pid(),
               standby.start_ms(), replica_ram_path);
  standby_.emplace(std::move(standby));
  return ok();
}

Result<ActivationReport> QemuActivator::activate(uint64_t epoch, std::span<const std::byte>,
                                                 std::span<const std::byte> device_state) {
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
  timings_ = *t;
  std::string nic = "NIC kept by the caller";
  if (proxy_) {
    auto ps = proxy_->stats();
    nic = fmt::format("NIC connected={} frames out={}", ps.guest_connected, ps.frames_released);
  }
  return ActivationReport{
      .epoch = epoch,
      .activation_us = static_cast<uint64_t>(t->total_ms * 1000),
      .detail = fmt::format(
          "standby QEMU pid {} running: load {:.1f} ms, cont {:.1f} ms, announce {:.1f} ms; {}",
          standby_->process().pid(), t->load_ms, t->cont_ms, t->announce_ms, nic)};
}

Result<RunningGuest> QemuActivator::take_running_guest() {
  if (!standby_ || !standby_->activated())
    return make_error(ErrorCode::kFailedPrecondition, "no activated standby QEMU to hand over");
  if (!proxy_)
    return make_error(ErrorCode::kFailedPrecondition,
                      "the standby's NIC is not behind a proxy of this daemon: its output "
                      "could not be held");
  const pid_t pid = standby_->process().pid();
  // The engine takes the QEMU process. create() fails only if QMP or the
  // device-state socket fails, and then the QEMU is released (killed) with it.
  auto engine = QmpEngine::create(std::move(standby_->process()), engine_options_);
  standby_.reset();
  if (!engine) return std::unexpected(engine.error().with_context("take over the activated QEMU"));
  spdlog::info("standby.handed_over pid={} tracker={}", pid, (*engine)->tracking_status().tracker);
  RunningGuest guest;
  guest.engine = std::move(*engine);
  guest.gates.push_back(std::make_unique<NetworkGate>(std::move(proxy_)));
  return guest;
}

}  // namespace ftd
