// The QMP side of disk capture: QEMU's active mirror of the guest disk
// (node kDiskNodeName) into ftd's NBD server. `blockdev-add` driver nbd (our
// unix socket) + `blockdev-mirror` sync=full, copy-mode=write-blocking: a
// guest write completes only once our server acknowledged it, and `stop`
// drains in-flight requests, so when `stop` returns every write of the epoch
// is in the DiskWriteLog.
//
// QEMU 7.2 can crash when a guest write races mirror start-up (fixed in 8.0),
// so start() stops a running guest around the two commands.
// Thread contract: the thread that owns the QmpClient (the pipeline's).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "qemu/qmp_client.h"

namespace ftd {

struct DiskMirrorOptions {
  std::string nbd_socket_path;
  std::string export_name = "ftd-disk";
  std::string source_node;  // default kDiskNodeName
  std::string job_id = "ftd-disk-mirror";
  std::string target_node = "ftd-disk-target";
  std::chrono::milliseconds command_timeout{5000};
};

enum class MirrorPhase {
  kCopying,  // initial full copy still running: the replica is not consistent
  kReady,    // BLOCK_JOB_READY seen: every later write is mirrored synchronously
  kFailed,   // job error / completed / cancelled / gone: the disk is NOT protected
};

class DiskMirror {
 public:
  // Size in bytes of the guest disk node (query-named-block-nodes).
  static Result<uint64_t> disk_size(QmpClient& qmp, const std::string& node);
  // Adds the NBD target node and starts the mirror job (guest paused meanwhile).
  static Result<DiskMirror> start(QmpClient& qmp, DiskMirrorOptions options);

  // Reads the job's state from QEMU (query-block-jobs, plus the block-job
  // events queued so far). Call it while the guest is stopped and *before*
  // taking the epoch's writes: a job QEMU reports ready has had all of its
  // initial-copy writes acknowledged, so they are already in the log.
  // Once failed, stays failed; the error says why.
  Result<MirrorPhase> refresh(QmpClient& qmp);
  MirrorPhase phase() const { return phase_; }
  const std::optional<Error>& failure() const { return failure_; }
  const DiskMirrorOptions& options() const { return options_; }
  // The job's progress at the last refresh (query-block-jobs offset / len).
  uint64_t copied_bytes() const { return copied_bytes_; }
  uint64_t total_bytes() const { return total_bytes_; }

  // Cancels the job and removes the target node (best effort, for a clean stop).
  void stop(QmpClient& qmp);

 private:
  explicit DiskMirror(DiskMirrorOptions options) : options_(std::move(options)) {}
  void fail(Error error);

  DiskMirrorOptions options_;
  MirrorPhase phase_ = MirrorPhase::kCopying;
  std::optional<Error> failure_;
  uint64_t copied_bytes_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string_view to_string(MirrorPhase phase);

}  // namespace ftd
