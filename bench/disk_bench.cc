// Disk replication's cost to the guest (issue 9): the same test guest and
// disk load (ftd-guest-diskload: 4 KiB random writes each followed by
// fdatasync, then 1 MiB sequential writes) unprotected, protected by ftd, and
// under QEMU's own write-blocking mirror to a plain NBD target, interleaved
// repetitions in one run (bench/disk_guests.h); plus ftd's checkpoint pause
// with and without the disk load (Plan RPC samples during each phase).
// Writes bench/results/disk.json after every cell.
#include <stdlib.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/disk_guests.h"
#include "bench/disk_round.h"
#include "bench/failover_report.h"
#include "common/subprocess.h"
#include "tests/guest/guest_testing.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  DiskGuestOptions guest;
  int reps = 3;
  std::vector<std::string> configs{"plain", "ftd", "qemu-mirror"};
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/disk.json";
  // Where every configuration's disk image (and the pair's work directory)
  // lives: a real disk (fdatasync reaches it) or tmpfs (fdatasync is free, so
  // only the mirror's round trips remain).
  std::string image_dir = "/tmp";
};

Json measures(const Options& o) {
  return {
      {"rand4k", fmt::format("4 KiB O_DIRECT write at a random 4 KiB offset of the {} MiB disk, "
                             "then fdatasync; p50/p99/max per write+fdatasync (guest clock)",
                             o.guest.disk_mib)},
      {"seq1m", "1 MiB O_DIRECT writes in order, one fdatasync at the end; p50/p99 per write"},
      {"iops_guest/mbps_guest",
       "over the phase's guest time: the guest clock stands still while "
       "QEMU has the VM stopped, so checkpoint pauses are left out"},
      {"iops_wall/mbps_wall",
       "over the host's stamps of the phase's start and result console "
       "lines: checkpoint pauses included"},
      {"pauses",
       "ftd only: checkpoints taken during the phase (Plan RPC sample of "
       "0.75 x phase), pause = guest stopped per checkpoint; parts are means; "
       "devstate_disk includes taking the epoch's disk writes; commit = capture -> ack"}};
}

// Median over the repetitions of one configuration, per metric.
Json summarize(const Json& runs) {
  Json s = Json::object();
  const auto add = [&](const std::string& key, const Json::json_pointer& at) {
    std::vector<double> v;
    for (const Json& r : runs)
      if (r.contains(at) && r.at(at).is_number()) v.push_back(r.at(at).get<double>());
    if (!v.empty())
      s[key] = {{"n", v.size()},
                {"median", percentile(v, 50)},
                {"min", percentile(v, 0)},
                {"max", percentile(v, 100)}};
  };
  for (const char* phase : {"rand4k", "seq1m"})
    for (const char* m : {"iops_guest", "iops_wall", "mbps_guest", "mbps_wall", "p50_us", "p99_us"})
      add(fmt::format("{}.{}", phase, m), Json::json_pointer(fmt::format("/{}/{}", phase, m)));
  for (const char* phase : {"idle", "rand4k", "seq1m"}) {
    for (const char* m : {"p50_ms", "p99_ms", "checkpoints_per_sec", "commit_p50_ms"})
      add(fmt::format("pause.{}.{}", phase, m),
          Json::json_pointer(fmt::format("/probe/{}/{}", phase, m)));
    for (const char* part : {"stop", "find", "copy", "devstate_disk", "resume"})
      add(fmt::format("pause.{}.{}_ms", phase, part),
          Json::json_pointer(fmt::format("/probe/{}/parts_mean_ms/{}", phase, part)));
  }
  return s;
}

// Per repetition, each configuration's metric over plain's in the same
// repetition (same minutes of machine load), then the median of those ratios.
Json ratios_to_plain(const Json& runs) {
  Json out = Json::object();
  if (!runs.contains("plain")) return out;
  const std::vector<std::string> metrics{"/rand4k/iops_guest", "/rand4k/iops_wall",
                                         "/rand4k/p50_us",     "/rand4k/p99_us",
                                         "/seq1m/mbps_guest",  "/seq1m/mbps_wall"};
  for (const auto& [config, list] : runs.items()) {
    if (config == "plain") continue;
    for (const std::string& m : metrics) {
      const Json::json_pointer at(m);
      std::vector<double> v;
      for (const Json& r : list)
        for (const Json& p : runs["plain"])
          if (p["rep"] == r["rep"] && r.contains(at) && p.contains(at) &&
              p.at(at).get<double>() > 0)
            v.push_back(r.at(at).get<double>() / p.at(at).get<double>());
      if (!v.empty())
        out[config][m.substr(1)] = {{"n", v.size()},
                                    {"median", percentile(v, 50)},
                                    {"min", percentile(v, 0)},
                                    {"max", percentile(v, 100)}};
    }
  }
  return out;
}

double median(const Json& summary, const std::string& key) {
  return summary.contains(key) ? summary[key]["median"].get<double>() : -1;
}

void print_table(const Json& doc) {
  const Json& s = doc["summary"];
  fmt::print("\n{:<12} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10}\n", "config", "4k IOPS", "(wall)",
             "p50 us", "p99 us", "1M MB/s", "(wall)");
  for (const auto& [config, m] : s.items())
    fmt::print("{:<12} {:>10.0f} {:>10.0f} {:>9.0f} {:>9.0f} {:>10.1f} {:>10.1f}\n", config,
               median(m, "rand4k.iops_guest"), median(m, "rand4k.iops_wall"),
               median(m, "rand4k.p50_us"), median(m, "rand4k.p99_us"),
               median(m, "seq1m.mbps_guest"), median(m, "seq1m.mbps_wall"));
  if (!s.contains("ftd")) return;
  fmt::print("\nftd pause  {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>7} {:>8}\n", "p50 ms", "p99 ms",
             "stop", "find", "copy", "dev+disk", "resume", "ckpt/s");
  for (const char* phase : {"idle", "rand4k", "seq1m"}) {
    const auto m = [&](const std::string& k) {
      return median(s["ftd"], fmt::format("pause.{}.{}", phase, k));
    };
    fmt::print("{:<10} {:>8.1f} {:>8.1f} {:>7.1f} {:>7.1f} {:>7.1f} {:>9.1f} {:>7.1f} {:>8.1f}\n",
               phase, m("p50_ms"), m("p99_ms"), m("stop_ms"), m("find_ms"), m("copy_ms"),
               m("devstate_disk_ms"), m("resume_ms"), m("checkpoints_per_sec"));
  }
}

std::string image_fs(const std::string& dir) {
  auto out = run_command({"stat", "-f", "-c", "%T", dir});
  return out ? std::string(out->substr(0, out->find('\n'))) : out.error().to_string();
}

// --resummarize FILE: recompute summary and ratios of an earlier run's JSON.
int resummarize(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    fmt::print(stderr, "disk_bench: cannot read {}\n", path);
    return 2;
  }
  Json doc;
  try {
    doc = Json::parse(in);
  } catch (const std::exception& e) {
    fmt::print(stderr, "disk_bench: {}: {}\n", path, e.what());
    return 2;
  }
  if (!doc.contains("runs") || !doc["runs"].is_object()) {
    fmt::print(stderr, "disk_bench: {} has no runs\n", path);
    return 2;
  }
  for (const auto& [config, list] : doc["runs"].items()) doc["summary"][config] = summarize(list);
  doc["ratio_to_plain_same_rep"] = ratios_to_plain(doc["runs"]);
  write_json(path, doc);
  print_table(doc);
  return 0;
}

int run(const Options& o) {
  Json doc = {{"bench", "disk_bench"},
              {"date", utc_now()},
              {"load_before", loadavg()},
              {"settings",
               {{"memory_mib", o.guest.memory_mib},
                {"disk_mib", o.guest.disk_mib},
                {"phase_s", o.guest.phase_s},
                {"epoch_ms", o.guest.epoch_ms},
                {"reps", o.reps},
                {"image_dir", o.image_dir},
                {"image_fs", image_fs(o.image_dir)}}},
              {"measures", measures(o)},
              {"runs", Json::object()},
              {"summary", Json::object()}};
  int failures = 0;
  for (int rep = 1; rep <= o.reps; ++rep) {
    for (const std::string& config : o.configs) {
      fmt::print("[disk_bench] rep {}/{} {} (load {})\n", rep, o.reps, config, loadavg());
      std::fflush(stdout);
      Json cell = {{"rep", rep}, {"load", loadavg()}};
      auto guest = start_disk_guest(config, o.guest);
      if (!guest) {
        cell["error"] = guest.error().to_string();
      } else {
        cell["setup"] = (*guest)->setup();
        auto* g = guest->get();
        const PhaseProbe probe = [g](const std::string&, double phase_s) {
          return g->sample_pauses(static_cast<unsigned>(phase_s * 750));
        };
        auto round = run_disk_round(g->console(), o.guest.phase_s, probe,
                                    std::chrono::seconds(60 + 10 * o.guest.phase_s));
        if (round)
          cell.update(*round);
        else
          cell["error"] = round.error().to_string();
      }
      if (cell.contains("error")) {
        ++failures;
        fmt::print("[disk_bench]   FAILED: {}\n", cell["error"].get<std::string>());
      } else {
        fmt::print(
            "[disk_bench]   rand4k {:.0f} IOPS (wall {:.0f}) p50 {} us p99 {} us; "
            "seq1m {:.1f} MB/s (wall {:.1f})\n",
            cell["rand4k"]["iops_guest"].get<double>(), cell["rand4k"]["iops_wall"].get<double>(),
            cell["rand4k"]["p50_us"].get<uint64_t>(), cell["rand4k"]["p99_us"].get<uint64_t>(),
            cell["seq1m"]["mbps_guest"].get<double>(), cell["seq1m"]["mbps_wall"].get<double>());
      }
      doc["runs"][config].push_back(std::move(cell));
      doc["summary"][config] = summarize(doc["runs"][config]);
      doc["ratio_to_plain_same_rep"] = ratios_to_plain(doc["runs"]);
      doc["load_after"] = loadavg();
      write_json(o.out, doc);
    }
  }
  print_table(doc);
  fmt::print("\nwrote {}\n", o.out);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ftd::bench

int main(int argc, char** argv) {
  ftd::bench::Options o;
  CLI::App app{"disk_bench: guest disk writes unprotected vs ftd vs QEMU's own mirror"};
  app.add_option("--reps", o.reps, "repetitions of each configuration, interleaved")
      ->check(CLI::PositiveNumber);
  app.add_option("--configs", o.configs, "plain ftd qemu-mirror");
  app.add_option("--memory-mib", o.guest.memory_mib, "guest RAM");
  app.add_option("--disk-mib", o.guest.disk_mib, "disk size (the load writes all of it)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--phase-s", o.guest.phase_s, "seconds per phase (guest clock)")
      ->check(CLI::Range(1, 60));
  app.add_option("--epoch-ms", o.guest.epoch_ms, "ftd's (maximum) epoch");
  app.add_option("--out", o.out, "JSON output");
  app.add_option("--image-dir", o.image_dir, "directory of the disk images (TMPDIR of the run)")
      ->check(CLI::ExistingDirectory);
  std::string resummarize;
  app.add_option("--resummarize", resummarize,
                 "recompute the summary of an earlier run's JSON (no guests)");
  CLI11_PARSE(app, argc, argv);
  if (!resummarize.empty()) return ftd::bench::resummarize(resummarize);
  spdlog::set_level(spdlog::level::warn);
  // The harness finds ftd and the guest through FTD_BUILD_DIR.
  ::setenv("FTD_BUILD_DIR", FTD_BUILD_DIR, /*overwrite=*/0);
  // Every image and work directory (ProtectedPair's too) is a TempDir under TMPDIR.
  ::setenv("TMPDIR", o.image_dir.c_str(), /*overwrite=*/1);
  auto guest = ftd::testing::guest_dir();
  if (!guest) {
    fmt::print(stderr, "disk_bench: {}\n", guest.error().to_string());
    return 2;
  }
  o.guest.guest_dir = guest->string();
  return ftd::bench::run(o);
}
