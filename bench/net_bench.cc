// Network throughput of a protected guest, measured the way live-migration
// studies do it: a bulk TCP transfer with iperf3 (Debian's, client in the
// rig's namespace, server in the test guest), client -> guest and guest ->
// client (-R), with the guest unprotected and protected, per epoch policy.
//
// One cell = one fresh qemu_bench rig (qemu_rig.h) with one epoch policy:
//  1. boot, output passthrough: both directions unprotected (the baseline of
//     this cell: the same guest, the same QEMU, seconds apart);
//  2. protect, wait for steady state, both directions again, recording what
//     the pipeline and the output-commit proxy did during each transfer.
// Cells run repetition-major (rep 1: every policy, rep 2: every policy, ...),
// so load drifts hit all policies alike. JSON is rewritten after each cell.
#include <unistd.h>

#include <algorithm>
#include <future>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/failover_report.h"
#include "bench/qemu_migration.h"
#include "bench/qemu_rig.h"
#include "common/heap_reuse.h"
#include "common/subprocess.h"
#include "tests/guest/iperf_client.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;
using testing::iperf_json;
using testing::kIperfServerRelisten;
using testing::run_iperf;

struct Options {
  uint64_t size_mib = 128;
  int seconds = 5;
  int reps = 3;
  // "fixed:<ms>" or "output-driven:<max ms>[:<min ms>]" (min default --epoch-min-ms).
  std::vector<std::string> policies{"fixed:40", "output-driven:40", "output-driven:40:20"};
  int epoch_min_ms = 5;
  std::string tracker = "auto";
  int port = 5201;
  std::string guest_dir;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/net.json";
  bool verbose = false;
};

struct PolicySpec {
  std::string name;  // as given, e.g. "output-driven:40"
  EpochPolicy epochs;
};

Result<PolicySpec> parse_policy(const std::string& text, int default_min_ms) {
  // <kind>[:<epoch ms>[:<min ms>]]
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  auto number = [](const std::string& s) {
    try {
      size_t used = 0;
      const int v = std::stoi(s, &used);
      return used == s.size() ? v : -1;
    } catch (const std::exception&) {
      return -1;
    }
  };
  const int ms = parts.size() > 1 ? number(parts[1]) : 40;
  const int min_ms = parts.size() > 2 ? number(parts[2]) : default_min_ms;
  const bool bad_min = parts[0] == "output-driven" && (min_ms < 1 || min_ms > ms);
  if (parts.size() > 3 || ms < 5 || ms > 10000 || bad_min)
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: want fixed:<ms> or output-driven:<max ms>[:<min ms>], 5 <= ms <= "
                      "10000, 1 <= min <= max",
                      text);
  const auto max = std::chrono::milliseconds(ms);
  if (parts[0] == "fixed" && parts.size() <= 2) return PolicySpec{text, EpochPolicy::fixed(max)};
  if (parts[0] == "output-driven")
    return PolicySpec{text,
                      {.kind = EpochPolicyKind::kOutputDriven,
                       .min = std::chrono::milliseconds(min_ms),
                       .max = max}};
  return make_error(ErrorCode::kInvalidArgument,
                    "{}: want fixed:<ms> or output-driven:<max ms>[:<min ms>]", text);
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// What protection did while one transfer ran.
class ProtectionWindow {
 public:
  explicit ProtectionWindow(Rig& rig)
      : rig_(rig), s0_(rig.pipeline().stats()), n0_(rig.gate().proxy().stats()), t0_(Clock::now()) {
    rig.probe().start_recording();
  }
  Json finish() {
    const auto t1 = Clock::now();
    const PipelineStats s1 = rig_.pipeline().stats();
    const net::NetworkProxyStats n1 = rig_.gate().proxy().stats();
    const auto samples = rig_.probe().stop_recording();
    std::vector<double> pause;
    for (const auto& s : samples) pause.push_back(s.total_ms);
    const double dt = std::chrono::duration<double>(t1 - t0_).count();
    const uint64_t ckpts = s1.checkpoints - s0_.checkpoints;
    return {{"window_s", dt},
            {"checkpoints", ckpts},
            {"ckpt_per_sec", static_cast<double>(ckpts) / dt},
            {"epoch_mean_ms", ckpts ? dt * 1000 / static_cast<double>(ckpts) : 0.0},
            {"checkpoints_by_output", s1.checkpoints_by_output - s0_.checkpoints_by_output},
            {"checkpoints_by_timer", s1.checkpoints_by_timer - s0_.checkpoints_by_timer},
            {"pause_p50_ms", percentile(pause, 50)},
            {"pause_p99_ms", percentile(pause, 99)},
            {"pause_mean_ms", mean(pause)},
            // share of the window the guest was stopped for checkpoints
            {"paused_fraction", std::accumulate(pause.begin(), pause.end(), 0.0) / (dt * 1000)},
            {"wire_mb_per_sec", static_cast<double>(s1.bytes_sent - s0_.bytes_sent) / dt / 1e6},
            {"backpressure_waits", s1.backpressure_waits - s0_.backpressure_waits},
            {"lag_ms_at_end", s1.lag_ms},
            {"output_frames_released", n1.frames_released - n0_.frames_released},
            {"output_mb_released_per_sec",
             static_cast<double>(n1.bytes_released - n0_.bytes_released) / dt / 1e6},
            {"output_hold_p50_ms", n1.hold_p50_us / 1000},
            {"output_hold_p99_ms", n1.hold_p99_us / 1000},
            {"input_frames_to_guest", n1.frames_to_guest - n0_.frames_to_guest},
            {"input_frames_dropped", n1.frames_to_guest_dropped - n0_.frames_to_guest_dropped}};
  }

 private:
  Rig& rig_;
  PipelineStats s0_;
  net::NetworkProxyStats n0_;
  Clock::time_point t0_;
};

// Both directions; each entry {"iperf": ..., ["protection": ...]} or {"error": ...}.
Json transfers(const Options& o, Rig& rig, const std::string& scratch, bool is_protected) {
  Json out;
  for (bool reverse : {false, true}) {
    const char* dir = reverse ? "guest_to_client" : "client_to_guest";
    std::this_thread::sleep_for(kIperfServerRelisten);  // after the previous test
    std::optional<ProtectionWindow> window;
    if (is_protected) window.emplace(rig);
    // Half-way through, the host kernel's view of the connection (cwnd, RTT,
    // the guest's advertised window, the client's receive space): the inputs
    // of window / RTT.
    auto ss_mid = std::async(std::launch::async, [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.seconds * 500 + 1000));
      auto out = run_command(
          {"ip", "netns", "exec", rig.netns().name(), "ss", "-tin", "dst", std::string(kGuestIp)});
      return out ? *out : out.error().to_string();
    });
    auto r = run_iperf({.netns = rig.netns().name(),
                        .server_ip = kGuestIp,
                        .port = o.port,
                        .guest_dir = o.guest_dir,
                        .seconds = o.seconds,
                        .reverse = reverse,
                        .scratch_dir = scratch});
    Json entry;
    if (window) entry["protection"] = window->finish();
    entry["ss_mid"] = ss_mid.get();
    if (r) {
      entry["iperf"] = iperf_json(*r);
      if (r->max_snd_cwnd_bytes > 0 && r->mean_rtt_us > 0)  // the sender's window / RTT
        entry["iperf"]["cwnd_over_rtt_mbit"] =
            static_cast<double>(r->max_snd_cwnd_bytes) * 8 / static_cast<double>(r->mean_rtt_us);
    } else {
      entry["error"] = r.error().to_string();
    }
    fmt::print("    {:<8} {:<16} {}\n", is_protected ? "prot" : "unprot", dir,
               r ? fmt::format("{:8.1f} Mbit/s  retr {}", r->received_mbit_per_sec, r->retransmits)
                 : r.error().to_string());
    std::fflush(stdout);
    out[dir] = entry;
  }
  return out;
}

Status run_cell(const Options& o, const PolicySpec& policy, const std::string& tag,
                const std::string& scratch, Json& cell) {
  RigConfig rc{
      .guest_dir = o.guest_dir,
      .memory_mib = o.size_mib,
      .append = rig_guest_append(o.size_mib, false, 0) + fmt::format(" ftd.iperf={}", o.port),
      .epochs = policy.epochs,
      .tag = tag,
      .tracker = parse_tracker_kind(o.tracker).value(),
      .initrd = "initrd-iperf.img"};
  FTD_ASSIGN_OR_RETURN(auto rig, Rig::create(rc));
  FTD_ASSIGN_OR_RETURN(double boot_s, rig->boot(std::chrono::seconds(120)));
  cell["boot_s"] = boot_s;
  for (const auto& l : rig->primary_serial().lines())
    if (l.text.find("ftd-init") != std::string::npos)
      return make_error(ErrorCode::kFailedPrecondition, "guest: {}", l.text);
  rig->gate().set_passthrough();  // unprotected: frames go out at once
  cell["unprotected"] = transfers(o, *rig, scratch, false);
  FTD_ASSIGN_OR_RETURN(double sync_s, rig->protect());
  double warm_s = 0;
  cell["initial_sync_s"] = sync_s;
  cell["reached_steady_state"] = rig->wait_steady(30.0, warm_s);
  cell["warmup_s"] = warm_s;
  cell["protected"] = transfers(o, *rig, scratch, true);
  for (const char* dir : {"client_to_guest", "guest_to_client"}) {
    const double u = cell["unprotected"][dir].value("/iperf/mbit_per_sec"_json_pointer, 0.0);
    const double p = cell["protected"][dir].value("/iperf/mbit_per_sec"_json_pointer, 0.0);
    if (u > 0 && cell["protected"][dir].contains("iperf")) cell["ratio"][dir] = p / u;
  }
  return ok();
}

double median(std::vector<double> v) { return v.empty() ? -1 : percentile(std::move(v), 50); }

// Per policy and direction: medians over the repetitions.
Json summarize_cells(const Json& cells) {
  std::map<std::string, std::map<std::string, std::map<std::string, std::vector<double>>>> acc;
  for (const auto& c : cells) {
    const std::string pol = c.value("policy", "");
    for (const char* dir : {"client_to_guest", "guest_to_client"}) {
      auto& a = acc[pol][dir];
      auto put = [&](const char* name, const Json& j, const char* ptr) {
        const auto p = Json::json_pointer(ptr);
        if (j.contains(p) && j[p].is_number()) a[name].push_back(j[p].get<double>());
      };
      if (!c.contains("unprotected") || !c.contains("protected")) continue;
      // A failed transfer's protection stats describe an idle guest: leave them out.
      if (!c["protected"][dir].contains("iperf")) continue;
      put("unprotected_mbit", c["unprotected"][dir], "/iperf/mbit_per_sec");
      put("protected_mbit", c["protected"][dir], "/iperf/mbit_per_sec");
      put("unprotected_retransmits", c["unprotected"][dir], "/iperf/retransmits");
      put("protected_retransmits", c["protected"][dir], "/iperf/retransmits");
      put("ratio", c.value("ratio", Json::object()), (std::string("/") + dir).c_str());
      put("ckpt_per_sec", c["protected"][dir], "/protection/ckpt_per_sec");
      put("epoch_mean_ms", c["protected"][dir], "/protection/epoch_mean_ms");
      put("checkpoints_by_output", c["protected"][dir], "/protection/checkpoints_by_output");
      put("checkpoints_by_timer", c["protected"][dir], "/protection/checkpoints_by_timer");
      put("pause_p50_ms", c["protected"][dir], "/protection/pause_p50_ms");
      put("paused_fraction", c["protected"][dir], "/protection/paused_fraction");
      put("output_hold_p50_ms", c["protected"][dir], "/protection/output_hold_p50_ms");
      put("cwnd_over_rtt_mbit", c["protected"][dir], "/iperf/cwnd_over_rtt_mbit");
      put("mean_rtt_ms", c["protected"][dir], "/iperf/mean_rtt_us");
    }
  }
  Json out = Json::object();
  for (auto& [pol, dirs] : acc)
    for (auto& [dir, metrics] : dirs)
      for (auto& [name, values] : metrics) {
        if (name == "mean_rtt_ms")  // TCP_INFO reports microseconds
          for (double& v : values) v /= 1000;
        const double m = median(values);
        out[pol][dir][name] = {{"median", m}, {"n", values.size()}, {"values", values}};
      }
  return out;
}

int run(int argc, char** argv) {
  keep_freed_heap_memory();
  Options o;
  CLI::App app{"Bulk TCP throughput (iperf3) of a protected QEMU guest vs unprotected"};
  app.add_option("--size-mib", o.size_mib, "guest RAM (MiB)")->check(CLI::Range(128, 4096));
  app.add_option("--seconds", o.seconds, "iperf3 -t per transfer")->check(CLI::Range(2, 120));
  app.add_option("--reps", o.reps, "repetitions of every policy, interleaved")
      ->check(CLI::Range(1, 50));
  app.add_option("--policies", o.policies,
                 "epoch policies: fixed:<ms>, output-driven:<max ms>[:<min ms>]")
      ->delimiter(',');
  app.add_option("--epoch-min-ms", o.epoch_min_ms, "output-driven: shortest checkpoint gap")
      ->check(CLI::Range(1, 10000));
  app.add_option("--tracker", o.tracker, "dirty tracker")
      ->check(CLI::IsMember({"scan", "uffd-wp", "soft-dirty", "auto"}));
  app.add_option("--port", o.port, "the guest's iperf3 port")->check(CLI::Range(1, 65535));
  app.add_option("--guest-dir", o.guest_dir, "vmlinuz + initrd-iperf.img (default: as qemu_bench)");
  app.add_option("--out", o.out, "JSON output path");
  app.add_flag("--verbose", o.verbose, "info logs");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);
  o.guest_dir = guest_dir_or_default(o.guest_dir);
  std::vector<PolicySpec> policies;
  for (const auto& p : o.policies) {
    auto spec = parse_policy(p, o.epoch_min_ms);
    if (!spec) {
      fmt::print(stderr, "net_bench: --policies {}\n", spec.error().message);
      return 2;
    }
    policies.push_back(*spec);
  }
  if (auto st = check_guest_and_root(
          o.guest_dir, {"vmlinuz", "initrd-iperf.img", "iperf3-credentials", "iperf3-public.pem"});
      !st) {
    fmt::print(stderr, "net_bench: {}\n", st.error().message);
    return 2;
  }
  if (auto v = run_command({"iperf3", "--version"}); !v) {
    fmt::print(stderr, "net_bench: iperf3 not runnable (deploy/install-deps.sh): {}\n",
               v.error().to_string());
    return 2;
  }
  char scratch_tmpl[] = "/tmp/ftd-netbench-XXXXXX";
  if (!::mkdtemp(scratch_tmpl)) {
    fmt::print(stderr, "net_bench: mkdtemp failed\n");
    return 1;
  }
  const std::string scratch = scratch_tmpl;

  const auto t_bench = Clock::now();
  Json doc{
      {"benchmark", "net"},
      {"date_utc", utc_now()},
      {"machine",
       {{"nproc", std::thread::hardware_concurrency()},
        {"kvm", std::filesystem::exists("/dev/kvm")},
        {"loadavg_at_start", loadavg()},
        {"shared", "2 vCPUs shared with other engineers' builds and tests; expect noise"}}},
      {"setup",
       {{"guest", "deploy/guest initrd-iperf.img, TCG, " + std::to_string(o.size_mib) + " MiB"},
        {"iperf3", "Debian iperf3 3.12 both ends, RSA+password auth, one TCP stream, -t " +
                       std::to_string(o.seconds) + " s, -J"},
        {"path",
         "client in the rig's netns -> bridge -> tap -> NetworkProxy (output commit) -> "
         "QEMU netdev stream -> virtio-net"},
        {"unprotected", "same rig before protect(): the proxy in passthrough"},
        {"protected", "QmpEngine + CheckpointPipeline + gRPC on loopback to SecondaryVm"},
        {"tracker", o.tracker},
        {"policies", o.policies},
        {"epoch_min_ms", o.epoch_min_ms},
        {"reps", o.reps},
        {"order",
         "repetition-major: each rep runs every policy once (rotated: rep r starts at "
         "policy r), a fresh rig per cell; 2 s between transfers (iperf3's server "
         "re-opens its listener after each test)"},
        {"mbit_per_sec", "iperf3 end.sum_received (goodput at the receiver)"},
        {"retransmits", "iperf3 end.sum_sent.retransmits (the sender's)"},
        {"cwnd_over_rtt_mbit",
         "client->guest only: the host kernel's max snd_cwnd / mean RTT (TCP_INFO)"}}}};
  Json cells = Json::array();
  int n = 0;
  bool any_error = false;
  for (int rep = 1; rep <= o.reps; ++rep)
    for (size_t k = 0; k < policies.size(); ++k) {
      // Each rep starts at the next policy, so no policy always runs first.
      const PolicySpec& policy = policies[(k + static_cast<size_t>(rep) - 1) % policies.size()];
      Json cell{{"rep", rep}, {"policy", policy.name}, {"loadavg_before", loadavg()}};
      fmt::print("rep {} {}:\n", rep, policy.name);
      const auto c0 = Clock::now();
      if (auto st = run_cell(o, policy, fmt::format("n{}", n++), scratch, cell); !st) {
        cell["error"] = st.error().to_string();
        fmt::print(stderr, "  ERROR {}\n", cell["error"].get<std::string>());
      }
      for (const char* phase : {"unprotected", "protected"})
        if (cell.contains(phase))
          for (const auto& [dir, e] : cell[phase].items()) any_error |= e.contains("error");
      any_error |= cell.contains("error");
      cell["cell_s"] = std::chrono::duration<double>(Clock::now() - c0).count();
      cell["loadavg_after"] = loadavg();
      cells.push_back(std::move(cell));
      doc["machine"]["loadavg_at_end"] = loadavg();
      doc["total_s"] = std::chrono::duration<double>(Clock::now() - t_bench).count();
      doc["cells"] = cells;
      doc["summary"] = summarize_cells(cells);
      write_json(o.out, doc);
    }
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);

  fmt::print("\n{:<20} {:<16} {:>12} {:>12} {:>7} {:>9} {:>8} {:>9}\n", "policy", "direction",
             "unprot Mb/s", "prot Mb/s", "ratio", "retr", "ckpt/s", "paused");
  for (const auto& [pol, dirs] : doc["summary"].items())
    for (const auto& [dir, m] : dirs.items()) {
      auto med = [&](const char* k) { return m.contains(k) ? m[k]["median"].get<double>() : -1; };
      fmt::print("{:<20} {:<16} {:>12.1f} {:>12.1f} {:>7.3f} {:>9.0f} {:>8.1f} {:>8.0f}%\n", pol,
                 dir, med("unprotected_mbit"), med("protected_mbit"), med("ratio"),
                 med("protected_retransmits"), med("ckpt_per_sec"), 100 * med("paused_fraction"));
    }
  fmt::print("total {:.0f} s; loadavg {}; wrote {}\n", doc["total_s"].get<double>(), loadavg(),
             o.out);
  return any_error ? 1 : 0;
}

}  // namespace
}  // namespace ftd::bench

int main(int argc, char** argv) { return ftd::bench::run(argc, argv); }
