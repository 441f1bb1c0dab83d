#include "qemu/standby_qemu.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "qemu/qmp_engine.h"

namespace ftd {
Status check_device_state_header(std::span<const std::byte> s) {
  static constexpr unsigned char kHeader[] = {'Q', 'E', 'V', 'M', 0, 0, 0, 3};
  if (s.size() < sizeof kHeader || std::memcmp(s.data(), kHeader, sizeof kHeader) != 0) {
    return make_error(ErrorCode::kCorrupt,
                      "device state ({} bytes) is not a QEMU migration stream (no QEVM v3 header)",
                      s.size());
  }
  return ok();
}

Result<StandbyQemu> StandbyQemu::prelaunch(QemuConfig config, const std::string& replica_path) {
  struct stat st {};
  if (::stat(replica_path.c_str(), &st) != 0) return errno_error("replica file " + replica_path);
  uint64_t want = config.memory_mib * 1024 * 1024;
  if (static_cast<uint64_t>(st.st_size) != want) {
    return make_error(ErrorCode::kInvalidArgument, "replica file {} has {} bytes, guest RAM is {}",
                      replica_path, st.st_size, want);
  }
  config.ram_file = replica_path;
  config.incoming = true;
  FTD_ASSIGN_OR_RETURN(QemuProcess qemu, QemuProcess::launch(config));
  if (auto s = enable_device_state_migration(qemu.qmp()); !s)
    return std::unexpected(qemu.explain(s.error().with_context("standby")));
  return StandbyQemu(std::move(qemu));
}

Status StandbyQemu::load_device_state(std::span<const std::byte> device_state, Deadline deadline) {
  QmpClient& qmp = qemu_.qmp();
  std::string path = qemu_.config().qmp_socket_path + ".incoming";
  ::unlink(path.c_str());
  qmp.discard_events("MIGRATION");
  // QEMU listens on `path` once migrate-incoming returns.
  FTD_TRY(qmp.execute("migrate-incoming", QmpClient::Json{{"uri", "unix:" + path}},
                      time_left(deadline)));
  FTD_ASSIGN_OR_RETURN(UniqueFd conn, connect_unix(path));
  FTD_TRY(write_all(conn.get(), device_state, deadline));
  ::shutdown(conn.get(), SHUT_WR);
  return wait_migration_end(qmp, deadline);
}

Result<ActivationTimings> StandbyQemu::activate(std::span<const std::byte> device_state,
                                                std::chrono::milliseconds timeout) {
  if (activated_) return make_error(ErrorCode::kFailedPrecondition, "standby already activated");
  FTD_TRY(check_device_state_header(device_state));
  Deadline deadline = deadline_after(timeout);
  ActivationTimings t;
  auto start = Clock::now();
  if (auto s = load_device_state(device_state, deadline); !s) {
    // QEMU 7.2 reports why a load failed only on stderr, then exits.
    Error e = qemu_.explain(s.error().with_context("standby: load device state"),
                            std::chrono::milliseconds(1000));
    if (qemu_.alive()) e.message += "; QEMU log tail:\n" + qemu_.log_tail();
    return std::unexpected(e);
  }
  t.load_ms = ms_since(start);

  auto step = Clock::now();
  if (auto r = qemu_.qmp().execute("cont", {}, time_left(deadline)); !r)
    return std::unexpected(qemu_.explain(r.error().with_context("standby: cont")));
  t.cont_ms = ms_since(step);
  activated_ = true;

  step = Clock::now();
  using Json = QmpClient::Json;
  // Same schedule as QEMU's migration default: tell switches where the MAC went.
  Json announce{{"initial", 50}, {"max", 550}, {"rounds", 5}, {"step", 100}};
  if (auto r = qemu_.qmp().execute("announce-self", announce, time_left(deadline)); !r)
    return std::unexpected(qemu_.explain(r.error().with_context("standby: announce-self")));
  t.announce_ms = ms_since(step);
  t.total_ms = ms_since(start);
  spdlog::info(
      "standby.activated pid={} load_ms={:.2f} cont_ms={:.2f} announce_ms={:.2f} "
      "total_ms={:.2f} devstate_bytes={}",
      qemu_.pid(), t.load_ms, t.cont_ms, t.announce_ms, t.total_ms, device_state.size());
  return t;
}

}  // namespace ftd
