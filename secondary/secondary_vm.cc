#include "secondary/secondary_vm.h"

#include <spdlog/spdlog.h>

namespace ftd {
namespace {

using Clock = std::chrono::steady_clock;

grpc::Status to_grpc(const Error& e) {
  switch (e.code) {
    case ErrorCode::kCorrupt:
      return {grpc::StatusCode::DATA_LOSS, e.message};
    case ErrorCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, e.message};
    case ErrorCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
    default:
      return {grpc::StatusCode::INTERNAL, e.message};
  }
}

}  // namespace

Result<std::unique_ptr<SecondaryVm>> SecondaryVm::open(SecondaryVmConfig config,
                                                       std::unique_ptr<Activator> activator) {
  FTD_ASSIGN_OR_RETURN(ReplicaStore store,
                       ReplicaStore::open(config.replica_dir, config.vm_name, config.memory_bytes,
                                          config.page_size));
  spdlog::info("replica.open vm={} path={} epoch={}", config.vm_name, store.ram_path(),
               store.epoch());
  FTD_TRY(activator->prepare(store.ram_path()));
  return std::unique_ptr<SecondaryVm>(
      new SecondaryVm(std::move(config), std::move(store), std::move(activator)));
}

grpc::Status SecondaryVm::check_hello(const v1::Hello& h) const {
  if (h.protocol_version() != 1)
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("protocol version {} not supported (this secondary speaks 1)",
                        h.protocol_version())};
  if (h.vm_name() != config_.vm_name)
    return {grpc::StatusCode::NOT_FOUND,
            fmt::format("this secondary protects VM '{}', not '{}'", config_.vm_name, h.vm_name())};
  if (h.memory_bytes() != config_.memory_bytes || h.page_size() != config_.page_size)
    return {
        grpc::StatusCode::FAILED_PRECONDITION,
        fmt::format("VM '{}' geometry mismatch: primary {} bytes / {} B pages, secondary {} / {}",
                    h.vm_name(), h.memory_bytes(), h.page_size(), config_.memory_bytes,
                    config_.page_size)};
  return grpc::Status::OK;
}

grpc::Status SecondaryVm::serve(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream) {
  v1::PrimaryMessage m;
  if (!stream->Read(&m)) return {grpc::StatusCode::CANCELLED, "stream ended before Hello"};
  if (!m.has_hello())
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "first message on a Replicate stream must be Hello"};
  if (auto st = check_hello(m.hello()); !st.ok()) {
    spdlog::warn("replication.rejected peer={} reason=\"{}\"", context->peer(), st.error_message());
    return st;
  }
  uint64_t generation;
  uint64_t epoch;
  {
    std::lock_guard lock(mu_);
    if (failed_over_)
      return {grpc::StatusCode::FAILED_PRECONDITION,
              fmt::format("VM '{}' has failed over and runs on this host now", config_.vm_name)};
    if (active_stream_) {
      spdlog::warn("replication.replaced old_peer={} new_peer={}", peer_, context->peer());
      active_stream_->TryCancel();
    }
    active_stream_ = context;
    generation = ++stream_generation_;
    peer_ = context->peer();
    epoch = replica_.epoch();
  }
  spdlog::info("replication.accepted vm={} peer={} replica_epoch={}", config_.vm_name,
               context->peer(), epoch);
  v1::SecondaryMessage welcome;
  welcome.mutable_welcome()->set_applied_epoch(epoch);
  stream->Write(welcome);

  // A checkpoint may not exceed the guest's RAM plus generous framing; a
  // larger claim is hostile or broken, and must not make us allocate it.
  const uint64_t max_checkpoint = config_.memory_bytes + config_.memory_bytes / 8 + (64 << 20);
  std::vector<std::byte> buffer;
  uint64_t buffer_epoch = 0, buffer_total = 0;
  grpc::Status result = grpc::Status::OK;
  while (stream->Read(&m)) {
    if (!m.has_chunk()) {
      result = {grpc::StatusCode::INVALID_ARGUMENT, "expected a checkpoint chunk"};
      break;
    }
    const auto& c = m.chunk();
    if (buffer.empty()) {
      buffer_epoch = c.epoch();
      buffer_total = c.total_size();
      if (buffer_total > max_checkpoint) {
        result = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                  fmt::format("checkpoint {} claims {} bytes, limit {}", c.epoch(), buffer_total,
                              max_checkpoint)};
        break;
      }
      buffer.reserve(buffer_total);
    }
    if (c.epoch() != buffer_epoch || c.total_size() != buffer_total ||
        c.offset() != buffer.size() || buffer.size() + c.data().size() > buffer_total) {
      result = {
          grpc::StatusCode::DATA_LOSS,
          fmt::format("chunk of epoch {} at offset {} (+{}) does not continue epoch {} at {}/{}",
                      c.epoch(), c.offset(), c.data().size(), buffer_epoch, buffer.size(),
                      buffer_total)};
      break;
    }
    auto* d = reinterpret_cast<const std::byte*>(c.data().data());
    buffer.insert(buffer.end(), d, d + c.data().size());
    if (!c.last()) continue;
    if (buffer.size() != buffer_total) {
      result = {grpc::StatusCode::DATA_LOSS,
                fmt::format("checkpoint {} ended at {} of {} bytes", buffer_epoch, buffer.size(),
                            buffer_total)};
      break;
    }
    Result<ApplyStats> applied;
    {
      std::lock_guard lock(mu_);
      if (failed_over_ || generation != stream_generation_) {
        result = {grpc::StatusCode::ABORTED, "stream superseded (failover or newer primary)"};
        break;
      }
      applied = replica_.apply(buffer);
      bytes_received_ += buffer.size();
      if (applied) {
        last_apply_us_ = applied->decode_us + applied->apply_us;
        applied_times_.push_back(Clock::now());
        while (applied_times_.size() > 256) applied_times_.pop_front();
      } else {
        last_error_ = applied.error().to_string();
      }
    }
    if (!applied) {
      spdlog::error("checkpoint.rejected epoch={} bytes={} error=\"{}\" replica_epoch={}",
                    buffer_epoch, buffer.size(), applied.error().to_string(), replica_.epoch());
      result = to_grpc(applied.error());
      break;
    }
    spdlog::debug("checkpoint.applied epoch={} pages={} decode_us={} apply_us={}", applied->epoch,
                  applied->pages, applied->decode_us, applied->apply_us);
    v1::SecondaryMessage ack;
    ack.mutable_ack()->set_epoch(applied->epoch);
    ack.mutable_ack()->set_apply_micros(last_apply_us_);
    if (!stream->Write(ack)) break;
    buffer.clear();
  }
  if (!buffer.empty() && result.ok())
    spdlog::warn("replication.partial_discarded epoch={} bytes={}/{} replica_epoch={}",
                 buffer_epoch, buffer.size(), buffer_total, replica_.epoch());
  std::lock_guard lock(mu_);
  if (active_stream_ == context) active_stream_ = nullptr;
  spdlog::info("replication.ended vm={} peer={} replica_epoch={} status=\"{}\"", config_.vm_name,
               context->peer(), replica_.epoch(), result.ok() ? "ok" : result.error_message());
  return result;
}

Result<ActivationReport> SecondaryVm::failover() {
  std::lock_guard lock(mu_);  // waits for an apply in progress: we activate a whole epoch
  if (failed_over_)
    return make_error(ErrorCode::kFailedPrecondition, "VM '{}' already failed over at epoch {}",
                      config_.vm_name, activation_.epoch);
  if (replica_.epoch() == 0)
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' has no consistent checkpoint yet (initial sync not finished)",
                      config_.vm_name);
  failed_over_ = true;  // from here on no primary may feed this replica
  if (active_stream_) active_stream_->TryCancel();
  spdlog::warn("failover.start vm={} epoch={} activator={}", config_.vm_name, replica_.epoch(),
               activator_->name());
  auto report = activator_->activate(replica_.epoch(), replica_.memory(), replica_.device_state());
  if (!report) {
    last_error_ = report.error().to_string();
    spdlog::error("failover.failed vm={} error=\"{}\"", config_.vm_name, last_error_);
    return report;
  }
  activation_ = *report;
  spdlog::warn("failover.done vm={} epoch={} activation_us={} {}", config_.vm_name, report->epoch,
               report->activation_us, report->detail);
  return report;
}

v1::VmStatus SecondaryVm::status() const {
  std::lock_guard lock(mu_);
  v1::VmStatus s;
  s.set_name(config_.vm_name);
  s.set_role("secondary");
  s.set_engine(activator_->name());
  s.set_epoch(replica_.epoch());
  s.set_acked_epoch(replica_.epoch());
  s.set_memory_bytes(config_.memory_bytes);
  s.set_apply_us_last(last_apply_us_);
  s.set_peer(peer_);
  s.set_detail(failed_over_ ? activation_.detail : last_error_);
  if (failed_over_)
    s.set_state("active");
  else if (active_stream_)
    s.set_state(replica_.syncing() || replica_.epoch() == 0 ? "syncing" : "protected");
  else
    s.set_state("waiting");
  auto now = Clock::now();
  size_t recent = 0;
  for (auto t : applied_times_)
    if (now - t < std::chrono::seconds(5)) ++recent;
  s.set_checkpoints_per_sec(static_cast<double>(recent) / 5.0);
  return s;
}

}  // namespace ftd
