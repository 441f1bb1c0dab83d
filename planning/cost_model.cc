#include "planning/cost_model.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace ftd::planning {
namespace {

double ram_pages(const PlanInputs& in) {
  return static_cast<double>(in.ram_bytes) / std::max<double>(1, in.page_size);
}

double mean_pages(const PlanInputs& in) {
  if (in.pauses.empty()) return 0;
  double sum = 0;
  for (const auto& p : in.pauses) sum += p.pages;
  return sum / static_cast<double>(in.pauses.size());
}

// Copy cost per dirty page: all copy time over all pages copied.
double copy_ms_per_page(const PlanInputs& in) {
  double ms = 0, pages = 0;
  for (const auto& p : in.pauses) {
    ms += p.copy_ms;
    pages += p.pages;
  }
  return pages > 0 ? ms / pages : 0;
}

// Each sampled pause as it would be with `pages_scale` times its dirty pages.
std::vector<double> scaled_pauses(const PlanInputs& in, double pages_scale) {
  const double per_page = copy_ms_per_page(in);
  std::vector<double> out;
  out.reserve(in.pauses.size());
  for (const auto& p : in.pauses) out.push_back(p.fixed_ms + per_page * p.pages * pages_scale);
  return out;
}

// Ship + RTT + apply is measured as one number (commit); the part that does
// not depend on the checkpoint's size is what the ship time does not explain.
double rtt_apply_ms(const PlanInputs& in) {
  const double ship = in.ship_fixed_ms + in.ship_ms_per_page * mean_pages(in);
  return std::max(0.0, in.commit_p50_ms - ship);
}

}  // namespace

double percentile_of(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

double protect_back_connects_at(double ready_ms) {
  constexpr double kWaitForPeerMs = 5000, kBetweenCallsMs = 200;
  constexpr double kFirstBackoffMs = 100, kMaxBackoffMs = 1000;
  for (double call = 0;; call += kWaitForPeerMs + kBetweenCallsMs) {
    double at = call, backoff = kFirstBackoffMs;
    while (at < call + kWaitForPeerMs) {
      if (at >= ready_ms) return at;
      at += backoff;
      backoff = std::min(backoff * 2, kMaxBackoffMs);
    }
  }
}

double pages_per_interval(const PlanInputs& in, double interval_ms) {
  return std::min(ram_pages(in), in.dirty_pages_per_s * interval_ms / 1000.0);
}

ProtectionPrediction predict_protection(const PlanInputs& in, double epoch_ms) {
  ProtectionPrediction out;
  out.epoch_ms = epoch_ms;
  const double measured_pages = mean_pages(in);
  // The loop starts a capture epoch_ms after the previous one started, or
  // when that step ends if it took longer (a long pause; back-pressure once
  // max_inflight checkpoints wait for the shipper): each interval is
  // max(epoch, that step), so a heavy pause tail lowers the rate even when
  // the mean pause is short. Pages per checkpoint follow the mean interval,
  // which depends on them: a few fixed-point steps settle it.
  double interval = epoch_ms, pages = 0, ship_ms = 0;
  std::vector<double> pauses;
  for (int i = 0; i < 8; ++i) {
    pages = pages_per_interval(in, interval);
    const double scale = measured_pages > 0 ? pages / measured_pages : 0;
    pauses = scaled_pauses(in, scale);
    ship_ms = in.ship_fixed_ms + in.ship_ms_per_page * pages;
    double sum = 0;
    for (double p : pauses) sum += std::max({epoch_ms, p, ship_ms});
    interval =
        pauses.empty() ? std::max(epoch_ms, ship_ms) : sum / static_cast<double>(pauses.size());
  }
  const double pause_mean = pauses.empty() ? 0
                                           : std::accumulate(pauses.begin(), pauses.end(), 0.0) /
                                                 static_cast<double>(pauses.size());
  out.limited_by = ship_ms >= std::max(epoch_ms, pause_mean) ? "shipping"
                   : interval > epoch_ms * 1.05              ? "pause"
                                                             : "epoch";
  out.pages_per_checkpoint = pages;
  out.pause_p50_ms = percentile_of(pauses, 50);
  out.pause_p99_ms = percentile_of(pauses, 99);
  out.checkpoints_per_sec = interval > 0 ? 1000.0 / interval : 0;
  const double raw_per_ckpt = pages * in.page_size + in.devstate_bytes;
  out.wire_bytes_per_s =
      out.checkpoints_per_sec * raw_per_ckpt / std::max(1e-9, in.compression_ratio);
  // Output produced at a uniformly random moment of an epoch waits for the
  // epoch's end, the pause, then ship + RTT + apply of that checkpoint.
  const double commit_shift = in.ship_ms_per_page * (pages - measured_pages);
  out.added_latency_p50_ms =
      interval / 2 + out.pause_p50_ms + std::max(0.0, in.commit_p50_ms + commit_shift);
  out.added_latency_p99_ms =
      interval + out.pause_p99_ms + std::max(0.0, in.commit_p99_ms + commit_shift);
  return out;
}

FtdMigrationPrediction predict_ftd_migration(const PlanInputs& in, double epoch_ms) {
  FtdMigrationPrediction out;
  // The loop stops at a random moment of an epoch: on average half an
  // epoch's pages are dirty when the final checkpoint is taken.
  out.final_pages = pages_per_interval(in, epoch_ms / 2);
  const double fixed = percentile_of(
      [&] {
        std::vector<double> f;
        for (const auto& p : in.pauses) f.push_back(p.fixed_ms);
        return f;
      }(),
      50);
  const double pause = fixed + copy_ms_per_page(in) * out.final_pages;
  const double ack = in.ship_fixed_ms + in.ship_ms_per_page * out.final_pages + rtt_apply_ms(in);
  // The handover is one more request/answer; activation loads the device
  // state (as long as saving it took here) and runs `cont`.
  const double handover = rtt_apply_ms(in);
  const double activation = in.devstate_ms + in.resume_ms;
  out.downtime_ms = pause + ack + handover + activation;
  // The old host's turnaround (docs/planning.md): a guest launched here on
  // memfd is copied into the replica image first; then its standby QEMU
  // starts, as this VM's QEMU did.
  const double pages = ram_pages(in);
  out.seed_ms = in.needs_seed ? pages * in.seed_ms_per_page : 0;
  out.turnaround_ms = out.seed_ms + in.qemu_start_ms;
  // Differential re-protection back: the new primary's first connection
  // attempt after the old host is ready, the old host digests its image, the new
  // primary copies + digests each page and compares, the pages the guest
  // wrote since the handover cross, then the first checkpoint is acked.
  out.digest_ms = pages * in.digest_ms_per_page;
  out.compare_ms = pages * (in.digest_ms_per_page + copy_ms_per_page(in));
  out.connect_wait_ms = protect_back_connects_at(out.turnaround_ms) - out.turnaround_ms;
  const double before_compare = out.connect_wait_ms + out.digest_ms + out.compare_ms;
  out.changed_pages = pages_per_interval(in, out.turnaround_ms + before_compare);
  const double send_ms =
      in.ship_fixed_ms + in.ship_ms_per_page * out.changed_pages + rtt_apply_ms(in);
  const double first_checkpoint = epoch_ms + fixed + in.commit_p50_ms;
  out.reprotect_ms = before_compare + send_ms + first_checkpoint;
  out.total_ms = out.downtime_ms + out.turnaround_ms + out.reprotect_ms;
  // Without the seed: the old host is ready sooner, the reconnect falls
  // elsewhere in the schedule, fewer pages change before the compare.
  const double wait_unseeded = protect_back_connects_at(in.qemu_start_ms) - in.qemu_start_ms;
  const double before_unseeded = wait_unseeded + out.digest_ms + out.compare_ms;
  const double changed_unseeded = pages_per_interval(in, in.qemu_start_ms + before_unseeded);
  out.total_without_seed_ms = out.downtime_ms + in.qemu_start_ms + before_unseeded +
                              in.ship_fixed_ms + in.ship_ms_per_page * changed_unseeded +
                              rtt_apply_ms(in) + first_checkpoint;
  return out;
}

PrecopyPrediction predict_precopy(const PlanInputs& in, const PrecopyParams& params) {
  PrecopyPrediction out;
  const double B = params.bandwidth_bytes_per_s;
  const double P = in.page_size;
  const double D = in.dirty_pages_per_s;
  const double all = ram_pages(in);
  if (B <= 0) {
    out.why = "no bandwidth";
    return out;
  }
  const double threshold = B * params.downtime_limit_ms / 1000.0;  // bytes QEMU may leave
  const double full = P + params.page_header_bytes;
  // QEMU's stop-and-copy also stops the guest and saves the device state.
  const double fixed_ms = in.stop_ms + in.devstate_ms;
  double to_send = all;  // pages of the current round
  double wire_per_page = (1 - in.zero_page_fraction) * full +
                         in.zero_page_fraction * params.zero_page_bytes;  // round 0 only
  double elapsed_s = 0;
  for (int round = 0; round <= params.max_rounds; ++round) {
    const double rate = B / wire_per_page;  // pages/s this round
    // Pending (as QEMU counts it: dirty pages x page size) t seconds into the
    // round: what is left of it plus what the guest dirtied meanwhile.
    // QEMU completes as soon as that fits the downtime limit at bandwidth B.
    const double round_s = to_send / rate;
    double stop_at = -1;
    if (to_send * P <= threshold) {
      stop_at = 0;
    } else if (rate > D) {
      const double t = (to_send * P - threshold) / ((rate - D) * P);
      if (t <= round_s) stop_at = t;
    }
    if (stop_at >= 0) {
      const double left = to_send - rate * stop_at;
      const double dirtied = std::min(all, D * stop_at);
      const double final_bytes = left * wire_per_page + dirtied * full;
      out.converges = true;
      out.rounds = round;
      const double stop_copy = params.stop_copy_bytes_per_s > 0 ? params.stop_copy_bytes_per_s : B;
      out.downtime_ms = final_bytes / stop_copy * 1000.0 + fixed_ms;
      out.bytes += rate * stop_at * wire_per_page + final_bytes;
      out.total_ms = (elapsed_s + stop_at) * 1000.0 + out.downtime_ms;
      out.why = fmt::format("remaining {:.1f} MiB fits {:.0f} ms at {:.1f} MiB/s after {} round(s)",
                            (left + dirtied) * P / 1048576.0, params.downtime_limit_ms,
                            B / 1048576.0, round);
      return out;
    }
    elapsed_s += round_s;
    out.bytes += to_send * wire_per_page;
    to_send = std::min(all, D * round_s);
    wire_per_page = full;
  }
  out.rounds = params.max_rounds;
  out.total_ms = elapsed_s * 1000.0;
  out.why =
      D * full >= B
          ? fmt::format("does not converge: dirty rate {:.1f} MiB/s >= bandwidth {:.1f} MiB/s",
                        D * full / 1048576.0, B / 1048576.0)
          : fmt::format("not converged after {} rounds", params.max_rounds);
  return out;
}

}  // namespace ftd::planning
