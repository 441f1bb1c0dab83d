// Dirty-page scan throughput: PageScanner (per-page xxh3 vs last scan) at 1
// and 2 threads, against the two ceilings it competes with — memcpy bandwidth
// and page-wise memcmp against a second copy of RAM (the alternative design).
// Prints a table and writes JSON (default bench/results/scan.json).
//
// Every buffer is filled with random bytes first: untouched anonymous memory
// maps the shared zero page and would make reads look free.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
// Explicit *_dispatch calls only; no silent renaming of XXH3_64bits.
#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxh_x86dispatch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint/page_scanner.h"
#include "synthetic/synthetic_engine.h"
#include "common/hash.h"
#include "common/mapped_region.h"

namespace ftd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;

struct Row {
  std::string method;
  size_t size_mib = 0;
  unsigned threads = 1;
  double median_ms = 0;
  double min_ms = 0;
  double gbps = 0;  // region bytes per second (the RAM being checked), 1e9
  std::string note;
};

void fill_random(std::span<std::byte> mem, uint64_t seed) {
  auto* words = reinterpret_cast<uint64_t*>(mem.data());
  uint64_t x = seed;
  for (size_t i = 0; i < mem.size() / 8; ++i) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    words[i] = z ^ (z >> 27);
  }
}

// Runs `prepare` (untimed) then `body` (timed) `reps` times.
Row measure(std::string method, size_t bytes, unsigned threads, int reps,
            const std::function<void()>& prepare, const std::function<void()>& body) {
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    prepare();
    const auto t0 = Clock::now();
    body();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  Row row{std::move(method), bytes >> 20, threads, ms[ms.size() / 2], ms.front(), 0, ""};
  row.gbps = static_cast<double>(bytes) / (row.median_ms * 1e-3) / 1e9;
  return row;
}

Result<std::vector<Row>> bench_size(size_t bytes, int reps, double dirty_fraction) {
  std::vector<Row> rows;
  FTD_ASSIGN_OR_RETURN(MappedRegion ram, MappedRegion::anonymous(bytes));
  FTD_ASSIGN_OR_RETURN(MappedRegion copy, MappedRegion::anonymous(bytes));
  fill_random(ram.bytes(), 1);
  std::memcpy(copy.data(), ram.data(), bytes);
  const size_t pages = bytes / kPage;
  const size_t dirty_per_rep = std::max<size_t>(1, static_cast<size_t>(pages * dirty_fraction));
  uint64_t tick = 0;
  // Dirties a spread of pages (untimed), like a guest between checkpoints.
  auto dirty_some = [&] {
    for (size_t d = 0; d < dirty_per_rep; ++d) {
      const size_t p = (d * 7919 + tick * 104729) % pages;
      ram.data()[p * kPage + (tick % kPage)] ^= std::byte{1};
    }
    ++tick;
  };

  rows.push_back(measure(
      "memcpy", bytes, 1, reps, [] {}, [&] { std::memcpy(copy.data(), ram.data(), bytes); }));
  rows.back().note = "reads region + writes copy";

  size_t differing = 0;
  rows.push_back(measure(
      "memcmp_vs_copy", bytes, 1, reps, [] {},
      [&] {
        differing = 0;
        for (size_t p = 0; p < pages; ++p)
          differing += std::memcmp(ram.data() + p * kPage, copy.data() + p * kPage, kPage) != 0;
      }));
  rows.back().note = fmt::format("reads 2x region; {} pages differ", differing);

  for (unsigned threads : {1u, 2u}) {
    PageScanner scanner(kPage, threads);
    rows.push_back(measure(
        "scan_first", bytes, threads, 1, [&] { scanner.reset(); },
        [&] { scanner.scan(ram.bytes()); }));
    rows.back().note = "no previous hashes";
    size_t found = 0;
    rows.push_back(measure("scan", bytes, threads, reps, dirty_some,
                           [&] { found = scanner.scan(ram.bytes()).size(); }));
    rows.back().note = fmt::format("{} dirty pages found per scan", found);
    if (found != dirty_per_rep)
      return make_error(ErrorCode::kInternal, "scan found {} pages, {} dirtied", found,
                        dirty_per_rep);
  }
  return rows;
}

// Compute ceilings: xxh3 over a cache-resident 256 KiB buffer, one thread;
// hash64 (the library's default, baseline-x86-64 build) and the runtime-dispatched
// AVX2/AVX-512 variant the scanner uses.
std::vector<Row> bench_hash_in_cache(int reps) {
  std::vector<std::byte> buf(256 << 10);
  fill_random(buf, 3);
  constexpr int kLoops = 4000;
  std::vector<Row> rows;
  for (bool dispatch : {false, true}) {
    uint64_t sink = 0;
    Row row = measure(
        dispatch ? "xxh3_dispatch_l2" : "xxh3_hash64_l2", buf.size() * kLoops, 1, reps, [] {},
        [&] {
          for (int i = 0; i < kLoops; ++i)
            for (size_t p = 0; p < buf.size(); p += kPage)
              sink += dispatch ? XXH3_64bits_dispatch(buf.data() + p, kPage)
                               : hash64(std::span(buf).subspan(p, kPage));
        });
    row.size_mib = 0;
    row.note = fmt::format("256 KiB in cache, compute ceiling (sink {})", sink & 1);
    rows.push_back(row);
  }
  return rows;
}

// How fast the synthetic writer can dirty pages when unthrottled; with and
// without prefaulting (first touch of a page costs a fault, which dominates).
Result<Row> bench_synthetic_writer(bool prefault) {
  SyntheticEngine::Config c;
  c.memory_bytes = 1ull << 30;
  c.dirty_pages_per_sec = 0;
  c.bytes_per_write = 256;
  c.prefault = prefault;
  const auto t_create = Clock::now();
  FTD_ASSIGN_OR_RETURN(auto engine, SyntheticEngine::create(c));
  const double create_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - t_create).count();
  const uint64_t start_writes = engine->writes_done();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  FTD_TRY(engine->pause());
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Row row{prefault ? "writer_prefault" : "writer_lazy", 1024, 1, secs * 1e3, secs * 1e3, 0, ""};
  row.note =
      fmt::format("{:.0f} writes/s unthrottled (256 B, uniform); create {:.0f} ms",
                  static_cast<double>(engine->writes_done() - start_writes) / secs, create_ms);
  return row;
}

int run(int argc, char** argv) {
  CLI::App app{"Dirty-page scan throughput vs memcpy and memcmp"};
  std::vector<size_t> sizes_mib{256, 1024};
  int reps = 7;
  double dirty_fraction = 0.01;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/scan.json";
  app.add_option("--sizes-mib", sizes_mib, "region sizes in MiB");
  app.add_option("--reps", reps, "repetitions per measurement (median reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--dirty-fraction", dirty_fraction, "pages dirtied between scans")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--out", out, "JSON output path");
  CLI11_PARSE(app, argc, argv);

  // The machine may be shared: record how busy it was.
  std::string loadavg;
  std::getline(std::ifstream("/proc/loadavg"), loadavg);
  fmt::print("loadavg: {}\n", loadavg);

  std::vector<Row> rows;
  for (size_t mib : sizes_mib) {
    auto r = bench_size(mib << 20, reps, dirty_fraction);
    if (!r) {
      fmt::print(stderr, "scan_bench: {} MiB: {}\n", mib, r.error().to_string());
      return 1;
    }
    rows.insert(rows.end(), r->begin(), r->end());
  }
  for (auto& r : bench_hash_in_cache(reps)) rows.push_back(r);
  for (bool prefault : {false, true}) {
    auto writer = bench_synthetic_writer(prefault);
    if (!writer) {
      fmt::print(stderr, "scan_bench: synthetic writer: {}\n", writer.error().to_string());
      return 1;
    }
    rows.push_back(*writer);
  }

  fmt::print("{:<17} {:>8} {:>7} {:>10} {:>10} {:>8}  {}\n", "method", "MiB", "threads",
             "median_ms", "min_ms", "GB/s", "note");
  nlohmann::json json_rows = nlohmann::json::array();
  for (const auto& r : rows) {
    fmt::print("{:<17} {:>8} {:>7} {:>10.2f} {:>10.2f} {:>8.2f}  {}\n", r.method, r.size_mib,
               r.threads, r.median_ms, r.min_ms, r.gbps, r.note);
    json_rows.push_back({{"method", r.method},
                         {"size_mib", r.size_mib},
                         {"threads", r.threads},
                         {"median_ms", r.median_ms},
                         {"min_ms", r.min_ms},
                         {"gbps", r.gbps},
                         {"note", r.note}});
  }
  nlohmann::json doc{{"benchmark", "scan"},
                     {"page_size", kPage},
                     {"reps", reps},
                     {"dirty_fraction", dirty_fraction},
                     {"hardware_threads", std::thread::hardware_concurrency()},
                     {"loadavg_at_start", loadavg},
                     {"gbps_definition", "region bytes / median time, 1e9"},
                     {"rows", json_rows}};
  std::ofstream f(out);
  f << doc.dump(2) << "\n";
  if (!f) {
    fmt::print(stderr, "scan_bench: cannot write {}\n", out);
    return 1;
  }
  fmt::print("wrote {}\n", out);
  return 0;
}

}  // namespace
}  // namespace ftd

int main(int argc, char** argv) { return ftd::run(argc, argv); }
