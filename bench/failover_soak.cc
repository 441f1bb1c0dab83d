#include "bench/failover_soak.h"

#include <signal.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "bench/failover_log.h"
#include "common/subprocess.h"
#include "tests/e2e/client_probes.h"
#include "tests/e2e/protected_pair.h"

namespace ftd::bench {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HostId;

// Busy loops at normal priority, one per core: the daemons (and QEMU) must
// share the CPUs with them, as on a loaded host. Killed on destruction.
struct CpuHogs {
  std::vector<Subprocess> procs;
  ~CpuHogs() {
    for (auto& p : procs) {
      p.kill(SIGKILL);
      (void)p.wait(5s);
    }
  }
};

// Decision lines in one daemon's log: the non-quiet ones are false positives.
json scan_log(const std::string& path) {
  json out{{"decisions", json::object()},
           {"false_decisions", 0},
           {"peer_lost_lines", 0},
           {"failover_errors", 0},
           {"examples", json::array()}};
  for (const LogLine& l : read_ftd_log(path)) {
    if (l.event == "failover_error") out["failover_errors"] = out["failover_errors"].get<int>() + 1;
    if (l.event != "failover_decision") continue;
    const std::string d = log_field(l, "decision").value_or("?");
    out["decisions"][d] = out["decisions"].value(d, 0) + 1;
    const bool lost = log_field(l, "reason").value_or("").starts_with("peer lost");
    if (lost) out["peer_lost_lines"] = out["peer_lost_lines"].get<int>() + 1;
    if (d != "wait" && d != "protected") {
      out["false_decisions"] = out["false_decisions"].get<int>() + 1;
      if (out["examples"].size() < 10) out["examples"].push_back(l.text);
    } else if (lost && out["examples"].size() < 10) {
      out["examples"].push_back(l.text);
    }
  }
  return out;
}

}  // namespace

Result<json> run_soak(const std::string& arbiter, double minutes, double record_rate) {
  testing::PairOptions options;
  options.arbiter = arbiter;
  FTD_ASSIGN_OR_RETURN(auto pair, testing::ProtectedPair::start(options));
  auto& lan = pair->lan();
  FTD_ASSIGN_OR_RETURN(auto ping,
                       testing::PingProbe::start(lan.ns(HostId::kClient), testing::kGuestIp,
                                                 pair->path("ping.log")));
  FTD_ASSIGN_OR_RETURN(auto records,
                       testing::RecordStream::start(lan.ns(HostId::kClient), testing::kGuestIp,
                                                    pair->path("record.log"),
                                                    pair->path("record.json"), record_rate, 60));
  if (!testing::wait_until([&] { return records.progress_received().value_or(0) > 0; }, 60s))
    return make_error(ErrorCode::kTimeout, "no record reply:\n{}", pair->tail("record.log"));

  CpuHogs hogs;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < cores; ++i) {
    FTD_ASSIGN_OR_RETURN(Subprocess p,
                         Subprocess::spawn({.argv = {"sh", "-c", "while :; do :; done"},
                                            .log_path = pair->path(fmt::format("hog{}.log", i)),
                                            .kill_with_parent = true}));
    hogs.procs.push_back(std::move(p));
  }

  // Worst heartbeat age either side reported, polled every 100 ms.
  int64_t max_hb_age[2] = {0, 0};
  std::string states[2];
  long polls = 0;
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(minutes * 60e3));
  while (std::chrono::steady_clock::now() < end) {
    int i = 0;
    for (auto* d : {&pair->primary(), &pair->secondary()}) {
      if (auto s = d->status()) {
        max_hb_age[i] = std::max(max_hb_age[i], s->failover().heartbeat_age_ms());
        const std::string st = s->failover().state() + "/" + s->failover().decision();
        if (states[i].empty() || !states[i].ends_with(st))
          states[i] += (states[i].empty() ? "" : " > ") + st;
      }
      ++i;
    }
    ++polls;
    std::this_thread::sleep_for(100ms);
  }
  const std::string loadavg = run_command({"cat", "/proc/loadavg"}).value_or("?");
  hogs.procs.clear();

  auto verdict = records.stop(90s);
  auto pings = ping.stop();
  FTD_TRY(verdict);
  FTD_TRY(pings);
  std::this_thread::sleep_for(1500ms);  // spdlog flushes every second
  json r{{"arbiter", arbiter},
         {"minutes", minutes},
         {"record_rate", record_rate},
         {"cpu_hogs", cores},
         {"loadavg_under_load", loadavg},
         {"polls", polls},
         {"primary", scan_log(pair->path("primary.log"))},
         {"secondary", scan_log(pair->path("secondary.log"))}};
  r["primary"]["max_heartbeat_age_ms"] = max_hb_age[0];
  r["secondary"]["max_heartbeat_age_ms"] = max_hb_age[1];
  r["primary"]["states"] = states[0];
  r["secondary"]["states"] = states[1];
  const auto& [j, code] = *verdict;
  r["records"] = testing::record_summary(j, code);
  r["ping"] = {{"loss_pct", pings->loss_pct}, {"longest_gap_ms", pings->longest_gap_ms}};
  r["false_failover_decisions"] =
      r["primary"]["false_decisions"].get<int>() + r["secondary"]["false_decisions"].get<int>();
  r["peer_lost_events"] =
      r["primary"]["peer_lost_lines"].get<int>() + r["secondary"]["peer_lost_lines"].get<int>();
  return r;
}

}  // namespace ftd::bench
