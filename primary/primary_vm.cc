#include "primary/primary_vm.h"

#include <spdlog/spdlog.h>

namespace ftd {

Result<std::unique_ptr<PrimaryVm>> PrimaryVm::create(PrimaryVmConfig config,
                                                     std::vector<std::unique_ptr<OutputGate>> gates,
                                                     std::unique_ptr<GuestEngine> engine) {
  auto vm = std::unique_ptr<PrimaryVm>(
      new PrimaryVm(std::move(config), std::move(gates), std::move(engine)));
  v1::Hello hello;
  hello.set_protocol_version(1);
  hello.set_vm_name(vm->config_.vm_name);
  hello.set_memory_bytes(vm->engine_->memory().size());
  hello.set_page_size(static_cast<uint32_t>(vm->engine_->page_size()));
  vm->client_ = std::make_unique<ReplicationClient>(vm->config_.peer, hello);
  FTD_ASSIGN_OR_RETURN(
      vm->pipeline_, CheckpointPipeline::create(*vm->engine_, *vm->client_, vm->config_.pipeline));
  for (auto& g : vm->gates_) vm->pipeline_->add_output_gate(g.get());
  return vm;
}

PrimaryVm::PrimaryVm(PrimaryVmConfig config, std::vector<std::unique_ptr<OutputGate>> gates,
                     std::unique_ptr<GuestEngine> engine)
    : config_(std::move(config)), gates_(std::move(gates)), engine_(std::move(engine)) {}

PrimaryVm::~PrimaryVm() {
  // Order matters: stop producing checkpoints, then the stream, then the rest.
  if (pipeline_) pipeline_->stop();
  if (client_) client_->stop();
  pipeline_.reset();
}

Status PrimaryVm::protect() {
  std::lock_guard lock(mu_);
  if (unprotected_)
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' was unprotected; restart the daemon to protect it again",
                      config_.vm_name);
  if (protected_) return ok();
  auto* pipeline = pipeline_.get();
  client_->start({
      .on_connected = [pipeline](uint64_t e) { pipeline->on_connected(e); },
      .on_ack = [pipeline](uint64_t e, uint64_t us) { pipeline->on_ack(e, us); },
      .on_disconnected = [pipeline](const std::string&) { pipeline->on_disconnected(); },
  });
  pipeline_->start();
  protected_ = true;
  spdlog::info("vm.protect vm={} peer={} engine={} memory_bytes={} epoch_ms={}", config_.vm_name,
               config_.peer, engine_->name(), engine_->memory().size(),
               config_.pipeline.epoch_interval.count());
  return ok();
}

Status PrimaryVm::unprotect() {
  std::lock_guard lock(mu_);
  if (!protected_)
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' is not protected", config_.vm_name);
  pipeline_->stop();
  client_->stop();
  for (auto& g : gates_) g->set_passthrough();
  protected_ = false;
  unprotected_ = true;
  spdlog::warn("vm.unprotect vm={} output=passthrough", config_.vm_name);
  return ok();
}

v1::VmStatus PrimaryVm::status() const {
  std::lock_guard lock(mu_);
  PipelineStats p = pipeline_->stats();
  v1::VmStatus s;
  s.set_name(config_.vm_name);
  s.set_role("primary");
  s.set_engine(engine_->name());
  if (unprotected_)
    s.set_state("unprotected");
  else if (!protected_)
    s.set_state("stopped");
  else if (!p.connected)
    s.set_state("degraded");
  else if (!p.synced || p.acked_epoch == 0)
    s.set_state("syncing");  // protected only once a consistent epoch is acknowledged
  else
    s.set_state("protected");
  s.set_epoch(p.epoch);
  s.set_acked_epoch(p.acked_epoch);
  s.set_checkpoints_per_sec(p.checkpoints_per_sec);
  s.set_last_pause_us(p.last_pause.total_us);
  s.set_pause_p50_us(p.pause_p50_us);
  s.set_pause_p99_us(p.pause_p99_us);
  s.set_bytes_per_sec(p.bytes_per_sec);
  s.set_compression_ratio(p.compression_ratio);
  s.set_lag_epochs(p.lag_epochs);
  s.set_lag_ms(p.lag_ms);
  uint64_t held = 0, released = 0;
  for (auto& g : gates_) {
    auto gs = g->stats();
    held += gs.held;
    released += gs.released;
  }
  s.set_output_held(held);
  s.set_output_released(released);
  s.set_memory_bytes(engine_->memory().size());
  s.set_dirty_pages_last(p.last_pause.dirty_pages);
  s.set_peer(config_.peer);
  s.set_apply_us_last(p.last_apply_us);
  s.set_sync_progress(p.sync_progress);
  if (std::string why = client_->last_error(); !p.connected && !why.empty())
    s.set_detail("secondary: " + why);
  else
    s.set_detail(fmt::format("pause: stop={}us dirty={}us copy={}us devstate={}us resume={}us",
                             p.last_pause.stop_us, p.last_pause.dirty_us, p.last_pause.copy_us,
                             p.last_pause.devstate_us, p.last_pause.resume_us));
  return s;
}

}  // namespace ftd
