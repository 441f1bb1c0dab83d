// What protection and migration will cost, predicted from measured inputs
// (docs/planning.md has the formulas and where each input comes from).
// Pure functions: no I/O, no clocks, so every formula is unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ftd::planning {

// One sampled checkpoint pause, split into what depends on the number of
// dirty pages (copying them out) and what does not (stop, finding the dirty
// pages -- an O(RAM) scan or a dirty-log read --, device state, cont).
struct PauseSample {
  double fixed_ms = 0;
  double copy_ms = 0;
  double pages = 0;
};

// Measured on the running, protected guest over a sample window (plan_sampler.h).
struct PlanInputs {
  uint64_t ram_bytes = 0;
  uint32_t page_size = 4096;
  double zero_page_fraction = 0;  // pages of RAM that are all zero (one read pass)
  double sample_s = 0;
  double sampled_epoch_ms = 0;      // the configured interval while sampling
  double checkpoints_per_sec = 0;   // achieved while sampling
  double dirty_pages_per_s = 0;     // pages captured per second of the window
  std::vector<PauseSample> pauses;  // one per checkpoint in the window
  double stop_ms = 0, find_ms = 0, copy_ms = 0, devstate_ms = 0, resume_ms = 0;  // means
  double devstate_bytes = 0;     // mean device state size
  double compression_ratio = 1;  // raw / encoded bytes in the window
  double ship_fixed_ms = 0;      // shipper time per checkpoint = fixed + per_page x pages
  double ship_ms_per_page = 0;
  double commit_p50_ms = 0, commit_p99_ms = 0;  // capture done -> ack: ship + RTT + apply
  double link_bytes_per_s = 0;                  // the replication/migration link
  std::string link_source;                      // "configured ..." or "measured ..."
  // The old host's turnaround after a planned migration (it becomes the
  // secondary and is digested + compared), measured on this host:
  double qemu_start_ms = 0;       // this VM's QEMU: launch -> QMP ready (the standby's twin)
  double digest_ms_per_page = 0;  // xxh3-128 of one guest page, timed over all of RAM
  double seed_ms_per_page = 0;    // copying a page into fresh tmpfs memory (the replica seed)
  bool needs_seed = false;        // the guest runs on memfd here: migrating copies its RAM out
};

struct ProtectionPrediction {
  double epoch_ms = 0;
  double pages_per_checkpoint = 0;
  double pause_p50_ms = 0, pause_p99_ms = 0;
  double checkpoints_per_sec = 0;
  double wire_bytes_per_s = 0;
  double added_latency_p50_ms = 0, added_latency_p99_ms = 0;
  std::string limited_by;  // epoch | pause | shipping
};

// ftd's planned migration from a pair in sync (docs/states.md).
struct FtdMigrationPrediction {
  double final_pages = 0;
  double downtime_ms = 0;      // final pause + ship/ack + handover + activation there
  double total_ms = 0;         // downtime + turnaround + re-protection back to this host
  double turnaround_ms = 0;    // this host becomes the secondary: seed + standby start
  double seed_ms = 0;          // (part of turnaround) RAM copied into the replica image
  double reprotect_ms = 0;     // retry wait, digest both RAMs, send what changed, first checkpoint
  double connect_wait_ms = 0;  // (part of reprotect) old host ready -> the stream reaches it
  double digest_ms = 0;        // (part of reprotect) the old host digests its replica image
  double compare_ms = 0;       // (part of reprotect) the new primary copies + digests + compares
  double changed_pages = 0;    // written since the handover: what the re-protection sends
  // The same migration from a guest already on a replica image (every
  // migration after the first): no seed.
  double total_without_seed_ms = 0;
};

// When the new primary's stream first reaches an old host that is ready
// `ready_ms` after the handover: ManagedVm::protect_back calls protect()
// (which waits 5 s for the peer, PrimaryVm::wait_for_peer) and sleeps
// 200 ms between calls; inside a call the replication client reconnects
// after 100 ms, doubling up to 1 s (ReplicationClient). Returns the first
// attempt at or after `ready_ms`.
double protect_back_connects_at(double ready_ms);

struct PrecopyParams {
  double bandwidth_bytes_per_s = 0;  // min(link, QEMU max-bandwidth)
  // The final stop-and-copy is not rate-limited (QEMU's ram_save_complete
  // sends without checking max-bandwidth): the link's own rate. 0: as above.
  double stop_copy_bytes_per_s = 0;
  double downtime_limit_ms = 300;  // QEMU's default downtime-limit
  int max_rounds = 30;             // give up (QEMU itself never does without auto-converge)
  // QEMU's RAM stream (migration/ram.c): a normal page is an 8-byte
  // address|flags header + the page; an all-zero page is the header + 1 byte.
  double page_header_bytes = 8;
  double zero_page_bytes = 9;
};

struct PrecopyPrediction {
  bool converges = false;
  int rounds = 0;  // bitmap syncs after the first pass (0: stopped inside round 0)
  double total_ms = 0, downtime_ms = 0;
  double bytes = 0;  // on the wire
  std::string why;   // how it ended
};

// Dirty pages one checkpoint carries when checkpoints are `interval_ms` apart:
// the measured rate times the interval, at most every page (linear: the
// sampled guest's unique-pages-per-interval curve is not measured).
double pages_per_interval(const PlanInputs& in, double interval_ms);

ProtectionPrediction predict_protection(const PlanInputs& in, double epoch_ms);
FtdMigrationPrediction predict_ftd_migration(const PlanInputs& in, double epoch_ms);
PrecopyPrediction predict_precopy(const PlanInputs& in, const PrecopyParams& params);

// p-th percentile (0..100, nearest rank) of `v`; 0 for none.
double percentile_of(std::vector<double> v, double p);

}  // namespace ftd::planning
