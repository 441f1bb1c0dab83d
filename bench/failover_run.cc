#include "bench/failover_run.h"

#include <fmt/format.h>

#include <thread>

#include "bench/failover_log.h"
#include "bench/failover_poller.h"
#include "bench/pair_clients.h"
#include "tests/e2e/client_probes.h"
#include "tests/e2e/protected_pair.h"

namespace ftd::bench {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HostId;

double ms(double from_s, double to_s) {
  return from_s > 0 && to_s > 0 ? (to_s - from_s) * 1e3 : -1;
}

// The secondary's own account of the failover, from its log: first
// "peer lost" decision, first decision to act on a granted right (fence or
// activate), and the activation it reported.
void from_secondary_log(const std::string& path, double t_kill, json& out) {
  const auto lines = read_ftd_log(path);
  const double from = t_kill - 0.001;  // log stamps are truncated to ms
  auto lost = first_line(lines, from, "failover_decision", {{"reason", "peer lost"}});
  auto granted = first_line(lines, from, "failover_decision", {{"may_run_alone", "true"}});
  auto activated = first_line(lines, from, "failover.activated", {});
  out["log_peer_lost_unix_s"] = lost ? lost->unix_s : 0;
  out["log_granted_unix_s"] = granted ? granted->unix_s : 0;
  out["log_active_unix_s"] = activated ? activated->unix_s : 0;
  out["log_first_lost_decision"] = lost ? log_field(*lost, "decision").value_or("") : "";
  out["log_last_heartbeat_ms_at_loss"] =
      lost ? std::stod(log_field(*lost, "last_heartbeat_ms").value_or("-1")) : -1.0;
  json arbiter = json::array();  // what the secondary's arbiter said after the kill
  for (const LogLine& l : lines)
    if (l.unix_s >= from && arbiter.size() < 12 &&
        (l.event.starts_with("corosync") || l.event.starts_with("witness")))
      arbiter.push_back(fmt::format("{:+.0f}ms {}", (l.unix_s - t_kill) * 1e3, l.text));
  out["secondary_arbiter_lines"] = arbiter;
  out["activation_us_ms"] =
      activated ? std::stod(log_field(*activated, "activation_us").value_or("-1000")) / 1e3 : -1.0;
}

// Copies the pair's logs on the way out unless the run was declared ok:
// every early return of a failing run passes through here.
class KeepLogsUnlessOk {
 public:
  KeepLogsUnlessOk(const testing::ProtectedPair& pair, std::string dir)
      : pair_(pair), dir_(std::move(dir)) {}
  ~KeepLogsUnlessOk() {
    if (ok_ || dir_.empty()) return;
    if (auto st = pair_.copy_logs(dir_); !st)
      fmt::print(stderr, "keeping logs: {}\n", st.error().to_string());
  }
  KeepLogsUnlessOk(const KeepLogsUnlessOk&) = delete;
  KeepLogsUnlessOk& operator=(const KeepLogsUnlessOk&) = delete;
  void set_ok(bool ok) { ok_ = ok; }

 private:
  const testing::ProtectedPair& pair_;
  std::string dir_;
  bool ok_ = false;
};

// Log when it has the step, else the poll (10 ms resolution plus an RPC).
double pick(const json& r, const char* log_key, double poll_s) {
  const double l = r.value(log_key, 0.0);
  return l > 0 ? l : poll_s;
}

}  // namespace

Result<json> run_host_kill(const HostKillOptions& o) {
  json r{{"arbiter", o.arbiter}, {"run", o.index}};
  testing::PairOptions options;
  options.arbiter = o.arbiter;
  options.corosync.qdevice_timeout_ms = o.qdevice_timeout_ms;
  if (o.qdevice_timeout_ms > 0) r["qdevice_timeout_ms"] = o.qdevice_timeout_ms;
  const auto t_start = std::chrono::steady_clock::now();
  FTD_ASSIGN_OR_RETURN(auto pair, testing::ProtectedPair::start(options));
  KeepLogsUnlessOk keeper(*pair, o.keep_logs_dir);
  r["pair_start_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  FTD_ASSIGN_OR_RETURN(PairClients clients, start_pair_clients(*pair));
  auto& ping = clients.ping;
  auto& records = clients.records;
  auto& lan = pair->lan();
  std::this_thread::sleep_for(3s);

  FailoverPoller poller(pair->secondary(), 10ms);

  // The host leaves the network in one step (its switch port down), then is
  // powered off: kill-netns-host.sh alone takes 300-500 ms of shell and `ip`
  // start-ups before its first link goes down, which would blur the fault
  // instant. Nothing of the primary reaches anyone after the cut either way.
  const double t_kill = testing::unix_now_s();
  FTD_TRY(lan.isolate(HostId::kPrimary));
  r["cut_call_ms"] = ms(t_kill, testing::unix_now_s());
  FTD_TRY(lan.kill_host(HostId::kPrimary));
  r["kill_call_ms"] = ms(t_kill, testing::unix_now_s());
  const bool active = testing::wait_until([&] { return poller.active_at() > 0; }, 60s);
  r["activated"] = active;
  const uint64_t before = records.progress_received().value_or(0);
  r["records_resumed"] =
      testing::wait_until([&] { return records.progress_received().value_or(0) > before; }, 30s);
  std::this_thread::sleep_for(3s);
  poller.stop();
  auto verdict = records.stop(90s);
  auto pings = ping.stop();
  FTD_TRY(verdict);
  FTD_TRY(pings);
  from_secondary_log(pair->path("secondary.log"), t_kill, r);
  r["poll_peer_lost_unix_s"] = poller.peer_lost_at();
  r["poll_granted_unix_s"] = poller.granted_at();
  r["poll_active_unix_s"] = poller.active_at();

  const double lost = pick(r, "log_peer_lost_unix_s", poller.peer_lost_at());
  const double granted = pick(r, "log_granted_unix_s", poller.granted_at());
  const double act = pick(r, "log_active_unix_s", poller.active_at());
  r["detect_ms"] = ms(t_kill, lost);
  r["arbitrate_ms"] = ms(lost, granted);
  r["activate_ms"] = ms(granted, act);
  r["kill_to_active_ms"] = ms(t_kill, act);

  const auto& [j, code] = *verdict;
  const double gap_end_s = j.value("longest_gap_at_unix_ms", 0.0) / 1e3;
  r["record_outage_ms"] = gap_end_s > t_kill ? ms(t_kill, gap_end_s) : -1.0;
  r["record_longest_gap_ms"] = j.value("longest_gap_ms", 0.0);
  r["records"] = testing::record_summary(j, code);
  // Records answered after the outage, i.e. by the secondary's guest on the
  // same connection: the first number answered after the longest gap to the
  // last one sent (with nothing lost or reordered, all of them).
  const uint64_t sent = j.value("sent", uint64_t{0});
  const uint64_t first_after = j.value("longest_gap_before_seq", uint64_t{0});
  r["records"]["answered_after_outage"] =
      r["record_outage_ms"].get<double>() >= 0 && first_after > 0 && sent >= first_after
          ? sent - first_after + 1
          : 0;
  // The reply that ended the longest silence after the kill.
  double gap = 0, gap_end = 0, prev = t_kill;
  for (const auto& p : pings->replies) {
    if (p.unix_s <= t_kill) continue;
    if (p.unix_s - prev > gap) gap = p.unix_s - prev, gap_end = p.unix_s;
    prev = p.unix_s;
  }
  r["ping_outage_ms"] = ms(t_kill, gap_end);
  r["ping_longest_gap_ms"] = pings->longest_gap_ms;
  r["ping_loss_pct"] = pings->loss_pct;
  r["t_kill_unix_s"] = t_kill;
  if (!active) r["secondary_log_tail"] = pair->tail("secondary.log", 3000);
  r["ok"] = active && r["records_resumed"].get<bool>() && r["records"].value("ok", false);
  keeper.set_ok(r["ok"].get<bool>());
  return r;
}

}  // namespace ftd::bench
