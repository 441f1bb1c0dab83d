// The sampler's summary of per-checkpoint samples (the waiting left out).
#include "planning/plan_sampler.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftd::planning {
namespace {

PlanSamples samples(int n) {
  PlanSamples s;
  for (int i = 0; i < n; ++i) {
    const uint32_t pages = 100 + 100 * (i % 3);
    s.pauses.push_back({.stop_us = 1000,
                        .dirty_us = 2000,
                        .copy_us = pages * 10,
                        .devstate_us = 1500,
                        .resume_us = 500,
                        .total_us = 5000 + pages * 10,
                        .dirty_pages = pages,
                        .devstate_bytes = 8192});
    // Shipping costs 1 ms + 0.02 ms per page; 4:1 compression.
    const uint64_t raw = pages * 4096ull + 8192;
    s.ships.push_back({.raw_bytes = raw, .encoded_bytes = raw / 4, .ship_us = 1000 + pages * 20});
    s.commit_us.push_back(3000 + i);
  }
  return s;
}

TEST(PlanSampler, RefusesWithoutCheckpoints) {
  auto r = summarise(samples(2), 5, 50, 128 << 20, 4096, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("protect the VM first"), std::string::npos);
}

TEST(PlanSampler, SummarisesPausesShippingAndAcks) {
  auto r = summarise(samples(99), 5, 50, 128 << 20, 4096, {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->pauses.size(), 99u);
  EXPECT_NEAR(r->checkpoints_per_sec, 99 / 5.0, 1e-9);
  EXPECT_NEAR(r->dirty_pages_per_s, 33 * (100 + 200 + 300) / 5.0, 1e-9);
  EXPECT_NEAR(r->pauses[0].fixed_ms, 5, 1e-9);
  EXPECT_NEAR(r->pauses[0].copy_ms, 1, 1e-9);
  EXPECT_NEAR(r->stop_ms, 1, 1e-9);
  EXPECT_NEAR(r->devstate_bytes, 8192, 1e-9);
  EXPECT_NEAR(r->ship_fixed_ms, 1, 1e-6);
  EXPECT_NEAR(r->ship_ms_per_page, 0.02, 1e-9);
  EXPECT_NEAR(r->compression_ratio, 4, 1e-3);
  EXPECT_NEAR(r->commit_p50_ms, 3.049, 1e-9);
  EXPECT_NE(r->link_source.find("measured"), std::string::npos);
  auto c = summarise(samples(10), 5, 50, 128 << 20, 4096, {.link_mbps = 1000});
  ASSERT_TRUE(c);
  EXPECT_NEAR(c->link_bytes_per_s, 125e6, 1e-3);
  EXPECT_NE(c->link_source.find("configured"), std::string::npos);
}

TEST(PlanSampler, CountsZeroPages) {
  std::vector<std::byte> ram(8 * 4096);
  ram[3 * 4096 + 4095] = std::byte{1};
  ram[5 * 4096] = std::byte{7};
  EXPECT_NEAR(zero_page_fraction(ram, 4096), 6.0 / 8, 1e-12);
}

TEST(PlanSampler, TimesDigestAndSeedPerPage) {
  std::vector<std::byte> ram(4096 * 4096, std::byte{0x5a});  // 16 MiB
  const double digest = digest_ms_per_page(ram, 4096);
  EXPECT_GT(digest, 0);
  EXPECT_LT(digest, 5);  // xxh3 of 4 KiB is ~µs; generous for a loaded host
  // Only max_bytes are copied: a 1 MiB sample and the whole 16 MiB both give
  // a per-page cost of the same kind (positive, well under a ms a page).
  auto small = seed_ms_per_page(ram, 4096, 1 << 20);
  ASSERT_TRUE(small) << small.error().to_string();
  EXPECT_GT(*small, 0);
  EXPECT_LT(*small, 5);
  auto none = seed_ms_per_page({}, 4096, 1 << 20);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0);
}

}  // namespace
}  // namespace ftd::planning
