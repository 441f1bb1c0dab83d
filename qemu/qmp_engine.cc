#include "qemu/qmp_engine.h"

#include <poll.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <thread>

#include "qemu/qemu_dirty_tracking.h"
#include "qemu/qmp_message.h"

namespace ftd {
Status enable_device_state_migration(QmpClient& qmp) {
  using Json = QmpClient::Json;
  Json caps = Json::array({Json{{"capability", "x-ignore-shared"}, {"state", true}},
                           Json{{"capability", "events"}, {"state", true}}});
  FTD_TRY(qmp.execute("migrate-set-capabilities", Json{{"capabilities", caps}}));
  // The default bandwidth cap (128 MiB/s) would throttle the small private RAM
  // blocks (BIOS, option ROMs) that still travel in the stream.
  FTD_TRY(qmp.execute("migrate-set-parameters", Json{{"max-bandwidth", int64_t{1} << 40}}));
  return ok();
}

bool migration_ended(const QmpClient::Json& data) {
  auto status = qmp_string(data, "status");
  return status == "completed" || status == "failed" || status == "cancelled";
}

Status migration_outcome(QmpClient& qmp, const QmpClient::Json& event, Deadline deadline) {
  std::string status = qmp_string(qmp_event_data(event), "status");
  if (status == "completed") return ok();
  std::string why = "(no error-desc)";
  if (auto q = qmp.execute("query-migrate", QmpClient::Json::object(), time_left(deadline)); q)
    why = qmp_string(*q, "error-desc", why);
  return make_error(ErrorCode::kIo, "migration {}: {}", status, why);
}

Status wait_migration_end(QmpClient& qmp, Deadline deadline) {
  FTD_ASSIGN_OR_RETURN(auto ev, qmp.wait_event("MIGRATION", time_left(deadline), migration_ended));
  return migration_outcome(qmp, ev, deadline);
}

Result<std::unique_ptr<QmpEngine>> QmpEngine::create(QemuProcess qemu, QmpEngineOptions options) {
  if (qemu.ram().empty()) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "QmpEngine needs memfd-backed guest RAM mapped from QEMU pid {}", qemu.pid());
  }
  if (auto s = enable_device_state_migration(qemu.qmp()); !s)
    return std::unexpected(qemu.explain(s.error()));
  FTD_ASSIGN_OR_RETURN(UnixListener sink,
                       UnixListener::listen(qemu.config().qmp_socket_path + ".devstate"));
  std::unique_ptr<QmpEngine> engine(new QmpEngine(std::move(qemu), options, std::move(sink)));
  FTD_TRY(engine->start_tracking());
  if (engine->options_.disk) {
    auto disk = QmpDiskCapture::start(engine->qemu_.qmp(), *engine->options_.disk);
    if (!disk)
      return std::unexpected(engine->qemu_.explain(disk.error().with_context("disk capture")));
    engine->disk_ = std::move(*disk);
  }
  return engine;
}

Status QmpEngine::start_tracking() {
  FTD_ASSIGN_OR_RETURN(TrackerChoice choice, choose_qemu_tracker(qemu_, options_.tracking));
  MutexLock lock(status_mu_);
  status_.tracker = std::string(to_string(choice.kind));
  status_.reason = choice.reason;
  // The pipeline's own scanner is the scan backend (multi-threaded, and it
  // runs with the guest going during the initial sync).
  if (choice.kind != TrackerKind::kScan) tracker_ = std::move(choice.tracker);
  return ok();
}

std::optional<std::vector<uint32_t>> QmpEngine::take_dirty_log() {
  if (!tracker_) return std::nullopt;
  auto start = Clock::now();
  auto pages = tracker_->collect();
  timings_.dirty_log_ms = ms_since(start);
  MutexLock lock(status_mu_);
  status_.counters = tracker_->counters();
  if (!pages) {
    spdlog::error("tracking.failed tracker={} error=\"{}\" action=scan_from_now_on",
                  status_.tracker, pages.error().to_string());
    status_.failure = pages.error().to_string();
    status_.tracker = "scan";
    tracker_.reset();
    return std::nullopt;
  }
  return std::move(*pages);
}

Result<DiskEpoch> QmpEngine::take_disk_writes() {
  if (!disk_) return DiskEpoch{};
  auto start = Clock::now();
  auto epoch = disk_->take(qemu_.qmp());
  timings_.disk_ms = ms_since(start);
  return epoch;
}

Result<bool> QmpEngine::restart_disk_copy() {
  if (!disk_) return false;
  FTD_TRY(disk_->restart(qemu_.qmp()));
  return true;
}

std::optional<DiskCaptureStatus> QmpEngine::disk_status() const {
  if (!disk_) return std::nullopt;
  return disk_->status();
}

TrackingStatus QmpEngine::tracking_status() const {
  MutexLock lock(status_mu_);
  return status_;
}

Status QmpEngine::pause() {
  auto start = Clock::now();
  if (auto r = qemu_.qmp().execute("stop", {}, options_.command_timeout); !r)
    return std::unexpected(qemu_.explain(r.error().with_context("pause")));
  timings_.stop_ms = ms_since(start);
  return ok();
}

Status QmpEngine::resume() {
  auto start = Clock::now();
  // QEMU 7.2 reports a migration "completed" slightly before it is finalized;
  // a `cont` in that window fails with "Migration is not finalized yet".
  // Retry briefly instead of leaving the guest stopped.
  auto deadline = deadline_after(options_.command_timeout);
  while (true) {
    auto r = qemu_.qmp().execute("cont", {}, options_.command_timeout);
    if (r) break;
    bool not_finalized = r.error().message.find("not finalized") != std::string::npos;
    if (!not_finalized || Clock::now() > deadline)
      return std::unexpected(qemu_.explain(r.error().with_context("resume")));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  timings_.cont_ms = ms_since(start);
  spdlog::debug("qmp.checkpoint n={} stop_ms={:.2f} devstate_ms={:.2f} cont_ms={:.2f} bytes={}",
                captures_, timings_.stop_ms, timings_.devstate_ms, timings_.cont_ms,
                timings_.devstate_bytes);
  return ok();
}

Result<std::vector<std::byte>> QmpEngine::capture_device_state() {
  auto start = Clock::now();
  auto blob = migrate_device_state();
  if (!blob && qemu_.qmp().connected() && qemu_.alive()) {
    // Leave no half-done migration behind, or the next `migrate` is refused.
    (void)qemu_.qmp().execute("migrate_cancel", {}, options_.command_timeout);
  }
  if (!blob)
    return std::unexpected(qemu_.explain(blob.error().with_context("capture device state")));
  timings_.devstate_ms = ms_since(start);
  timings_.devstate_bytes = blob->size();
  ++captures_;
  return blob;
}

Result<std::vector<std::byte>> QmpEngine::migrate_device_state() {
  Deadline deadline = deadline_after(options_.devstate_timeout);
  QmpClient& qmp = qemu_.qmp();
  qmp.discard_events("MIGRATION");  // leftovers of earlier captures
  FTD_TRY(qmp.execute("migrate", QmpClient::Json{{"uri", "unix:" + sink_.path()}},
                      std::min(options_.command_timeout, time_left(deadline))));
  FTD_ASSIGN_OR_RETURN(UniqueFd conn, accept_stream(deadline));
  FTD_ASSIGN_OR_RETURN(auto bytes,
                       read_until_eof(conn.get(), deadline, options_.max_devstate_bytes));
  // EOF alone does not prove success: QEMU also closes the stream when it fails.
  FTD_TRY(wait_migration_end(qmp, deadline));
  return bytes;
}

Result<UniqueFd> QmpEngine::accept_stream(Deadline deadline) {
  QmpClient& qmp = qemu_.qmp();
  while (true) {
    // The event may already be queued: QmpClient reads events while waiting
    // for the `migrate` reply, and poll() would never see those bytes again.
    if (auto ev = qmp.take_event("MIGRATION", migration_ended)) {
      FTD_TRY(migration_outcome(qmp, *ev, deadline));
      return make_error(ErrorCode::kIo, "migration completed without sending a stream");
    }
    pollfd fds[2] = {{.fd = sink_.fd(), .events = POLLIN, .revents = 0},
                     {.fd = qmp.fd(), .events = POLLIN, .revents = 0}};
    // Short polls: a failure event can also sit unparsed in the QMP client's
    // buffer where poll() cannot see it, so we ask QEMU directly meanwhile.
    int r = ::poll(fds, 2, std::min(remaining_ms(deadline), 50));
    if (r < 0 && errno != EINTR) return errno_error("poll device-state socket");
    if (r == 0) {
      if (Clock::now() >= deadline)
        return make_error(ErrorCode::kTimeout, "QEMU did not connect to {} for the device state",
                          sink_.path());
      FTD_ASSIGN_OR_RETURN(
          auto q, qmp.execute("query-migrate", QmpClient::Json::object(), time_left(deadline)));
      std::string status = qmp_string(q, "status");
      if (status == "failed" || status == "cancelled")
        return make_error(ErrorCode::kIo, "migration {}: {}", status,
                          qmp_string(q, "error-desc", "(no error-desc)"));
      continue;
    }
    if (fds[0].revents != 0) return sink_.accept(deadline);
    if (fds[1].revents != 0) FTD_TRY(qmp.read_available());
  }
}

}  // namespace ftd
