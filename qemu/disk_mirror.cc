#include "qemu/disk_mirror.h"

#include <spdlog/spdlog.h>

#include "qemu/qemu_config.h"
#include "qemu/qmp_message.h"

namespace ftd {
namespace {

using Json = QmpClient::Json;

bool is_our_job(const Json& data, const std::string& job_id) {
  return qmp_string(data, "device") == job_id;
}

// A boolean member without exceptions (a wrong type reads as false).
bool qmp_true(const Json& obj, const char* key) {
  if (!obj.is_object()) return false;
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

std::string_view to_string(MirrorPhase phase) {
  switch (phase) {
    case MirrorPhase::kCopying:
      return "copying";
    case MirrorPhase::kReady:
      return "ready";
    case MirrorPhase::kFailed:
      return "failed";
  }
  return "?";
}

Result<uint64_t> DiskMirror::disk_size(QmpClient& qmp, const std::string& node) {
  FTD_ASSIGN_OR_RETURN(Json nodes, qmp.execute("query-named-block-nodes", Json{{"flat", true}}));
  if (nodes.is_array()) {
    for (const Json& n : nodes) {
      if (qmp_string(n, "node-name") != node) continue;
      auto image = n.find("image");
      if (image == n.end() || !image->is_object()) break;
      if (auto size = qmp_uint(*image, "virtual-size"); size && *size > 0) return *size;
      break;
    }
  }
  return make_error(ErrorCode::kNotFound, "QEMU has no block node '{}' with a size", node);
}

Result<DiskMirror> DiskMirror::start(QmpClient& qmp, DiskMirrorOptions options) {
  if (options.source_node.empty()) options.source_node = kDiskNodeName;
  const auto timeout = options.command_timeout;
  FTD_ASSIGN_OR_RETURN(Json status, qmp.execute("query-status", Json::object(), timeout));
  const bool was_running = qmp_true(status, "running");
  if (was_running) FTD_TRY(qmp.execute("stop", Json::object(), timeout));
  // Whatever happens below, a guest we stopped runs again.
  auto start_job = [&]() -> Status {
    auto target =
        qmp.execute("blockdev-add",
                    Json{{"driver", "nbd"},
                         {"node-name", options.target_node},
                         {"server", {{"type", "unix"}, {"path", options.nbd_socket_path}}},
                         {"export", options.export_name}},
                    timeout);
    if (!target) return std::unexpected(target.error().with_context("blockdev-add nbd target"));
    auto mirror = qmp.execute("blockdev-mirror",
                              Json{{"job-id", options.job_id},
                                   {"device", options.source_node},
                                   {"target", options.target_node},
                                   {"sync", "full"},
                                   {"copy-mode", "write-blocking"}},
                              timeout);
    if (!mirror) {
      (void)qmp.execute("blockdev-del", Json{{"node-name", options.target_node}}, timeout);
      return std::unexpected(mirror.error().with_context("blockdev-mirror"));
    }
    return ok();
  };
  Status started = start_job();
  if (was_running) {
    if (auto c = qmp.execute("cont", Json::object(), timeout); !c && started)
      started = std::unexpected(c.error().with_context("cont after starting the mirror"));
  }
  if (!started) return std::unexpected(started.error());
  spdlog::info(
      "disk.mirror_started job={} source={} target=nbd+unix://{}/{} sync=full "
      "copy_mode=write-blocking guest_was_running={}",
      options.job_id, options.source_node, options.nbd_socket_path, options.export_name,
      was_running);
  return DiskMirror(std::move(options));
}

void DiskMirror::fail(Error error) {
  if (phase_ == MirrorPhase::kFailed) return;
  phase_ = MirrorPhase::kFailed;
  spdlog::error("disk.unprotected job={} reason=\"{}\" action=report_every_checkpoint",
                options_.job_id, error.message);
  failure_ = std::move(error);
}

Result<MirrorPhase> DiskMirror::refresh(QmpClient& qmp) {
  if (phase_ == MirrorPhase::kFailed) return phase_;
  auto ours = [this](const Json& d) { return is_our_job(d, options_.job_id); };
  // Events first: an error event names the operation, query-block-jobs does not.
  if (auto ev = qmp.take_event("BLOCK_JOB_ERROR", ours)) {
    Json d = qmp_event_data(*ev);
    fail(Error{ErrorCode::kIo,
               fmt::format("mirror job {}: I/O error on {} (action {})", options_.job_id,
                           qmp_string(d, "operation"), qmp_string(d, "action"))});
    return phase_;
  }
  for (const char* name : {"BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"}) {
    if (auto ev = qmp.take_event(name, ours)) {
      Json d = qmp_event_data(*ev);
      fail(Error{ErrorCode::kUnavailable,
                 fmt::format("mirror job {} ended ({}{}{})", options_.job_id, name,
                             d.contains("error") ? ": " : "", qmp_string(d, "error"))});
      return phase_;
    }
  }
  FTD_ASSIGN_OR_RETURN(Json jobs,
                       qmp.execute("query-block-jobs", Json::object(), options_.command_timeout));
  const Json* job = nullptr;
  if (jobs.is_array()) {
    for (const Json& j : jobs)
      if (qmp_string(j, "device") == options_.job_id) job = &j;
  }
  if (job == nullptr) {
    fail(Error{ErrorCode::kUnavailable,
               fmt::format("mirror job {} is gone from query-block-jobs", options_.job_id)});
    return phase_;
  }
  const std::string status = qmp_string(*job, "status");
  if (status == "concluded" || status == "aborting" || status == "null") {
    fail(Error{ErrorCode::kUnavailable,
               fmt::format("mirror job {} is {}{}{}", options_.job_id, status,
                           job->contains("error") ? ": " : "", qmp_string(*job, "error"))});
    return phase_;
  }
  copied_bytes_ = qmp_uint(*job, "offset").value_or(copied_bytes_);
  total_bytes_ = qmp_uint(*job, "len").value_or(total_bytes_);
  const bool ready = qmp_true(*job, "ready");
  if (ready && phase_ == MirrorPhase::kCopying) {
    qmp.discard_events("BLOCK_JOB_READY");
    spdlog::info("disk.mirror_ready job={} len={} offset={} io_status={}", options_.job_id,
                 qmp_uint(*job, "len").value_or(0), qmp_uint(*job, "offset").value_or(0),
                 qmp_string(*job, "io-status", "ok"));
    phase_ = MirrorPhase::kReady;
  }
  return phase_;
}

void DiskMirror::stop(QmpClient& qmp) {
  const auto timeout = options_.command_timeout;
  if (phase_ != MirrorPhase::kFailed)
    (void)qmp.execute("block-job-cancel", Json{{"device", options_.job_id}, {"force", true}},
                      timeout);
  // The target node can only go once the job released it.
  for (int i = 0; i < 50; ++i) {
    if (qmp.execute("blockdev-del", Json{{"node-name", options_.target_node}}, timeout)) break;
    (void)qmp.wait_event("BLOCK_JOB_CANCELLED", std::chrono::milliseconds(20));
  }
}

}  // namespace ftd
