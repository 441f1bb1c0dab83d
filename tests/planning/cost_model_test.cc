// The cost model's formulas against closed forms and hand computations.
#include "planning/cost_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ftd::planning {
namespace {

constexpr double kMiB = 1048576.0;

// 128 MiB, no zero pages, QEMU's stream headers off: the textbook model.
PlanInputs textbook(double dirty_pages_per_s) {
  PlanInputs in;
  in.ram_bytes = 128 << 20;
  in.dirty_pages_per_s = dirty_pages_per_s;
  return in;
}

PrecopyParams link(double mib_per_s, double limit_ms = 300) {
  return {.bandwidth_bytes_per_s = mib_per_s * kMiB,
          .downtime_limit_ms = limit_ms,
          .page_header_bytes = 0,
          .zero_page_bytes = 0};
}

TEST(Precopy, IdleGuestStopsWhenTheRestFitsTheLimit) {
  // D = 0: send until B x L bytes are left, send those stopped.
  const auto p = predict_precopy(textbook(0), link(128));
  ASSERT_TRUE(p.converges);
  EXPECT_EQ(p.rounds, 0);
  EXPECT_NEAR(p.downtime_ms, 300, 1e-6);
  EXPECT_NEAR(p.total_ms, 1000.0, 1e-6);  // 128 MiB at 128 MiB/s
  EXPECT_NEAR(p.bytes, 128 * kMiB, 1);
}

TEST(Precopy, ConstantDirtyRateClosedForm) {
  // Converging inside round 0: t* = (V P - B L) / (B - D P), downtime = L,
  // bytes = B t* + B L.
  const double D = 2560;  // 10 MiB/s
  const double B = 128 * kMiB, L = 0.3, VP = 128 * kMiB;
  const auto p = predict_precopy(textbook(D), link(128));
  const double t = (VP - B * L) / (B - D * 4096);
  ASSERT_TRUE(p.converges);
  EXPECT_EQ(p.rounds, 0);
  EXPECT_NEAR(p.downtime_ms, 300, 1e-6);
  EXPECT_NEAR(p.total_ms, (t + L) * 1000, 1e-6);
  EXPECT_NEAR(p.bytes, B * t + B * L, 1);
}

TEST(Precopy, FastDirtierNeedsMoreRounds) {
  // Rounds shrink geometrically (V_i = V_0 r^i, r = D P / B) until
  // V_i P x D P <= B^2 L, i.e. the stop point falls inside round i.
  const double D = 20000;  // 78 MiB/s against 128 MiB/s, 30 ms limit
  const double B = 128 * kMiB, L = 0.03, P = 4096, V0 = 32768, r = D * P / B;
  const auto p = predict_precopy(textbook(D), link(128, 30));
  const int rounds =
      static_cast<int>(std::ceil(std::log(B * B * L / (D * P * P * V0)) / std::log(r)));
  double elapsed = 0, v = V0;
  for (int i = 0; i < rounds; ++i) {
    elapsed += v * P / B;
    v *= r;
  }
  const double t = (v * P - B * L) / (B - D * P);
  ASSERT_TRUE(p.converges);
  EXPECT_EQ(p.rounds, rounds);
  EXPECT_EQ(rounds, 7);
  EXPECT_NEAR(p.total_ms, (elapsed + t + L) * 1000, 1e-6);
  EXPECT_NEAR(p.downtime_ms, 30, 1e-6);
}

TEST(Precopy, DirtyRateAtOrAboveBandwidthNeverConverges) {
  const auto p = predict_precopy(textbook(32768), link(128));  // exactly 128 MiB/s
  EXPECT_FALSE(p.converges);
  EXPECT_NE(p.why.find("does not converge"), std::string::npos) << p.why;
  EXPECT_FALSE(predict_precopy(textbook(100000), link(128)).converges);
}

TEST(Precopy, FastLinkStopsAtOnce) {
  // All of RAM fits the limit: stop-and-copy at t = 0 (QEMU unthrottled).
  const auto p = predict_precopy(textbook(1000), link(1024));
  ASSERT_TRUE(p.converges);
  EXPECT_EQ(p.rounds, 0);
  EXPECT_NEAR(p.downtime_ms, 125, 1e-6);
  EXPECT_NEAR(p.total_ms, 125, 1e-6);
}

TEST(Precopy, MonotoneInDirtyRateAndZeroPagesHelp) {
  double last_total = 0, last_bytes = 0;
  for (double d : {0.0, 1000.0, 5000.0, 10000.0, 20000.0, 30000.0}) {
    const auto p = predict_precopy(textbook(d), link(128));
    ASSERT_TRUE(p.converges) << d;
    EXPECT_GE(p.total_ms, last_total) << d;
    EXPECT_GE(p.bytes, last_bytes) << d;
    last_total = p.total_ms;
    last_bytes = p.bytes;
  }
  PlanInputs sparse = textbook(1000);
  sparse.zero_page_fraction = 0.8;
  PrecopyParams q = link(128);
  q.zero_page_bytes = 9;
  EXPECT_LT(predict_precopy(sparse, q).total_ms, predict_precopy(textbook(1000), q).total_ms);
}

TEST(Precopy, StopAndCopyRunsAtTheUnthrottledRate) {
  // Throttled to 128 MiB/s while iterating, 1 GiB/s once stopped: the
  // 38.4 MiB the limit allows take 37.5 ms, not 300.
  PrecopyParams q = link(128);
  q.stop_copy_bytes_per_s = 1024 * kMiB;
  const auto p = predict_precopy(textbook(0), q);
  EXPECT_NEAR(p.downtime_ms, 300.0 / 8, 1e-6);
  EXPECT_NEAR(p.total_ms, (128.0 - 38.4) / 128 * 1000 + 37.5, 1e-6);
}

TEST(Precopy, DeviceStateAddsToDowntime) {
  PlanInputs in = textbook(0);
  in.stop_ms = 1;
  in.devstate_ms = 4;
  EXPECT_NEAR(predict_precopy(in, link(128)).downtime_ms, 305, 1e-6);
}

// A guest sampled at 50 ms epochs: 100 pauses of 5 ms fixed + 0.01 ms/page x 200 pages.
PlanInputs sampled() {
  PlanInputs in;
  in.ram_bytes = 128 << 20;
  in.sampled_epoch_ms = 50;
  in.checkpoints_per_sec = 20;
  in.dirty_pages_per_s = 4000;  // 200 per checkpoint
  for (int i = 0; i < 100; ++i)
    in.pauses.push_back({.fixed_ms = 5.0 + (i >= 98 ? 10 : 0), .copy_ms = 2.0, .pages = 200});
  in.stop_ms = 1;
  in.find_ms = 2;
  in.devstate_ms = 1.5;
  in.resume_ms = 0.5;
  in.devstate_bytes = 40000;
  in.compression_ratio = 4;
  in.ship_fixed_ms = 1;
  in.ship_ms_per_page = 0.01;
  in.commit_p50_ms = 4;
  in.commit_p99_ms = 8;
  return in;
}

TEST(Protection, AtTheSampledEpochReproducesTheSample) {
  const auto p = predict_protection(sampled(), 50);
  EXPECT_NEAR(p.pages_per_checkpoint, 200, 1e-9);
  EXPECT_NEAR(p.pause_p50_ms, 7, 1e-9);
  EXPECT_NEAR(p.pause_p99_ms, 17, 1e-9);
  EXPECT_NEAR(p.checkpoints_per_sec, 20, 1e-9);
  EXPECT_EQ(p.limited_by, "epoch");
  EXPECT_NEAR(p.wire_bytes_per_s, 20 * (200 * 4096 + 40000) / 4.0, 1e-6);
  EXPECT_NEAR(p.added_latency_p50_ms, 25 + 7 + 4, 1e-9);
  EXPECT_NEAR(p.added_latency_p99_ms, 50 + 17 + 8, 1e-9);
}

TEST(Protection, ShorterEpochsCopyFewerPagesMoreOften) {
  const auto p = predict_protection(sampled(), 25);
  EXPECT_NEAR(p.pages_per_checkpoint, 100, 1e-9);
  EXPECT_NEAR(p.pause_p50_ms, 6, 1e-9);  // 5 + 1 ms of copying
  EXPECT_NEAR(p.checkpoints_per_sec, 40, 1e-9);
  // The commit latency drops by the shipping of 100 fewer pages.
  EXPECT_NEAR(p.added_latency_p50_ms, 12.5 + 6 + 3, 1e-9);
  double last_pause = 0, last_rate = 1e9;
  for (double e : {5.0, 10.0, 20.0, 50.0, 100.0, 200.0}) {
    const auto q = predict_protection(sampled(), e);
    EXPECT_GE(q.pause_p50_ms, last_pause) << e;
    EXPECT_LE(q.checkpoints_per_sec, last_rate) << e;
    EXPECT_LE(q.checkpoints_per_sec, 1000 / e + 1e-9) << e;
    last_pause = q.pause_p50_ms;
    last_rate = q.checkpoints_per_sec;
  }
}

TEST(Protection, PausesLongerThanTheEpochLimitTheRate) {
  const auto p = predict_protection(sampled(), 2);  // fixed part alone is 5 ms
  EXPECT_EQ(p.limited_by, "pause");
  EXPECT_LT(p.checkpoints_per_sec, 500);
  PlanInputs slow_ship = sampled();
  slow_ship.ship_fixed_ms = 80;
  const auto q = predict_protection(slow_ship, 50);
  EXPECT_EQ(q.limited_by, "shipping");
  EXPECT_LT(q.checkpoints_per_sec, 1000 / 80.0 + 1e-9);
}

TEST(FtdMigration, DowntimeIsFinalPauseAckHandoverActivation) {
  const auto m = predict_ftd_migration(sampled(), 50);
  // Half an epoch of pages (100): pause 5 + 1; ack = ship 1 + 1 + rtt/apply
  // (commit 4 - ship of the mean 200 pages 3 = 1); handover 1; activation 2.
  EXPECT_NEAR(m.final_pages, 100, 1e-9);
  EXPECT_NEAR(m.downtime_ms, 6 + 3 + 1 + 2, 1e-9);
  EXPECT_GT(m.total_ms, m.downtime_ms + 50);
}

TEST(FtdMigration, TotalAddsTheOldHostsTurnaroundAndTheDifferentialSync) {
  PlanInputs in = sampled();
  in.qemu_start_ms = 700;
  in.digest_ms_per_page = 0.002;  // 32768 pages: 65.536 ms per pass
  in.seed_ms_per_page = 0.05;     // 1638.4 ms for 128 MiB
  in.needs_seed = true;
  const auto m = predict_ftd_migration(in, 50);
  const double pages = 32768;
  EXPECT_NEAR(m.seed_ms, pages * 0.05, 1e-6);
  EXPECT_NEAR(m.turnaround_ms, pages * 0.05 + 700, 1e-6);
  EXPECT_NEAR(m.digest_ms, pages * 0.002, 1e-6);
  // Compare: copy (2 ms / 200 pages) + digest per page.
  EXPECT_NEAR(m.compare_ms, pages * (0.01 + 0.002), 1e-6);
  // Pages written from the handover until the compare: 4000/s over the
  // turnaround, half a retry interval, the digest and the compare.
  // Ready at 2338.4 ms: the reconnects of the first protect() fall at 0,
  // 100, 300, 700, 1500, 2500 ms, so the stream arrives at 2500.
  EXPECT_NEAR(m.connect_wait_ms, 2500 - m.turnaround_ms, 1e-6);
  const double before_compare = m.connect_wait_ms + m.digest_ms + m.compare_ms;
  EXPECT_NEAR(m.changed_pages, 4000 * (m.turnaround_ms + before_compare) / 1000, 1e-6);
  // Send them (ship 1 + 0.01/page + rtt/apply 1), then the first checkpoint
  // (epoch 50 + fixed pause 5 + commit 4).
  const double send = 1 + 0.01 * m.changed_pages + 1;
  EXPECT_NEAR(m.reprotect_ms, before_compare + send + 50 + 5 + 4, 1e-6);
  EXPECT_NEAR(m.total_ms, m.downtime_ms + m.turnaround_ms + m.reprotect_ms, 1e-9);
  // Without the seed: ready at 700 ms, connected at 700 (an attempt is due
  // then), fewer pages written before the compare.
  const double before_unseeded = 0 + m.digest_ms + m.compare_ms;
  const double changed_unseeded = 4000 * (700 + before_unseeded) / 1000;
  EXPECT_NEAR(m.total_without_seed_ms,
              m.downtime_ms + 700 + before_unseeded + 1 + 0.01 * changed_unseeded + 1 + 59, 1e-6);
  in.needs_seed = false;
  const auto unseeded = predict_ftd_migration(in, 50);
  EXPECT_EQ(unseeded.seed_ms, 0);
  EXPECT_NEAR(unseeded.total_ms, m.total_without_seed_ms, 1e-6);
}

TEST(FtdMigration, ProtectBackReconnectsOnItsBackoffSchedule) {
  EXPECT_EQ(protect_back_connects_at(0), 0);
  EXPECT_EQ(protect_back_connects_at(50), 100);
  EXPECT_EQ(protect_back_connects_at(301), 700);
  EXPECT_EQ(protect_back_connects_at(1600), 2500);
  EXPECT_EQ(protect_back_connects_at(4600), 5200);  // the next protect() after 5 s + 200 ms
  EXPECT_EQ(protect_back_connects_at(5250), 5300);
}

TEST(PagesPerInterval, LinearThenCappedAtRam) {
  PlanInputs in = textbook(1000);
  EXPECT_NEAR(pages_per_interval(in, 50), 50, 1e-9);
  EXPECT_NEAR(pages_per_interval(in, 1e9), 32768, 1e-9);
}

}  // namespace
}  // namespace ftd::planning
