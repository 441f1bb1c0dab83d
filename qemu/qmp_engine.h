// The real guest engine: a QEMU driven over QMP. pause = `stop`; device state
// = `migrate` into our own unix socket with x-ignore-shared (guest RAM is
// shared memfd, so only devices and small private blocks are sent); resume =
// `cont` (accepted after a completed migration). RAM is read directly from
// the memfd mapping; dirty pages come from a DirtyTracker (tracking/) chosen
// at create(), or from the pipeline's scanner when that is the scan.
// Thread contract: the pipeline thread drives it; tracking_status() may be
// called from any thread.
#pragma once

#include <chrono>
#include <memory>

#include "checkpoint/guest_engine.h"
#include "common/mutex.h"
#include "qemu/qemu_process.h"
#include "qemu/qmp_disk_capture.h"
#include "qemu/unix_socket.h"
#include "tracking/tracker_probe.h"

namespace ftd {

struct QmpEngineOptions {
  std::chrono::milliseconds command_timeout{5000};    // stop, cont, migrate
  std::chrono::milliseconds devstate_timeout{10000};  // whole device-state capture
  size_t max_devstate_bytes = 64 * 1024 * 1024;       // more means RAM is not shared
  TrackingOptions tracking;                           // dirty tracker (default auto)
  // Replicate the guest disk (QemuConfig::disk): ftd's NBD server + QEMU's
  // write-blocking mirror. nullopt: the VM's disk, if any, is not captured.
  std::optional<QmpDiskCaptureOptions> disk;
};

// Which tracker finds dirty pages and how it has done so far.
struct TrackingStatus {
  std::string tracker;  // "uffd-wp", "soft-dirty", "scan"
  std::string reason;   // why the probe chose it
  TrackerCounters counters;
  std::string failure;  // set when the tracker failed and the scan took over
};

// Wall-clock cost of the parts of the most recent checkpoint, in ms.
struct QmpCheckpointTimings {
  double stop_ms = 0;
  double devstate_ms = 0;
  double cont_ms = 0;
  double dirty_log_ms = 0;  // tracker collect (0 with the pipeline's scan)
  double disk_ms = 0;       // mirror state query + taking the epoch's disk writes
  size_t devstate_bytes = 0;
};

class QmpEngine final : public GuestEngine {
 public:
  // Takes over a memfd-backed QEMU (launched or attached) and enables the
  // migration capabilities once.
  static Result<std::unique_ptr<QmpEngine>> create(QemuProcess qemu, QmpEngineOptions options = {});

  std::string name() const override { return "qmp"; }
  std::span<const std::byte> memory() const override { return qemu_.ram(); }
  Status pause() override;
  Status resume() override;
  Result<std::vector<std::byte>> capture_device_state() override;
  // The tracker's pages (QEMU stopped); nullopt with the scan, or after the
  // tracker failed (then the pipeline's scanner, whose first scan reports
  // every page, takes over for good).
  std::optional<std::vector<uint32_t>> take_dirty_log() override;
  TrackingStatus tracking_status() const;
  // The disk writes since the previous call (QEMU stopped); an error once
  // the mirror failed: the disk is no longer protected.
  Result<DiskEpoch> take_disk_writes() override;
  // nullopt without disk capture.
  std::optional<DiskCaptureStatus> disk_status() const;
  // The mirrored disk's size (0 without disk capture).
  uint64_t disk_bytes() const override { return disk_ ? disk_->disk_size() : 0; }
  double start_ms() const override { return qemu_.start_ms(); }
  // A new mirror job with a full copy (guest stopped: the pipeline's pause).
  Result<bool> restart_disk_copy() override;

  const QmpCheckpointTimings& last_timings() const { return timings_; }
  uint64_t checkpoints() const { return captures_; }
  QemuProcess& process() { return qemu_; }

 private:
  QmpEngine(QemuProcess qemu, QmpEngineOptions options, UnixListener sink)
      : qemu_(std::move(qemu)), options_(options), sink_(std::move(sink)) {}
  Status start_tracking();
  Result<std::vector<std::byte>> migrate_device_state();
  // Accepts QEMU's stream connection, watching QMP meanwhile so a migration
  // that fails before connecting (or a QEMU that dies) is reported at once.
  Result<UniqueFd> accept_stream(Deadline deadline);

  QemuProcess qemu_;
  QmpEngineOptions options_;
  UnixListener sink_;  // QEMU migrates into this socket
  QmpCheckpointTimings timings_;
  uint64_t captures_ = 0;
  std::unique_ptr<DirtyTracker> tracker_;  // null: the pipeline scans
  std::unique_ptr<QmpDiskCapture> disk_;   // null: no disk capture
  mutable Mutex status_mu_;
  TrackingStatus status_ FTD_GUARDED_BY(status_mu_);
};

// Migration capabilities both ends need: skip shared RAM, emit MIGRATION events.
Status enable_device_state_migration(QmpClient& qmp);
// Waits for the MIGRATION event that ends a migration; error unless "completed"
// (with QEMU's error-desc from query-migrate when it failed).
Status wait_migration_end(QmpClient& qmp, Deadline deadline);
// True for the MIGRATION event data of a finished migration (any outcome).
bool migration_ended(const QmpClient::Json& data);
// Error (with query-migrate's error-desc) unless the event says "completed".
Status migration_outcome(QmpClient& qmp, const QmpClient::Json& event, Deadline deadline);

}  // namespace ftd
