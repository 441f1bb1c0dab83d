#include "planning/plan_report.h"

#include <fmt/format.h>

namespace ftd::planning {
namespace {

double epoch_of(const PlanInputs& in, const PlanQuestion& q) {
  return q.epoch_ms > 0 ? q.epoch_ms : in.sampled_epoch_ms;
}

PrecopyParams precopy_params(const PlanInputs& in, const PlanQuestion& q) {
  PrecopyParams p = q.precopy;
  if (p.bandwidth_bytes_per_s <= 0) {
    p.bandwidth_bytes_per_s = in.link_bytes_per_s;
    if (q.qemu_max_bandwidth_bytes_per_s > 0 &&
        (p.bandwidth_bytes_per_s <= 0 ||
         q.qemu_max_bandwidth_bytes_per_s < p.bandwidth_bytes_per_s))
      p.bandwidth_bytes_per_s = q.qemu_max_bandwidth_bytes_per_s;
  }
  if (p.stop_copy_bytes_per_s <= 0) p.stop_copy_bytes_per_s = in.link_bytes_per_s;
  return p;
}

double mib(double bytes) { return bytes / 1048576.0; }

// Every prediction for one question.
struct Predictions {
  double epoch_ms;
  ProtectionPrediction pro;
  FtdMigrationPrediction mig;
  PrecopyParams params;
  PrecopyPrediction pre;
};

Predictions predict(const PlanInputs& in, const PlanQuestion& q) {
  const double epoch = epoch_of(in, q);
  const PrecopyParams params = precopy_params(in, q);
  return {epoch, predict_protection(in, epoch), predict_ftd_migration(in, epoch), params,
          predict_precopy(in, params)};
}

}  // namespace

nlohmann::json plan_json(const PlanInputs& in, const PlanQuestion& q) {
  const auto [epoch, pro, mig, params, pre] = predict(in, q);
  return {{"inputs",
           {{"ram_bytes", in.ram_bytes},
            {"zero_page_fraction", in.zero_page_fraction},
            {"sample_s", in.sample_s},
            {"sampled_epoch_ms", in.sampled_epoch_ms},
            {"checkpoints_per_sec", in.checkpoints_per_sec},
            {"dirty_pages_per_s", in.dirty_pages_per_s},
            {"pause_parts_mean_ms",
             {{"stop", in.stop_ms},
              {"find_dirty", in.find_ms},
              {"copy", in.copy_ms},
              {"devstate", in.devstate_ms},
              {"cont", in.resume_ms}}},
            {"devstate_bytes", in.devstate_bytes},
            {"compression_ratio", in.compression_ratio},
            {"ship_fixed_ms", in.ship_fixed_ms},
            {"ship_ms_per_page", in.ship_ms_per_page},
            {"commit_p50_ms", in.commit_p50_ms},
            {"commit_p99_ms", in.commit_p99_ms},
            {"link_bytes_per_s", in.link_bytes_per_s},
            {"link_source", in.link_source},
            {"qemu_start_ms", in.qemu_start_ms},
            {"digest_ms_per_page", in.digest_ms_per_page},
            {"seed_ms_per_page", in.seed_ms_per_page},
            {"needs_seed", in.needs_seed}}},
          {"protection",
           {{"epoch_ms", pro.epoch_ms},
            {"pages_per_checkpoint", pro.pages_per_checkpoint},
            {"pause_p50_ms", pro.pause_p50_ms},
            {"pause_p99_ms", pro.pause_p99_ms},
            {"checkpoints_per_sec", pro.checkpoints_per_sec},
            {"wire_bytes_per_s", pro.wire_bytes_per_s},
            {"added_latency_p50_ms", pro.added_latency_p50_ms},
            {"added_latency_p99_ms", pro.added_latency_p99_ms},
            {"limited_by", pro.limited_by}}},
          {"ftd_migration",
           {{"final_pages", mig.final_pages},
            {"downtime_ms", mig.downtime_ms},
            {"turnaround_ms", mig.turnaround_ms},
            {"seed_ms", mig.seed_ms},
            {"reprotect_ms", mig.reprotect_ms},
            {"connect_wait_ms", mig.connect_wait_ms},
            {"digest_ms", mig.digest_ms},
            {"compare_ms", mig.compare_ms},
            {"changed_pages", mig.changed_pages},
            {"total_ms", mig.total_ms},
            {"total_without_seed_ms", mig.total_without_seed_ms}}},
          {"qemu_precopy",
           {{"bandwidth_bytes_per_s", params.bandwidth_bytes_per_s},
            {"downtime_limit_ms", params.downtime_limit_ms},
            {"converges", pre.converges},
            {"rounds", pre.rounds},
            {"downtime_ms", pre.downtime_ms},
            {"total_ms", pre.total_ms},
            {"bytes", pre.bytes},
            {"why", pre.why}}}};
}

std::string plan_table(const PlanInputs& in, const PlanQuestion& q) {
  const auto [epoch, pro, mig, params, pre] = predict(in, q);
  std::string t;
  t += fmt::format("measured over {:.1f} s at epoch {:.0f} ms\n", in.sample_s, in.sampled_epoch_ms);
  t += fmt::format("  RAM                 {:.0f} MiB ({:.0f} % zero pages)\n", mib(in.ram_bytes),
                   100 * in.zero_page_fraction);
  t += fmt::format("  dirty pages         {:.0f} pages/s ({:.1f} MiB/s)\n", in.dirty_pages_per_s,
                   mib(in.dirty_pages_per_s * in.page_size));
  t += fmt::format(
      "  pause parts (mean)  stop {:.2f} / find dirty {:.2f} / copy {:.2f} / "
      "devstate {:.2f} / cont {:.2f} ms\n",
      in.stop_ms, in.find_ms, in.copy_ms, in.devstate_ms, in.resume_ms);
  t += fmt::format("  shipping            {:.2f} ms + {:.4f} ms/page, compression {:.1f}x\n",
                   in.ship_fixed_ms, in.ship_ms_per_page, in.compression_ratio);
  t += fmt::format("  capture -> ack      p50 {:.2f} / p99 {:.2f} ms\n", in.commit_p50_ms,
                   in.commit_p99_ms);
  t += fmt::format("  link                {:.1f} MiB/s ({})\n", mib(in.link_bytes_per_s),
                   in.link_source);
  t += fmt::format(
      "  turnaround parts    QEMU start {:.0f} ms / digest {:.4f} ms/page / seed {:.4f} "
      "ms/page ({})\n",
      in.qemu_start_ms, in.digest_ms_per_page, in.seed_ms_per_page,
      in.needs_seed ? "RAM on memfd: seeded" : "RAM on a replica image: no seed");
  t += fmt::format("protection at epoch {:.0f} ms (limited by {})\n", epoch, pro.limited_by);
  t += fmt::format("  pause               p50 {:.1f} / p99 {:.1f} ms ({:.0f} pages/checkpoint)\n",
                   pro.pause_p50_ms, pro.pause_p99_ms, pro.pages_per_checkpoint);
  t += fmt::format("  checkpoints/s       {:.1f}\n", pro.checkpoints_per_sec);
  t += fmt::format("  wire                {:.2f} MiB/s\n", mib(pro.wire_bytes_per_s));
  t += fmt::format("  added latency       p50 {:.1f} / p99 {:.1f} ms\n", pro.added_latency_p50_ms,
                   pro.added_latency_p99_ms);
  t += "ftd planned migration (pair in sync)\n";
  t += fmt::format("  downtime            {:.1f} ms ({:.0f} pages in the final checkpoint)\n",
                   mig.downtime_ms, mig.final_pages);
  t += fmt::format(
      "  total               {:.1f} ms (turnaround {:.1f} ms incl. seed {:.1f} ms, re-protect "
      "back {:.1f} ms, {:.0f} pages)\n",
      mig.total_ms, mig.turnaround_ms, mig.seed_ms, mig.reprotect_ms, mig.changed_pages);
  t += fmt::format("  total, no seed      {:.1f} ms (a guest already on a replica image)\n",
                   mig.total_without_seed_ms);
  t += fmt::format("QEMU pre-copy at {:.1f} MiB/s, downtime-limit {:.0f} ms\n",
                   mib(params.bandwidth_bytes_per_s), params.downtime_limit_ms);
  if (pre.converges) {
    t += fmt::format("  downtime            {:.1f} ms\n", pre.downtime_ms);
    t += fmt::format("  total               {:.1f} ms, {:.1f} MiB sent\n", pre.total_ms,
                     mib(pre.bytes));
  }
  t += fmt::format("  {}\n", pre.why);
  return t;
}

}  // namespace ftd::planning
