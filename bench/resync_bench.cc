// What keeping the last consistent epoch through a resync costs (issue 12),
// per mechanism, on /dev/shm. The replica holds a consistent epoch; a resync
// rewrites every page (chunks of 16384 pages, as the pipeline sends them), of
// which a fraction `divergence` really changed; then the first checkpoint
// after the sync commits it.
//   overwrite     the old behaviour: no protection (the kept epoch is gone
//                 from the first chunk on; the baseline)
//   undo_log      ReplicaStore: each changed page saved the first time the
//                 resync overwrites it, identical pages skipped (chosen)
//   second_image  the sync goes into <vm>.ram.next, renamed over the replica
//                 at commit (a standby QEMU mapping the old file would also
//                 have to be relaunched: not included)
// Also: the per-checkpoint price of crash-safe apply (undo log of the
// checkpoint's pages vs the copy alone). Decode (verify + copy out of the
// encoded chunk) is the same for every mechanism and reported apart.
// Prints a table and writes JSON (default bench/results/resync.json).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint/codec.h"
#include "common/hash.h"
#include "common/mapped_region.h"
#include "secondary/replica_store.h"
#include "secondary/undo_log.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr uint32_t kPage = 4096;
constexpr uint32_t kChunkPages = 16384;  // PipelineConfig::sync_chunk_pages

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Page contents as a function of (page, version): no RAM-sized source buffer.
void fill_page(std::byte* dst, uint32_t page, uint32_t version) {
  auto* words = reinterpret_cast<uint64_t*>(dst);
  uint64_t x = (uint64_t{page} << 32) ^ version ^ 0x5851f42d4c957f2dull;
  for (size_t i = 0; i < kPage / 8; ++i) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    words[i] = z ^ (z >> 27);
  }
}

// Which pages a resync really changes: an even spread of `divergence`.
bool diverges(uint32_t page, double divergence) {
  return static_cast<double>((uint64_t{page} * 2654435761ull) % 1000) < divergence * 1000;
}

struct Row {
  std::string mechanism;
  uint64_t size_mib = 0;
  double divergence = 0;
  double resync_s = 0;          // applying the chunks, decode excluded
  double decode_s = 0;          // verify + unpack the chunks (same for every mechanism)
  double commit_ms = 0;         // the first checkpoint after the sync (drops the old state)
  double rollback_ms = -1;      // failover mid-resync: back to the kept epoch (-1: impossible)
  uint64_t extra_peak_mib = 0;  // tmpfs beyond the replica itself
  bool verified = false;        // RAM after commit (and after rollback) as expected
};

// The guest memory the primary would send: per page, the version it is at.
class Source {
 public:
  explicit Source(uint64_t pages) : version_(pages, 0) {}
  uint64_t pages() const { return version_.size(); }
  // Encodes sync chunk `first..first+n` with the next versions of diverging pages.
  void encode_chunk(uint32_t first, uint32_t n, double divergence, std::vector<std::byte>& out) {
    std::vector<uint32_t> idx(n);
    contents_.resize(size_t{n} * kPage);
    for (uint32_t i = 0; i < n; ++i) {
      idx[i] = first + i;
      fill_page(contents_.data() + size_t{i} * kPage, idx[i],
                version_[idx[i]] + (diverges(idx[i], divergence) ? 1 : 0));
    }
    CheckpointInput in{.epoch = 0,
                       .base_epoch = 0,
                       .flags = kFlagSyncChunk,
                       .page_size = kPage,
                       .page_indices = idx,
                       .pages = contents_};
    (void)encode_checkpoint(in, CompressionPolicy::kNone, out);
  }
  // The resync committed: the diverging pages are at their next version.
  void advance(double divergence) {
    for (uint32_t p = 0; p < pages(); ++p)
      if (diverges(p, divergence)) ++version_[p];
  }
  uint64_t hash_of_memory() const {  // of the whole memory at the current versions
    std::vector<uint64_t> page_hashes(pages());
    std::vector<std::byte> page(kPage);
    for (uint32_t p = 0; p < pages(); ++p) {
      fill_page(page.data(), p, version_[p]);
      page_hashes[p] = hash64(page);
    }
    return hash64(std::as_bytes(std::span(page_hashes)));
  }

 private:
  std::vector<uint32_t> version_;
  std::vector<std::byte> contents_;
};

uint64_t hash_of_pages(std::span<const std::byte> ram) {
  std::vector<uint64_t> page_hashes(ram.size() / kPage);
  for (size_t p = 0; p < page_hashes.size(); ++p)
    page_hashes[p] = hash64(ram.subspan(p * kPage, kPage));
  return hash64(std::as_bytes(std::span(page_hashes)));
}

// One checkpoint of a new primary history, on base 0, committing the sync.
std::vector<std::byte> first_checkpoint(uint64_t epoch, std::span<const std::byte> ram) {
  std::vector<uint32_t> idx = {0};
  std::vector<std::byte> dev(64, std::byte{1});
  CheckpointInput in{.epoch = epoch,
                     .base_epoch = 0,
                     .page_size = kPage,
                     .page_indices = idx,
                     .pages = ram.first(kPage),
                     .device_state = dev};
  std::vector<std::byte> out;
  (void)encode_checkpoint(in, CompressionPolicy::kNone, out);
  return out;
}

struct Replica {
  std::string dir;
  uint64_t bytes;
  // Opened and warmed: a daemon's long-lived mapping has every page faulted
  // in since its first sync (on tmpfs a read fault maps the page writable).
  Result<ReplicaStore> open() const {
    FTD_ASSIGN_OR_RETURN(ReplicaStore store, ReplicaStore::open(dir, "vm", bytes, kPage));
    (void)hash_of_pages(store.memory());
    return store;
  }
};

// Applies every sync chunk of one resync to `store`; adds times to `row`.
Status resync_store(ReplicaStore& store, Source& src, double divergence, Row& row) {
  std::vector<std::byte> enc;
  for (uint64_t first = 0; first < src.pages(); first += kChunkPages) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(kChunkPages, src.pages() - first));
    src.encode_chunk(static_cast<uint32_t>(first), n, divergence, enc);
    FTD_ASSIGN_OR_RETURN(ApplyStats st, store.apply(enc));
    row.resync_s += static_cast<double>(st.apply_us) / 1e6;
    row.decode_s += static_cast<double>(st.decode_us) / 1e6;
    row.extra_peak_mib = std::max(row.extra_peak_mib, store.undo_bytes() >> 20);
  }
  return ok();
}

Status commit_store(ReplicaStore& store, Source& src, double divergence, Row& row) {
  auto enc = first_checkpoint(1, store.memory());  // a new primary's first epoch
  auto t0 = Clock::now();
  FTD_TRY(store.apply(enc));
  row.commit_ms = ms_since(t0);
  src.advance(divergence);
  row.verified = hash_of_pages(store.memory()) == src.hash_of_memory();
  return ok();
}

Result<Row> run_undo_log(const Replica& r, Source& src, double divergence) {
  Row row{.mechanism = "undo_log", .size_mib = r.bytes >> 20, .divergence = divergence};
  FTD_ASSIGN_OR_RETURN(ReplicaStore store, r.open());
  // First a resync that a failover interrupts: roll back, check, then again to commit.
  Row first = row;
  FTD_TRY(resync_store(store, src, divergence, first));
  auto t0 = Clock::now();
  FTD_TRY(store.roll_back_resync());
  row.rollback_ms = ms_since(t0);
  const bool rolled_back = hash_of_pages(store.memory()) == src.hash_of_memory();
  // A kept epoch takes no deltas: back to "consistent at 1" with the same RAM.
  FTD_TRY(store.reset());
  FTD_TRY(store.apply(first_checkpoint(1, store.memory())));
  FTD_TRY(resync_store(store, src, divergence, row));
  FTD_TRY(commit_store(store, src, divergence, row));
  row.verified = row.verified && rolled_back;
  return row;
}

Result<Row> run_overwrite(const Replica& r, Source& src, double divergence) {
  Row row{.mechanism = "overwrite", .size_mib = r.bytes >> 20, .divergence = divergence};
  FTD_ASSIGN_OR_RETURN(ReplicaStore store, r.open());
  FTD_TRY(store.reset());  // epoch 0: sync chunks are a plain copy, nothing kept
  FTD_TRY(resync_store(store, src, divergence, row));
  FTD_TRY(commit_store(store, src, divergence, row));
  return row;
}

Result<Row> run_second_image(const Replica& r, Source& src, double divergence) {
  Row row{.mechanism = "second_image", .size_mib = r.bytes >> 20, .divergence = divergence};
  const std::string ram_path = r.dir + "/vm.ram", next_path = ram_path + ".next";
  // The replica's own file stays mapped (a standby would map it too) while
  // the sync fills a second, fully allocated image.
  FTD_ASSIGN_OR_RETURN(MappedRegion ram, MappedRegion::map_file(ram_path, r.bytes, false));
  auto t0 = Clock::now();
  FTD_ASSIGN_OR_RETURN(MappedRegion next, MappedRegion::map_file(next_path, r.bytes, true));
  row.resync_s += ms_since(t0) / 1e3;
  row.extra_peak_mib = r.bytes >> 20;
  std::vector<std::byte> enc;
  for (uint64_t first = 0; first < src.pages(); first += kChunkPages) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(kChunkPages, src.pages() - first));
    src.encode_chunk(static_cast<uint32_t>(first), n, divergence, enc);
    auto t1 = Clock::now();
    FTD_ASSIGN_OR_RETURN(DecodedCheckpoint d, decode_checkpoint(enc, next.bytes()));
    row.decode_s += ms_since(t1) / 1e3;
    auto t2 = Clock::now();
    for (size_t i = 0; i < d.page_indices.size(); ++i)
      std::memcpy(next.data() + uint64_t{d.page_indices[i]} * kPage, d.pages.data() + i * kPage,
                  kPage);
    row.resync_s += ms_since(t2) / 1e3;
  }
  // Rollback would be: unlink next (the replica was never touched).
  auto t3 = Clock::now();
  if (::rename(next_path.c_str(), ram_path.c_str()) != 0) return errno_error("rename");
  ram = MappedRegion();  // the old image's pages are freed with its last mapping
  row.commit_ms = ms_since(t3);
  src.advance(divergence);
  row.verified = hash_of_pages(next.bytes()) == src.hash_of_memory();
  row.rollback_ms = 0;  // would be an unlink of the next image: the replica was never touched
  return row;
}

// The price of crash-safe apply per checkpoint: the undo log of its pages.
struct CheckpointRow {
  uint32_t pages = 0;
  double copy_us = 0;       // copying the pages into the replica (the old apply)
  double undo_copy_us = 0;  // undo begin + save + copy + clear
};

Result<std::vector<CheckpointRow>> bench_checkpoint_undo(const std::string& dir, uint64_t bytes,
                                                         int reps) {
  FTD_ASSIGN_OR_RETURN(MappedRegion ram, MappedRegion::map_file(dir + "/ckpt.ram", bytes, true));
  FTD_ASSIGN_OR_RETURN(UndoLog undo, UndoLog::open(dir + "/ckpt.undo", kPage, bytes / kPage));
  (void)hash_of_pages(ram.bytes());  // warm, as the replica's mapping is
  std::vector<CheckpointRow> rows;
  std::mt19937_64 rng(1);
  for (uint32_t n : {64u, 256u, 1024u, 4096u}) {
    std::vector<std::byte> pages(size_t{n} * kPage);
    for (uint32_t i = 0; i < n; ++i) fill_page(pages.data() + size_t{i} * kPage, i, 7);
    std::vector<double> copy, with_undo;
    for (int rep = 0; rep < reps; ++rep) {
      std::vector<uint32_t> idx(n);
      for (auto& p : idx) p = static_cast<uint32_t>(rng() % (bytes / kPage));
      std::sort(idx.begin(), idx.end());
      idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
      auto copy_in = [&] {
        for (size_t i = 0; i < idx.size(); ++i)
          std::memcpy(ram.data() + uint64_t{idx[i]} * kPage, pages.data() + i * kPage, kPage);
      };
      auto t0 = Clock::now();
      copy_in();
      copy.push_back(ms_since(t0) * 1e3);
      auto t1 = Clock::now();
      FTD_TRY(undo.begin(1, UndoKind::kApply));
      FTD_TRY(undo.save(idx, ram.bytes()));
      copy_in();
      FTD_TRY(undo.clear());
      with_undo.push_back(ms_since(t1) * 1e3);
    }
    std::sort(copy.begin(), copy.end());
    std::sort(with_undo.begin(), with_undo.end());
    rows.push_back({n, copy[copy.size() / 2], with_undo[with_undo.size() / 2]});
  }
  fs::remove(dir + "/ckpt.ram");
  fs::remove(dir + "/ckpt.undo");
  return rows;
}

int run(int argc, char** argv) {
  CLI::App app{"resync_bench: the cost of keeping the last consistent epoch through a resync"};
  std::vector<uint64_t> sizes_mib = {1024, 4096};
  std::vector<double> divergences = {1.0, 0.1};
  std::string dir = "/dev/shm/ftd-resync-bench";
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/resync.json";
  app.add_option("--sizes-mib", sizes_mib, "replica sizes");
  app.add_option("--divergences", divergences, "fractions of pages the resync changes");
  app.add_option("--dir", dir, "scratch directory on tmpfs");
  app.add_option("--out", out, "JSON results");
  CLI11_PARSE(app, argc, argv);

  std::vector<Row> rows;
  nlohmann::json json;
  for (uint64_t mib : sizes_mib) {
    fs::remove_all(dir);
    const Replica r{dir, mib << 20};
    Source src(r.bytes / kPage);
    {
      // The replica at a consistent epoch, reached through a normal first sync.
      auto store = r.open();
      if (!store) return fmt::print(stderr, "{}\n", store.error().to_string()), 1;
      Row setup;
      if (auto st = resync_store(*store, src, 0.0, setup); !st)
        return fmt::print(stderr, "{}\n", st.error().to_string()), 1;
      if (auto st = store->apply(first_checkpoint(1, store->memory())); !st)
        return fmt::print(stderr, "{}\n", st.error().to_string()), 1;
    }
    for (double d : divergences) {
      for (auto* mechanism : {&run_overwrite, &run_undo_log, &run_second_image}) {
        auto row = (*mechanism)(r, src, d);
        if (!row) return fmt::print(stderr, "{}\n", row.error().to_string()), 1;
        fmt::print(
            "{:>12} {:>5} MiB  divergence {:>4.0f}%  resync {:6.2f} s (+decode {:5.2f} s)  "
            "commit {:7.1f} ms  rollback {:>7}  extra tmpfs {:>5} MiB  {}\n",
            row->mechanism, row->size_mib, row->divergence * 100, row->resync_s, row->decode_s,
            row->commit_ms,
            row->rollback_ms < 0 ? std::string("lost") : fmt::format("{:.1f} ms", row->rollback_ms),
            row->extra_peak_mib, row->verified ? "ok" : "MISMATCH");
        rows.push_back(*row);
      }
    }
    fs::remove_all(dir);
  }
  fs::create_directories(dir);
  auto ckpt = bench_checkpoint_undo(dir, 1ull << 30, 21);
  fs::remove_all(dir);
  if (!ckpt) return fmt::print(stderr, "{}\n", ckpt.error().to_string()), 1;
  for (const auto& c : *ckpt)
    fmt::print(
        "checkpoint of {:>4} pages (1 GiB replica): copy {:7.1f} us, undo log + copy "
        "{:7.1f} us\n",
        c.pages, c.copy_us, c.undo_copy_us);

  for (const auto& row : rows)
    json["resync"].push_back({{"mechanism", row.mechanism},
                              {"size_mib", row.size_mib},
                              {"divergence", row.divergence},
                              {"resync_s", row.resync_s},
                              {"decode_s", row.decode_s},
                              {"commit_ms", row.commit_ms},
                              {"rollback_ms", row.rollback_ms},
                              {"extra_tmpfs_peak_mib", row.extra_peak_mib},
                              {"verified", row.verified}});
  for (const auto& c : *ckpt)
    json["checkpoint_undo"].push_back(
        {{"pages", c.pages}, {"copy_us", c.copy_us}, {"undo_log_and_copy_us", c.undo_copy_us}});
  json["machine"] = "2 shared vCPUs, /dev/shm tmpfs; chunks of 16384 pages, uncompressed";
  std::ofstream(out) << json.dump(2) << "\n";
  fmt::print("wrote {}\n", out);
  bool all_ok = std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.verified; });
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace ftd

int main(int argc, char** argv) { return ftd::run(argc, argv); }
