#include "bench/migrate_ftd.h"

#include <fmt/format.h>

#include <thread>

#include "bench/failover_log.h"
#include "bench/migrate_report.h"
#include "bench/pair_clients.h"
#include "planning/plan_proto.h"
#include "planning/plan_report.h"
#include "proto/status_mapping.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"

namespace ftd::bench {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::Daemon;
using testing::HostId;
using testing::HostLan;
using testing::unix_now_s;

constexpr int kReplicationPort = 7400;  // ProtectedPair's

bool protected_primary(Daemon& d, v1::VmStatus* out = nullptr) {
  auto s = d.status();
  if (s && out) *out = *s;
  return s && s->role() == "primary" && s->state() == v1::VM_STATE_PROTECTED;
}

std::string describe(Daemon& d) {
  auto s = d.status();
  return s ? fmt::format("{} {} {}", s->role(), state_name(s->state()), s->detail())
           : s.error().to_string();
}

// The plan the primary's daemon samples (the Plan RPC, as `ftctl plan`),
// with the model's answers at QEMU's default downtime-limit and the lowered one.
Json sample_plan(Daemon& primary, const FtdSideOptions& o) {
  auto reply = primary.plan(o.plan_sample_ms);
  if (!reply) return {{"error", reply.error().to_string()}};
  const planning::PlanInputs in = planning::from_proto(reply->inputs());
  Json j = planning::plan_json(in, {});
  planning::PlanQuestion lowered;
  lowered.precopy.downtime_limit_ms = o.lowered_downtime_limit_ms;
  j["qemu_precopy_lowered"] = planning::plan_json(in, lowered)["qemu_precopy"];
  return j;
}

// Where the time after the handover goes, from the daemons' own log lines
// (ms; -1 when a line is missing): the old host seeding its replica and
// starting its standby, the new primary waiting for it to listen, digesting
// and comparing RAM, the differential sync until queued.
Json phases_from_logs(const std::string& from_log, const std::string& to_log, double t0) {
  const auto from = read_ftd_log(from_log);
  const auto to = read_ftd_log(to_log);
  const double since = t0 - 0.001;  // log stamps are truncated to ms
  auto field = [&](const std::vector<LogLine>& lines, const char* event, const char* key) {
    auto l = first_line(lines, since, event, {});
    auto v = l ? log_field(*l, key) : std::nullopt;
    return v ? std::stod(*v) : -1.0;
  };
  return {{"old_host_replica_seeded", field(from, "replica.seeded", "ms")},
          {"old_host_standby_start", field(from, "standby.ready", "start_ms")},
          {"new_primary_wait_for_old_host", field(to, "migration.protected_back", "ms")},
          {"sync_digest_compare", field(to, "sync.diff", "ms")},
          {"sync_until_queued", field(to, "sync.queued", "ms")}};
}

// One `ftctl migrate` from `from` to `to`; returns once `to` is the
// protected primary again (the differential sync back to `from` done).
Result<Json> migrate_once(Daemon& from, Daemon& to, int index, uint64_t pages,
                          const std::string& from_log, const std::string& to_log) {
  Json r{{"run", index}};
  const double t0 = unix_now_s();
  FTD_ASSIGN_OR_RETURN(v1::MigrateReply reply, from.migrate(120));
  const double t_reply = unix_now_s();
  v1::VmStatus now;
  if (!testing::wait_until([&] { return protected_primary(to, &now); }, 300s))
    return make_error(ErrorCode::kTimeout, "migration {}: not protected in the new direction: {}",
                      index, describe(to));
  const double t_protected = unix_now_s();
  r.update({{"epoch", reply.epoch()},
            {"downtime_ms", static_cast<double>(reply.downtime_us()) / 1e3},
            {"old_host_pause_ms", static_cast<double>(reply.pause_us()) / 1e3},
            {"final_checkpoint_pages", reply.final_checkpoint_pages()},
            {"handover_total_ms", static_cast<double>(reply.total_us()) / 1e3},
            {"request_to_protected_ms", (t_protected - t0) * 1e3},
            {"sync_pages_sent", now.sync_pages_sent()},
            {"sync_pages_skipped", now.sync_pages_skipped()},
            {"sync_bytes_saved", now.sync_bytes_saved()},
            {"full_resync", now.sync_pages_sent() + now.sync_pages_skipped() == pages &&
                                now.sync_pages_sent() >= pages / 4},
            {"t_start_unix_s", t0},
            {"t_end_unix_s", t_reply},
            {"phases_ms", phases_from_logs(from_log, to_log, t0)}});
  return r;
}

// The running primary's host dies; its peer takes over (witness); the dead
// host returns as a secondary ("pri": a new, empty replica directory ->
// full sync; "sec": its stale replica -> differential) and the survivor is
// protected to it with `ftctl protect --peer`.
Result<Json> reprotect_once(testing::ProtectedPair& pair, Daemon& running, HostId running_host,
                            Daemon& survivor, Daemon*& returned) {
  Json r{
      {"killed_host", HostLan::role(running_host)},
      {"kind", running_host == HostId::kPrimary ? "full (fresh host, empty replica)"
                                                : "differential (returning host, stale replica)"}};
  const double t_kill = unix_now_s();
  FTD_TRY(pair.lan().kill_host(running_host));
  if (!testing::wait_until(
          [&] {
            auto s = survivor.status();
            return s && s->failover().state() == "active";
          },
          60s))
    return make_error(ErrorCode::kTimeout, "no failover: {}", describe(survivor));
  r["kill_to_active_ms"] = (unix_now_s() - t_kill) * 1e3;
  FTD_ASSIGN_OR_RETURN(returned, pair.return_as_secondary(running_host));
  // A returning secondary accepts a protect only once its replica image and
  // standby QEMU are ready (seconds for 512 MiB under TCG; `protect` waits 5 s).
  FTD_TRY(testing::wait_for_line(pair.returned_log(), "standby.ready", 120s));
  r["active_to_returned_ready_ms"] =
      (unix_now_s() - t_kill) * 1e3 - r["kill_to_active_ms"].get<double>();
  FTD_ASSIGN_OR_RETURN(v1::VmStatus before, survivor.status());
  const double t0 = unix_now_s();
  FTD_TRY(survivor.protect(fmt::format("{}:{}", HostLan::address(running_host), kReplicationPort)));
  v1::VmStatus now;
  if (!testing::wait_until([&] { return protected_primary(survivor, &now); }, 300s))
    return make_error(ErrorCode::kTimeout, "not protected again: {}", describe(survivor));
  r.update({{"protect_to_protected_ms", (unix_now_s() - t0) * 1e3},
            {"sync_pages_sent", now.sync_pages_sent()},
            {"sync_pages_skipped", now.sync_pages_skipped()},
            {"sync_bytes_saved", now.sync_bytes_saved()},
            {"sync_bytes_sent_raw", now.sync_pages_sent() * 4096},
            // Encoded bytes the primary sent from protect until protected
            // (the sync and the first checkpoints). A daemon that was a
            // secondary until the failover starts its counter with the new
            // pipeline, from 0.
            {"wire_bytes", now.wire_bytes_total() >= before.wire_bytes_total()
                               ? now.wire_bytes_total() - before.wire_bytes_total()
                               : now.wire_bytes_total()}});
  return r;
}

}  // namespace

Result<Json> run_ftd_side(const FtdSideOptions& o) {
  testing::PairOptions po{.memory_mib = o.memory_mib, .migratable = true};
  po.append_extra = o.append_extra;
  const auto t_start = std::chrono::steady_clock::now();
  FTD_ASSIGN_OR_RETURN(auto pair, testing::ProtectedPair::start(po));
  Json out{{"pair_start_s",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()},
           {"initial_sync_s", pair->sync_seconds()}};
  // Copies the logs on the way out, whatever the outcome (a failed run needs them).
  struct KeepLogs {
    testing::ProtectedPair& pair;
    std::string dir;
    ~KeepLogs() {
      if (!dir.empty()) (void)pair.copy_logs(dir);
    }
  } keep{*pair, o.keep_logs_dir};
  if (!o.append_extra.empty())
    FTD_TRY(testing::wait_for_line(pair->primary_run() + "/serial.log", "ftd-memload start", 60s));
  FTD_ASSIGN_OR_RETURN(PairClients clients, start_pair_clients(*pair, o.ping_interval_s));
  auto& ping = clients.ping;
  auto& records = clients.records;
  std::this_thread::sleep_for(3s);
  out["plan"] = sample_plan(pair->primary(), o);
  fmt::print("  ftd plan: {}\n", out["plan"].contains("ftd_migration")
                                     ? out["plan"]["ftd_migration"].dump()
                                     : out["plan"].dump());

  const uint64_t pages = (static_cast<uint64_t>(o.memory_mib) << 20) / 4096;
  Daemon* sides[2] = {&pair->primary(), &pair->secondary()};
  const char* logs[2] = {"primary.log", "secondary.log"};
  Json runs = Json::array();
  for (int i = 0; i < o.runs; ++i) {
    auto r = migrate_once(*sides[i % 2], *sides[(i + 1) % 2], i, pages, pair->path(logs[i % 2]),
                          pair->path(logs[(i + 1) % 2]));
    if (!r) {
      out["error"] = r.error().to_string();
      break;
    }
    fmt::print("  ftd migration {}: downtime {:.1f} ms, request->protected {:.0f} ms, sent {}\n", i,
               (*r)["downtime_ms"].get<double>(), (*r)["request_to_protected_ms"].get<double>(),
               (*r)["sync_pages_sent"].get<uint64_t>());
    runs.push_back(*r);
    std::this_thread::sleep_for(2s);  // steady protection before the next one
  }
  const int done = static_cast<int>(runs.size());

  Json reprotect = Json::array();
  if (o.reprotect && !out.contains("error")) {
    // Who runs the VM now, on which host; then kill it twice, each time
    // protecting the survivor to the host that returns.
    Daemon* running = sides[done % 2];
    Daemon* other = sides[(done + 1) % 2];
    HostId host = done % 2 == 0 ? HostId::kPrimary : HostId::kSecondary;
    for (int step = 0; step < 2; ++step) {
      Daemon* returned = nullptr;
      auto r = reprotect_once(*pair, *running, host, *other, returned);
      if (!r) {
        out["reprotect_error"] = r.error().to_string();
        break;
      }
      fmt::print("  re-protection {}: {:.0f} ms, pages sent {} skipped {}\n",
                 (*r)["kind"].get<std::string>(), (*r)["protect_to_protected_ms"].get<double>(),
                 (*r)["sync_pages_sent"].get<uint64_t>(),
                 (*r)["sync_pages_skipped"].get<uint64_t>());
      reprotect.push_back(*r);
      running = other;
      other = returned;
      host = host == HostId::kPrimary ? HostId::kSecondary : HostId::kPrimary;
      std::this_thread::sleep_for(3s);
    }
  }
  auto verdict = records.stop(90s);
  auto pings = ping.stop();
  FTD_TRY(pings);
  add_client_gaps(runs, *pings);
  out["migrations"] = runs;
  out["reprotect"] = reprotect;
  out["ping"] = {{"interval_ms", o.ping_interval_s * 1e3},
                 {"loss_pct", pings->loss_pct},
                 {"longest_gap_ms", pings->longest_gap_ms}};
  if (verdict)
    out["records"] = testing::record_summary(verdict->first, verdict->second);
  else
    out["records"] = {{"error", verdict.error().to_string()}};
  return out;
}

}  // namespace ftd::bench
