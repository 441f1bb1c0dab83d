#include "qemu/qmp_disk_capture.h"

#include <spdlog/spdlog.h>

#include "qemu/qemu_config.h"

namespace ftd {

Result<std::unique_ptr<QmpDiskCapture>> QmpDiskCapture::start(QmpClient& qmp,
                                                              QmpDiskCaptureOptions options) {
  if (options.nbd_socket_path.empty() || options.spill_dir.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "disk capture needs an NBD socket and a spill dir");
  FTD_ASSIGN_OR_RETURN(uint64_t size, DiskMirror::disk_size(qmp, kDiskNodeName));
  auto log = std::make_unique<DiskWriteLog>(
      DiskWriteLogOptions{.memory_limit = options.memory_limit, .spill_dir = options.spill_dir});
  std::unique_ptr<QmpDiskCapture> capture(new QmpDiskCapture(size, std::move(log)));
  capture->nbd_socket_path_ = options.nbd_socket_path;
  DiskMirrorOptions mirror = capture->mirror_options(capture->generation_);
  FTD_ASSIGN_OR_RETURN(capture->server_, NbdServer::start({.socket_path = options.nbd_socket_path,
                                                           .export_name = mirror.export_name,
                                                           .export_size = size},
                                                          *capture->log_));
  FTD_ASSIGN_OR_RETURN(DiskMirror started, DiskMirror::start(qmp, std::move(mirror)));
  capture->mirror_.emplace(std::move(started));
  capture->last_progress_log_ = Clock::now();
  return capture;
}

QmpDiskCapture::~QmpDiskCapture() = default;

DiskMirrorOptions QmpDiskCapture::mirror_options(uint64_t generation) const {
  DiskMirrorOptions o;
  o.nbd_socket_path = nbd_socket_path_;
  if (generation > 1) {
    o.job_id += fmt::format("-{}", generation);
    o.target_node += fmt::format("-{}", generation);
  }
  return o;
}

Status QmpDiskCapture::restart(QmpClient& qmp) {
  if (!taken_since_start_ && mirror_ && mirror_->phase() != MirrorPhase::kFailed) return ok();
  const std::string old_job = mirror_ ? mirror_->options().job_id : "";
  if (mirror_) mirror_->stop(qmp);
  mirror_.reset();
  {
    MutexLock lock(status_mu_);
    phase_ = MirrorPhase::kFailed;
    failure_ = "restarting the disk copy";
  }
  FTD_ASSIGN_OR_RETURN(DiskMirror started, DiskMirror::start(qmp, mirror_options(++generation_)));
  mirror_.emplace(std::move(started));
  taken_since_start_ = false;
  {
    MutexLock lock(status_mu_);
    phase_ = MirrorPhase::kCopying;
    failure_.clear();
  }
  spdlog::warn(
      "disk.copy_restarted old_job={} new_job={} reason=\"the replica lost unacknowledged "
      "writes: a full copy makes its disk consistent again\"",
      old_job, mirror_->options().job_id);
  return ok();
}

Result<DiskEpoch> QmpDiskCapture::take(QmpClient& qmp) {
  if (!mirror_)
    return make_error(ErrorCode::kUnavailable,
                      "disk not protected: no mirror job (restart failed)");
  taken_since_start_ = true;
  // The job's state first, then the log: a job QEMU reports ready has had
  // every initial-copy write acknowledged, hence recorded (see refresh()).
  FTD_ASSIGN_OR_RETURN(MirrorPhase phase, mirror_->refresh(qmp));
  {
    MutexLock lock(status_mu_);
    phase_ = phase;
    if (mirror_->failure()) failure_ = mirror_->failure()->message;
  }
  if (phase == MirrorPhase::kFailed)
    return std::unexpected(mirror_->failure()->with_context("disk not protected"));
  FTD_ASSIGN_OR_RETURN(std::vector<DiskWrite> writes, log_->take_epoch());
  if (phase == MirrorPhase::kCopying &&
      Clock::now() - last_progress_log_ > std::chrono::seconds(2)) {
    last_progress_log_ = Clock::now();
    spdlog::info("disk.mirror_progress phase=copying copied={} of={} records={}",
                 mirror_->copied_bytes(), mirror_->total_bytes(), log_->stats().last_seq);
  }
  return DiskEpoch{.disk_size = disk_size_,
                   .complete = phase == MirrorPhase::kReady,
                   .writes = std::move(writes)};
}

DiskCaptureStatus QmpDiskCapture::status() const {
  DiskCaptureStatus s;
  s.disk_size = disk_size_;
  s.log = log_->stats();
  s.server = server_->stats();
  MutexLock lock(status_mu_);
  s.phase = std::string(to_string(phase_));
  s.failure = failure_;
  return s;
}

}  // namespace ftd
