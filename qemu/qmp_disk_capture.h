// Disk capture for QmpEngine: ftd's NBD server + write log (disk/) and the
// QEMU mirror that feeds them (qemu/disk_mirror.h), as one object the engine
// asks for each epoch's writes.
// Thread contract: take()/stop() on the engine's (pipeline) thread;
// status() from any thread.
#pragma once

#include <memory>
#include <string>

#include "checkpoint/guest_engine.h"
#include "common/mutex.h"
#include "disk/disk_write_log.h"
#include "disk/nbd_server.h"
#include "qemu/disk_mirror.h"
#include "qemu/qmp_client.h"
#include "qemu/unix_socket.h"

namespace ftd {

struct QmpDiskCaptureOptions {
  std::string nbd_socket_path;  // ftd's NBD server; required
  std::string spill_dir;        // where the write log spills; required
  size_t memory_limit = size_t{256} << 20;
};

struct DiskCaptureStatus {
  std::string phase;  // "copying", "ready", "failed"
  std::string failure;
  uint64_t disk_size = 0;
  DiskWriteLogStats log;
  NbdServerStats server;
};

class QmpDiskCapture {
 public:
  // Serves the NBD export (sized like the guest's disk node) and starts
  // QEMU's mirror into it. The guest is paused around the mirror's start.
  static Result<std::unique_ptr<QmpDiskCapture>> start(QmpClient& qmp,
                                                       QmpDiskCaptureOptions options);
  ~QmpDiskCapture();

  // Called while the guest is stopped: the writes since the previous call.
  // An error once the mirror failed (and every call after): the disk is not
  // protected any more, and the primary must not claim it is.
  Result<DiskEpoch> take(QmpClient& qmp);
  // Called while the guest is stopped, when the replica lost writes it had
  // been sent (a full RAM resync drops the unacknowledged epochs): cancels the
  // mirror and starts a new one with a full copy, so the replica disk becomes
  // consistent again once it is ready (epochs are incomplete until then).
  // Also the way back after a mirror failure. Nothing to do before the first
  // take(): the current copy has not been shipped yet.
  Status restart(QmpClient& qmp);
  DiskCaptureStatus status() const;
  uint64_t disk_size() const { return disk_size_; }

 private:
  QmpDiskCapture(uint64_t disk_size, std::unique_ptr<DiskWriteLog> log)
      : disk_size_(disk_size), log_(std::move(log)) {}
  // Mirror options of copy number `generation`: a job id and target node of
  // their own, so that events of a cancelled job never count for the next.
  DiskMirrorOptions mirror_options(uint64_t generation) const;

  const uint64_t disk_size_;
  std::unique_ptr<DiskWriteLog> log_;
  std::unique_ptr<NbdServer> server_;  // after log_: destroyed first
  std::string nbd_socket_path_;
  std::optional<DiskMirror> mirror_;
  uint64_t generation_ = 1;         // full copies started so far
  bool taken_since_start_ = false;  // the current copy's writes went out
  Clock::time_point last_progress_log_{};
  mutable Mutex status_mu_;
  MirrorPhase phase_ FTD_GUARDED_BY(status_mu_) = MirrorPhase::kCopying;
  std::string failure_ FTD_GUARDED_BY(status_mu_);
};

}  // namespace ftd
