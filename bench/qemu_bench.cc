// Protecting real QEMU guests: the test guest (Debian cloud kernel + busybox
// initramfs) under TCG at several RAM sizes, idle and with a memory-writing
// load inside, protected by the real CheckpointPipeline + QmpEngine, shipping
// over real gRPC on 127.0.0.1 to a real SecondaryVm whose replica backs a
// prelaunched standby QEMU. All in one process (see qemu_rig.h).
//
// Per cell (size x load), two boots of the same guest:
//  1. protected run: initial sync, warm-up, a steady window (pause per
//     checkpoint and its parts, checkpoints/s, wire bytes/s, ping RTT through
//     the output-commit proxy); then the primary is killed and the standby
//     activated (time until the guest answers ping). The activated standby is
//     the same guest, now unprotected behind a pass-through proxy: ping RTT
//     again (the baseline), then QEMU's own live migration of it to
//     `exec:cat > /dev/null` (downtime and total time from query-migrate) and
//     a migration of the stopped guest (QEMU's stop-and-save path).
//  2. slowdown run with the guest's CPU+memory loop (ftd.bench): iterations
//     timed on the host (console lines stamped as they appear) unprotected,
//     then protected, same QEMU process.
// JSON is rewritten after every cell, so a partial run leaves its data.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/qemu_migration.h"
#include "bench/qemu_rig.h"
#include "common/heap_reuse.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct Options {
  std::vector<uint64_t> sizes_mib{128, 512};
  std::vector<std::string> loads{"idle", "memload"};
  std::vector<std::string> trackers{"scan"};  // each cell runs once per tracker, side by side
  uint64_t memload_mib = 0;  // 0: min(64, guest MiB / 4) -- 64 MiB in a 128 MiB guest is OOM-killed
  uint64_t memload_rate = 5000;
  std::string bench_knob = "4:40";
  double window_s = 10;
  double bench_window_s = 8;
  int ping_interval_ms = 20;
  int epoch_ms = 50;  // fixed: the interval; output-driven: the max
  int epoch_min_ms = 5;
  std::vector<std::string> epoch_policies{"fixed"};  // each cell runs once per policy
  unsigned scan_threads = 2;
  bool no_slowdown = false;
  bool no_failover = false;
  bool verbose = false;
  std::string guest_dir;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/qemu.json";
};

std::string read_first_line(const std::string& path) {
  std::string line;
  std::getline(std::ifstream(path), line);
  return line;
}
std::string loadavg() { return read_first_line("/proc/loadavg"); }

double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()));
  return v[i];
}
double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

Json ping_json(const PingResult& r) {
  return {{"sent", r.sent},
          {"received", r.received},
          {"rtt_p50_ms", pct(r.rtt_us, 50) / 1000},
          {"rtt_p99_ms", pct(r.rtt_us, 99) / 1000},
          {"rtt_mean_ms", mean(r.rtt_us) / 1000},
          {"rtt_max_ms", pct(r.rtt_us, 100) / 1000}};
}

Json bench_json(const BenchIterations& b) {
  return {{"iterations", b.iterations},
          {"host_ms_mean", b.host_ms_mean},
          {"host_ms_p50", b.host_ms_p50},
          {"guest_ms_mean", b.guest_ms_mean}};
}

// A steady window of protection: pauses, rates, and optionally ping and the
// guest's bench loop measured over the same seconds.
Json protected_window(Rig& rig, double window_s, std::optional<Pinger>& pinger,
                      int ping_interval_ms, PingResult* ping_out, BenchIterations* bench_out) {
  auto& pipeline = rig.pipeline();
  const PipelineStats s0 = pipeline.stats();
  const uint64_t e0 = pipeline.last_captured_epoch();
  rig.probe().start_recording();
  const auto window = std::chrono::milliseconds(static_cast<int64_t>(window_s * 1000));
  const auto t0 = Clock::now();
  std::future<PingResult> ping;
  if (pinger)
    ping = std::async(std::launch::async, [&] {
      return pinger->run(std::chrono::milliseconds(ping_interval_ms), window);
    });
  std::this_thread::sleep_for(window);
  const auto t1 = Clock::now();
  const uint64_t e1 = pipeline.last_captured_epoch();
  const PipelineStats s1 = pipeline.stats();
  auto samples = rig.probe().stop_recording();
  if (ping.valid() && ping_out) *ping_out = ping.get();
  if (bench_out) *bench_out = bench_iterations(rig.primary_serial().lines(), t0, t1);

  std::vector<double> total, stop, dev, cont, scan, dev_bytes, dirty_log;
  for (const auto& s : samples) {
    total.push_back(s.total_ms);
    dirty_log.push_back(s.qmp.dirty_log_ms);
    stop.push_back(s.qmp.stop_ms);
    dev.push_back(s.qmp.devstate_ms);
    cont.push_back(s.qmp.cont_ms);
    scan.push_back(std::max(0.0, s.total_ms - s.qmp.stop_ms - s.qmp.devstate_ms - s.qmp.cont_ms));
    dev_bytes.push_back(static_cast<double>(s.qmp.devstate_bytes));
  }
  const double dt = secs(t0, t1);
  const uint64_t sent = s1.bytes_sent - s0.bytes_sent, raw = s1.raw_bytes - s0.raw_bytes;
  return {{"window_s", dt},
          {"checkpoints", e1 - e0},
          {"ckpt_per_sec", static_cast<double>(e1 - e0) / dt},
          {"pause_p50_ms", pct(total, 50)},
          {"pause_p99_ms", pct(total, 99)},
          {"pause_max_ms", pct(total, 100)},
          {"pause_mean_ms", mean(total)},
          {"parts_mean_ms",
           {{"stop", mean(stop)},
            {"scan_copy", mean(scan)},
            {"tracker_collect", mean(dirty_log)},
            {"devstate", mean(dev)},
            {"cont", mean(cont)}}},
          {"parts_p50_ms",
           {{"stop", pct(stop, 50)},
            {"scan_copy", pct(scan, 50)},
            {"tracker_collect", pct(dirty_log, 50)},
            {"devstate", pct(dev, 50)},
            {"cont", pct(cont, 50)}}},
          {"parts_p99_ms",
           {{"stop", pct(stop, 99)},
            {"scan_copy", pct(scan, 99)},
            {"tracker_collect", pct(dirty_log, 99)},
            {"devstate", pct(dev, 99)},
            {"cont", pct(cont, 99)}}},
          {"devstate_bytes_mean", mean(dev_bytes)},
          // raw = dirty pages + device state before delta/compression
          {"dirty_pages_per_ckpt_est",
           e1 > e0 ? std::max(0.0, static_cast<double>(raw) / static_cast<double>(e1 - e0) -
                                       mean(dev_bytes)) /
                         4096.0
                   : 0.0},
          {"wire_bytes_per_sec", static_cast<double>(sent) / dt},
          {"raw_bytes_per_sec", static_cast<double>(raw) / dt},
          {"compression_ratio", sent ? static_cast<double>(raw) / static_cast<double>(sent) : 0},
          {"backpressure_waits", s1.backpressure_waits - s0.backpressure_waits},
          {"checkpoints_by_output", s1.checkpoints_by_output - s0.checkpoints_by_output},
          {"checkpoints_by_timer", s1.checkpoints_by_timer - s0.checkpoints_by_timer},
          {"lag_epochs_end", s1.lag_epochs},
          {"busy_fraction", mean(total) * static_cast<double>(samples.size()) / (dt * 1000)}};
}

EpochPolicy epoch_policy(const Options& o, const std::string& name) {
  const auto max = std::chrono::milliseconds(o.epoch_ms);
  if (name == "output-driven")
    return {.kind = EpochPolicyKind::kOutputDriven,
            .min = std::chrono::milliseconds(o.epoch_min_ms),
            .max = max};
  return EpochPolicy::fixed(max);
}

std::string memload_knob(const Options& o, uint64_t guest_mib) {
  const uint64_t mib = o.memload_mib ? o.memload_mib : std::min<uint64_t>(64, guest_mib / 4);
  return fmt::format("{}:{}", mib, o.memload_rate);
}

std::string guest_append(const Options& o, uint64_t mib, bool memload, bool bench) {
  std::string a = fmt::format("console=ttyS0 quiet ftd.ip={} ftd.tick=1", kGuestCidr);
  if (memload) a += " ftd.memload=" + memload_knob(o, mib);
  if (bench) a += " ftd.bench=" + o.bench_knob;
  return a;
}

// QEMU's own migration of a running guest to `exec:cat > /dev/null`, then of
// the same guest stopped (what a naive full checkpoint would pause it for).
// Unthrottled: the default 128 MiB/s cap would measure the cap, not QEMU.
Result<Json> qemu_migration(QmpClient& qmp) {
  constexpr uint64_t kUnthrottled = 64ull << 30;
  FTD_ASSIGN_OR_RETURN(Json out,
                       qemu_migrations(qmp, {{.name = "live", .max_bandwidth = kUnthrottled},
                                             {.name = "stopped", .stopped = true}}));
  out["downtime_limit_ms"] = json_number(out["live"], "downtime_limit_ms");
  return out;
}

// Phase 1: protected steady window, failover, unprotected baseline on the
// activated standby, QEMU's migration of it.
Status protected_run(const Options& o, uint64_t mib, bool memload, TrackerKind tracker,
                     const EpochPolicy& epochs, const std::string& tag, Json& cell) {
  RigConfig rc{.guest_dir = o.guest_dir,
               .memory_mib = mib,
               .append = guest_append(o, mib, memload, false),
               .epochs = epochs,
               .scan_threads = o.scan_threads,
               .tag = tag,
               .tracker = tracker};
  FTD_ASSIGN_OR_RETURN(auto rig, Rig::create(rc));
  cell["standby_start_ms"] =
      rig->activator().standby() ? rig->activator().standby()->start_ms() : 0;
  FTD_ASSIGN_OR_RETURN(double boot_s, rig->boot(std::chrono::seconds(120)));
  cell["boot_s"] = boot_s;
  if (memload) FTD_TRY(check_memload(*rig));
  std::optional<Pinger> pinger;
  FTD_ASSIGN_OR_RETURN(pinger, Pinger::open(rig->netns(), kGuestIp));

  FTD_ASSIGN_OR_RETURN(double sync_s, rig->protect());
  cell["initial_sync_s"] = sync_s;
  const TrackingStatus tracking = rig->engine().tracking_status();
  cell["tracker_chosen"] = tracking.tracker;
  cell["tracker_reason"] = tracking.reason;
  double warm_s = 0;
  cell["reached_steady_state"] = rig->wait_steady(30.0 + mib / 16.0, warm_s);
  cell["warmup_s"] = warm_s;
  PingResult ping_prot;
  cell["protected"] =
      protected_window(*rig, o.window_s, pinger, o.ping_interval_ms, &ping_prot, nullptr);
  cell["latency"]["protected"] = ping_json(ping_prot);
  {
    const TrackerCounters tc = rig->engine().tracking_status().counters;
    cell["tracker_counters"] = {{"collections", tc.collections},
                                {"pages_reported", tc.pages_reported},
                                {"max_collect_us", tc.max_collect_us},
                                {"audits", tc.audits},
                                {"audit_misses", tc.audit_misses},
                                {"failure", rig->engine().tracking_status().failure}};
  }
  cell["latency"]["proxy_hold_p50_ms"] = 0;  // filled below from the proxy's own view
  spdlog::warn("cell {}: protected window done", tag);
  if (o.no_failover) return ok();

  // Failover: the primary host dies (QEMU + tap gone), the secondary activates.
  const uint64_t replica_epoch = rig->secondary().replica_epoch();
  rig->lose_primary();
  const auto t0 = Clock::now();
  auto report = rig->failover();
  if (!report) return std::unexpected(report.error().with_context("failover"));
  const auto t_activated = Clock::now();
  auto answered = pinger->wait_answer(5ms, 20s);
  const auto t_answer = Clock::now();
  auto& t = *rig->activator().timings();
  Json f{{"replica_epoch", replica_epoch},
         {"activate_ms", ms(t0, t_activated)},
         {"load_devstate_ms", t.load_ms},
         {"cont_ms", t.cont_ms},
         {"announce_ms", t.announce_ms},
         {"guest_answers_ping_ms", answered ? ms(t0, *answered) : -1.0},
         {"ping_error", answered ? "" : answered.error().to_string()}};
  (void)t_answer;
  // The guest must have continued, not rebooted: its tick counter resumes > 1.
  {
    SerialTail standby_tail(rig->standby_serial_path());
    auto tick = standby_tail.wait_for("ftd-tick", 5s);
    long first = -1;
    if (tick) std::sscanf(tick->text.c_str() + tick->text.find("ftd-tick"), "ftd-tick %ld", &first);
    f["standby_first_tick"] = first;
    f["guest_continued"] = first > 1;
  }
  cell["failover"] = f;
  spdlog::warn("cell {}: failover done", tag);

  // The same guest, now unprotected behind the standby's pass-through proxy.
  PingResult ping_unprot = pinger->run(
      std::chrono::milliseconds(o.ping_interval_ms),
      std::chrono::milliseconds(static_cast<int64_t>(std::min(o.window_s, 8.0) * 1000)));
  cell["latency"]["unprotected"] = ping_json(ping_unprot);
  cell["latency"]["added_p50_ms"] =
      (pct(ping_prot.rtt_us, 50) - pct(ping_unprot.rtt_us, 50)) / 1000;
  cell["latency"]["added_p99_ms"] =
      (pct(ping_prot.rtt_us, 99) - pct(ping_unprot.rtt_us, 99)) / 1000;
  cell["latency"].erase("proxy_hold_p50_ms");

  auto mig = qemu_migration(rig->activator().standby()->process().qmp());
  if (!mig) return std::unexpected(mig.error().with_context("QEMU migration"));
  cell["qemu_migration"] = *mig;
  const double our_p50 = json_number(cell["protected"], "pause_p50_ms");
  const double our_p99 = json_number(cell["protected"], "pause_p99_ms");
  if (our_p50 > 0) {
    cell["ratios"] = {{"qemu_live_downtime_over_our_pause_p50",
                       json_number((*mig)["live"], "downtime_ms") / our_p50},
                      {"qemu_live_downtime_over_our_pause_p99",
                       json_number((*mig)["live"], "downtime_ms") / our_p99},
                      {"qemu_stopped_save_over_our_pause_p50",
                       json_number((*mig)["stopped"], "wall_ms") / our_p50}};
  }
  return ok();
}

// Phase 2: the guest's CPU+memory loop, unprotected then protected, one QEMU.
Status slowdown_run(const Options& o, uint64_t mib, bool memload, TrackerKind tracker,
                    const EpochPolicy& epochs, const std::string& tag, Json& cell) {
  RigConfig rc{.guest_dir = o.guest_dir,
               .memory_mib = mib,
               .append = guest_append(o, mib, memload, true),
               .epochs = epochs,
               .scan_threads = o.scan_threads,
               .tag = tag + "b",
               .tracker = tracker};
  FTD_ASSIGN_OR_RETURN(auto rig, Rig::create(rc));
  FTD_TRY(rig->boot(std::chrono::seconds(120)));
  if (memload) FTD_TRY(check_memload(*rig));
  FTD_TRY(rig->primary_serial().wait_for("ftd-bench iter=2 ", 60s));
  // Ping in both windows: the guest's replies are the output an output-driven
  // policy checkpoints for, so its extra pauses show in the slowdown.
  std::optional<Pinger> pinger;
  FTD_ASSIGN_OR_RETURN(pinger, Pinger::open(rig->netns(), kGuestIp));
  const auto window = std::chrono::milliseconds(static_cast<int64_t>(o.bench_window_s * 1000));
  auto unprot_ping = std::async(std::launch::async, [&] {
    return pinger->run(std::chrono::milliseconds(o.ping_interval_ms), window);
  });
  const auto u0 = Clock::now();
  std::this_thread::sleep_for(window);
  const auto u1 = Clock::now();
  unprot_ping.get();
  const BenchIterations unprot = bench_iterations(rig->primary_serial().lines(), u0, u1);

  FTD_ASSIGN_OR_RETURN(double sync_s, rig->protect());
  double warm_s = 0;
  const bool steady = rig->wait_steady(30.0 + mib / 16.0, warm_s);
  BenchIterations prot;
  PingResult ping_prot;
  Json pauses =
      protected_window(*rig, o.bench_window_s, pinger, o.ping_interval_ms, &ping_prot, &prot);
  Json s{{"bench_knob", o.bench_knob},
         {"unprotected", bench_json(unprot)},
         {"protected", bench_json(prot)},
         {"initial_sync_s", sync_s},
         {"warmup_s", warm_s},
         {"reached_steady_state", steady},
         {"ping_interval_ms", o.ping_interval_ms},
         {"protected_ping", ping_json(ping_prot)},
         {"protection_during_bench", pauses}};
  if (unprot.host_ms_mean > 0 && prot.host_ms_mean > 0) {
    s["slowdown_host_clock"] = prot.host_ms_mean / unprot.host_ms_mean;
    s["slowdown_guest_clock"] = prot.guest_ms_mean / unprot.guest_ms_mean;
  }
  cell["slowdown"] = s;
  return ok();
}

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_cell(const Json& c) {
  auto g = [](const Json& j, std::initializer_list<const char*> path) {
    const Json* p = &j;
    for (const char* k : path) {
      if (!p->contains(k)) return 0.0;
      p = &(*p)[k];
    }
    return p->is_number() ? p->get<double>() : 0.0;
  };
  fmt::print("{:>10} {:>13} added ping p50 {:.1f} p99 {:.1f} ms | ", c.value("tracker", ""),
             c.value("epoch_policy", ""), g(c, {"latency", "added_p50_ms"}),
             g(c, {"latency", "added_p99_ms"}));
  fmt::print(
      "{:>4} MiB {:>8}: pause p50 {:.1f} p99 {:.1f} ms (stop {:.1f} scan {:.1f} dev {:.1f} cont "
      "{:.1f}) ckpt/s {:.1f} wire {:.2f} MB/s | ping p50 {:.2f}->{:.2f} ms | failover answer "
      "{:.0f} ms | qemu live downtime {:.0f} ms total {:.0f} ms, stopped save {:.0f} ms | "
      "slowdown {:.2f}x\n",
      g(c, {"size_mib"}), c.value("load", ""), g(c, {"protected", "pause_p50_ms"}),
      g(c, {"protected", "pause_p99_ms"}), g(c, {"protected", "parts_mean_ms", "stop"}),
      g(c, {"protected", "parts_mean_ms", "scan_copy"}),
      g(c, {"protected", "parts_mean_ms", "devstate"}),
      g(c, {"protected", "parts_mean_ms", "cont"}), g(c, {"protected", "ckpt_per_sec"}),
      g(c, {"protected", "wire_bytes_per_sec"}) / 1e6,
      g(c, {"latency", "unprotected", "rtt_p50_ms"}), g(c, {"latency", "protected", "rtt_p50_ms"}),
      g(c, {"failover", "guest_answers_ping_ms"}), g(c, {"qemu_migration", "live", "downtime_ms"}),
      g(c, {"qemu_migration", "live", "total_time_ms"}),
      g(c, {"qemu_migration", "stopped", "wall_ms"}), g(c, {"slowdown", "slowdown_host_clock"}));
  std::fflush(stdout);
}

Status write_doc(const Options& o, const Json& machine, const Json& cells, double total_s) {
  Json doc{{"benchmark", "qemu"},
           {"date_utc", now_iso8601()},
           {"machine", machine},
           {"setup",
            {{"guest", "Debian 6.1 cloud kernel + busybox initramfs (deploy/guest), TCG, no KVM"},
             {"qemu", "qemu-system-x86_64 7.2 (Debian), RAM memory-backend-memfd share=on"},
             {"engine", "QmpEngine: stop / migrate device state (x-ignore-shared) / cont"},
             {"dirty_tracking",
              "per cell: scan = page scanner (xxh3 of shared guest RAM); uffd-wp = async "
              "userfaultfd write-protect + PAGEMAP_SCAN (tracking/), audited every 100 epochs"},
             {"epoch_ms", o.epoch_ms},
             {"epoch_policies",
              "per cell: fixed = checkpoint every epoch_ms; output-driven = as soon as guest "
              "output waits and the previous checkpoint is acked, >= epoch_min_ms apart, at most "
              "epoch_ms (checkpoint/epoch_policy.h)"},
             {"epoch_min_ms", o.epoch_min_ms},
             {"scan_threads", o.scan_threads},
             {"transport", "real gRPC Replicate stream on 127.0.0.1, one process"},
             {"secondary", "SecondaryVm, replica in /dev/shm, standby QEMU prelaunched on it"},
             {"network",
              "guest NIC = netdev stream -> NetworkProxy -> tap on a bridge in a private netns; "
              "ICMP echo from the bridge address"},
             {"memload_knob", "ftd.memload=<min(64, RAM/4) MiB>:<rate> unless --memload-mib"},
             {"memload_rate_pages_per_sec", o.memload_rate},
             {"bench_knob", o.bench_knob},
             {"window_s", o.window_s},
             {"bench_window_s", o.bench_window_s},
             {"ping_interval_ms", o.ping_interval_ms},
             {"definitions",
              {{"pause", "engine pause() call to resume() return, steady window only"},
               {"scan_copy",
                "pause - stop - devstate - cont (dirty-page scan or tracker collect + copy)"},
               {"tracker_collect", "QmpEngine::take_dirty_log (PAGEMAP_SCAN); 0 for scan"},
               {"wire", "encoded checkpoint bytes handed to gRPC per second"},
               {"latency_unprotected",
                "same guest after failover, running on the standby behind a pass-through proxy"},
               {"failover",
                "SecondaryVm::failover() call to first ICMP echo reply from the activated "
                "guest (host-loss detection not included)"},
               {"slowdown",
                "mean host-clock time per ftd-bench iteration, protected / unprotected, same QEMU; "
                "ping runs in both windows"},
               {"qemu_migration",
                "QEMU's own migration of the same guest (after failover) to exec:cat > "
                "/dev/null, max-bandwidth unthrottled; live = precopy (downtime from "
                "query-migrate), stopped = same guest left stopped, whole-machine save"}}}}},
           {"total_s", total_s},
           {"cells", cells}};
  std::ofstream f(o.out);
  f << doc.dump(2) << "\n";
  if (!f) return make_error(ErrorCode::kIo, "cannot write {}", o.out);
  return ok();
}

int run(int argc, char** argv) {
  keep_freed_heap_memory();

  Options o;
  CLI::App app{"Protecting real QEMU guests: pause, rates, slowdown, latency, failover"};
  app.add_option("--sizes-mib", o.sizes_mib, "guest RAM sizes (MiB)")->check(CLI::Range(64, 4096));
  app.add_option("--loads", o.loads, "idle and/or memload")
      ->check(CLI::IsMember({"idle", "memload"}));
  app.add_option("--trackers", o.trackers, "dirty trackers to compare, each cell once per tracker")
      ->check(CLI::IsMember({"scan", "uffd-wp", "soft-dirty", "auto"}));
  app.add_option("--memload-mib", o.memload_mib, "memload buffer (MiB); 0: min(64, RAM/4)");
  app.add_option("--memload-rate", o.memload_rate, "memload pages written per second")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--bench", o.bench_knob, "ftd.bench=<MiB>:<passes> for the slowdown runs");
  app.add_option("--window-s", o.window_s, "steady protected window (s)")
      ->check(CLI::Range(1.0, 600.0));
  app.add_option("--bench-window-s", o.bench_window_s, "slowdown window each way (s)")
      ->check(CLI::Range(1.0, 600.0));
  app.add_option("--ping-interval-ms", o.ping_interval_ms)->check(CLI::Range(1, 1000));
  app.add_option("--epoch-ms", o.epoch_ms, "checkpoint interval (output-driven: the max)")
      ->check(CLI::Range(5, 10000));
  app.add_option("--epoch-min-ms", o.epoch_min_ms, "output-driven: shortest checkpoint gap")
      ->check(CLI::Range(1, 10000));
  app.add_option("--epoch-policies", o.epoch_policies,
                 "epoch policies to compare (fixed,output-driven), each cell once per policy")
      ->delimiter(',')
      ->check(CLI::IsMember({"fixed", "output-driven"}));
  app.add_option("--scan-threads", o.scan_threads)->check(CLI::Range(1u, 64u));
  app.add_flag("--no-slowdown", o.no_slowdown, "skip the ftd.bench runs");
  app.add_flag("--no-failover", o.no_failover,
               "skip failover (and so the unprotected latency and QEMU migration)");
  app.add_option("--guest-dir", o.guest_dir,
                 "vmlinuz + initrd.img (default: $FTD_GUEST_DIR or "
                 "~/.cache/ftd/guest)");
  app.add_option("--out", o.out, "JSON output path");
  app.add_flag("--verbose", o.verbose, "info logs");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);
  o.guest_dir = guest_dir_or_default(o.guest_dir);
  if (auto st = check_guest_and_root(o.guest_dir, {"vmlinuz", "initrd.img"}); !st) {
    fmt::print(stderr, "qemu_bench: {}\n", st.error().message);
    return 2;
  }

  const auto t_bench = Clock::now();
  Json machine{{"nproc", std::thread::hardware_concurrency()},
               {"kernel", read_first_line("/proc/sys/kernel/osrelease")},
               {"kvm", std::filesystem::exists("/dev/kvm")},
               {"loadavg_at_start", loadavg()},
               {"shared", "2 vCPUs shared with other engineers' builds and tests; expect noise"}};
  Json cells = Json::array();
  bool any_error = false;
  int n = 0;
  for (uint64_t mib : o.sizes_mib)
    for (const auto& load : o.loads)
      for (const auto& tracker_name : o.trackers)
        for (const auto& policy_name : o.epoch_policies) {
          const bool memload = load == "memload";
          const EpochPolicy epochs = epoch_policy(o, policy_name);
          const TrackerKind tracker = parse_tracker_kind(tracker_name).value();
          const std::string tag = fmt::format("c{}", n++);
          Json cell{{"size_mib", mib},
                    {"load", load},
                    {"tracker", tracker_name},
                    {"epoch_policy", policy_name},
                    {"memload_knob", memload ? memload_knob(o, mib) : ""},
                    {"loadavg_before", loadavg()}};
          Json errors = Json::array();
          const auto c0 = Clock::now();
          if (auto st = protected_run(o, mib, memload, tracker, epochs, tag, cell); !st)
            errors.push_back("protected run: " + st.error().to_string());
          cell["loadavg_after_protected"] = loadavg();
          if (!o.no_slowdown)
            if (auto st = slowdown_run(o, mib, memload, tracker, epochs, tag, cell); !st)
              errors.push_back("slowdown run: " + st.error().to_string());
          cell["loadavg_after"] = loadavg();
          cell["cell_s"] = secs(c0, Clock::now());
          cell["errors"] = errors;
          any_error |= !errors.empty();
          for (const auto& e : errors)
            fmt::print(stderr, "{} MiB {}: ERROR {}\n", mib, load, e.get<std::string>());
          print_cell(cell);
          cells.push_back(std::move(cell));
          machine["loadavg_at_end"] = loadavg();
          if (auto st = write_doc(o, machine, cells, secs(t_bench, Clock::now())); !st) {
            fmt::print(stderr, "qemu_bench: {}\n", st.error().to_string());
            return 1;
          }
        }
  fmt::print("total {:.0f} s; loadavg {}; wrote {}\n", secs(t_bench, Clock::now()), loadavg(),
             o.out);
  return any_error ? 1 : 0;
}

}  // namespace
}  // namespace ftd::bench

int main(int argc, char** argv) { return ftd::bench::run(argc, argv); }
