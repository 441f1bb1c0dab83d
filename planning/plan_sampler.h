// Measures ftctl plan's inputs on a guest being protected: waits `window`,
// then summarises the checkpoints the pipeline took meanwhile (pauses and
// their parts, dirty pages, shipping cost, acks) and reads RAM once to count
// all-zero pages (what QEMU's migration sends as a few bytes).
#pragma once

#include <chrono>
#include <span>

#include "checkpoint/pipeline.h"
#include "common/result.h"
#include "planning/cost_model.h"

namespace ftd::planning {

struct SampleOptions {
  std::chrono::milliseconds window{5000};
  double link_mbps = 0;  // > 0: use this link (Mbit/s); else the shipper's measured throughput
  // Known to the daemon, not sampled: how long this VM's QEMU took to start
  // (0: unknown, e.g. re-attached) and whether its RAM is memfd (a
  // migration then seeds the replica image from it).
  double qemu_start_ms = 0;
  bool needs_seed = false;
};

// The seed sample: enough pages to time the copy, little enough to be cheap.
inline constexpr size_t kSeedSampleBytes = 16u << 20;

// Needs protection running: refuses with kFailedPrecondition when the window
// saw fewer than 3 acknowledged checkpoints.
Result<PlanInputs> sample_plan_inputs(const CheckpointPipeline& pipeline,
                                      std::span<const std::byte> ram, const SampleOptions& options);

// The summary alone (the waiting and the RAM read left out): unit-tested.
Result<PlanInputs> summarise(const PlanSamples& samples, double window_s, double epoch_ms,
                             uint64_t ram_bytes, uint32_t page_size, const SampleOptions& options);

// Fraction of `ram`'s pages that are all zero.
double zero_page_fraction(std::span<const std::byte> ram, size_t page_size);

// ms per page of xxh3-128 digests over all of `ram` (what both sides of a
// differential sync pay per page).
double digest_ms_per_page(std::span<const std::byte> ram, size_t page_size);

// ms per page of copying up to `max_bytes` of `ram` into fresh shared memory
// (what seeding the replica image pays per page).
Result<double> seed_ms_per_page(std::span<const std::byte> ram, size_t page_size, size_t max_bytes);

}  // namespace ftd::planning
