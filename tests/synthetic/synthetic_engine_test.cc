#include "synthetic/synthetic_engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "checkpoint/page_scanner.h"
#include "common/hash.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;
using Config = SyntheticEngine::Config;

Config small_config() {
  Config c;
  c.memory_bytes = 8 << 20;
  c.dirty_pages_per_sec = 200'000;
  c.locality = 0.5;
  c.seed = 42;
  c.bytes_per_write = 256;
  return c;
}

// Waits (bounded) until the writer has done at least `n` writes.
void wait_for_writes(const SyntheticEngine& e, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (e.writes_done() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_GE(e.writes_done(), n) << "writer did not make progress";
}

std::set<uint32_t> pages_of_writes(const Config& c, uint64_t from, uint64_t to) {
  std::set<uint32_t> pages;
  for (uint64_t i = from; i < to; ++i) pages.insert(SyntheticEngine::describe_write(c, i).page);
  return pages;
}

std::vector<uint32_t> as_vector(const std::set<uint32_t>& s) { return {s.begin(), s.end()}; }

bool same_memory(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

TEST(SyntheticEngineConfig, RejectsBadConfigsWithClearErrors) {
  auto bad = [](auto mutate) {
    Config c = small_config();
    mutate(c);
    auto s = SyntheticEngine::validate(c);
    EXPECT_FALSE(s);
    if (!s) {
      EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    }
    EXPECT_FALSE(SyntheticEngine::create(c));
    EXPECT_FALSE(SyntheticEngine::replay(c, 1));
    return s ? std::string() : s.error().message;
  };
  EXPECT_NE(bad([](Config& c) { c.page_size = 3000; }).find("page_size"), std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.memory_bytes = 0; }).find("memory_bytes"), std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.memory_bytes = 4096 * 3 + 1; }).find("memory_bytes"),
            std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.bytes_per_write = 0; }).find("bytes_per_write"),
            std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.bytes_per_write = 8192; }).find("bytes_per_write"),
            std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.locality = 1.5; }).find("locality"), std::string::npos);
  EXPECT_NE(bad([](Config& c) { c.locality = std::nan(""); }).find("locality"), std::string::npos);
  EXPECT_NE(bad([](Config& c) {
              c.messages_per_sec = c.dirty_pages_per_sec + 1;
            }).find("messages_per_sec"),
            std::string::npos);
  EXPECT_NE(bad([](Config& c) {
              c.dirty_pages_per_sec = 0;
              c.messages_per_sec = 10;
            }).find("messages_per_sec"),
            std::string::npos);
  EXPECT_TRUE(SyntheticEngine::validate(small_config()));
}

TEST(SyntheticEngineWrites, StayInsideTheirPageAndHonourLocality) {
  Config c = small_config();
  c.bytes_per_write = 100;  // not a multiple of 8: the tail must still fit
  const uint64_t pages = c.memory_bytes / c.page_size;
  for (uint64_t i = 0; i < 10000; ++i) {
    auto w = SyntheticEngine::describe_write(c, i);
    ASSERT_LT(w.page, pages);
    ASSERT_EQ(w.offset % 8, 0u);
    ASSERT_LE(w.offset + w.length, c.page_size);
    ASSERT_EQ(w.length, 100u);
  }
  // locality 1.0: every write in one contiguous 10% block.
  c.locality = 1.0;
  auto hot = pages_of_writes(c, 0, 20000);
  EXPECT_LE(*hot.rbegin() - *hot.begin() + 1, pages / 10);
  EXPECT_GT(hot.size(), pages / 10 * 9 / 10);  // and it is used nearly entirely
  // locality 0.0: spread over (nearly) all pages.
  c.locality = 0.0;
  auto spread = pages_of_writes(c, 0, 20000);
  EXPECT_GT(*spread.rbegin() - *spread.begin(), pages * 9 / 10);
}

TEST(SyntheticEngineWrites, ReplayDependsOnSeedAndCountOnly) {
  Config c = small_config();
  auto a = SyntheticEngine::replay(c, 500);
  auto b = SyntheticEngine::replay(c, 500);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(same_memory(a->bytes(), b->bytes()));
  auto fewer = SyntheticEngine::replay(c, 499);
  ASSERT_TRUE(fewer);
  EXPECT_FALSE(same_memory(a->bytes(), fewer->bytes()));
  c.seed = 43;
  auto other = SyntheticEngine::replay(c, 500);
  ASSERT_TRUE(other);
  EXPECT_FALSE(same_memory(a->bytes(), other->bytes()));
}

TEST(SyntheticEngine, LiveMemoryEqualsReplayAtEveryPause) {
  Config c = small_config();
  auto engine = SyntheticEngine::create(c);
  ASSERT_TRUE(engine) << engine.error().to_string();
  auto& e = **engine;
  EXPECT_EQ(e.name(), "synthetic");
  EXPECT_EQ(e.page_size(), 4096u);
  EXPECT_EQ(e.memory().size(), c.memory_bytes);
  uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    wait_for_writes(e, last + 1000);
    ASSERT_TRUE(e.pause());
    const uint64_t k = e.writes_done();
    ASSERT_GT(k, last);
    auto image = SyntheticEngine::replay(c, k);
    ASSERT_TRUE(image);
    EXPECT_TRUE(same_memory(e.memory(), image->bytes())) << "after " << k << " writes";
    last = k;
    ASSERT_TRUE(e.resume());
  }
}

TEST(SyntheticEngine, PauseReallyStopsWrites) {
  Config c = small_config();
  c.messages_per_sec = 1000;
  auto engine = SyntheticEngine::create(c, [](uint64_t) {});
  ASSERT_TRUE(engine);
  auto& e = **engine;
  wait_for_writes(e, 100);
  ASSERT_TRUE(e.pause());
  ASSERT_TRUE(e.pause());  // idempotent
  EXPECT_TRUE(e.paused());
  const uint64_t writes = e.writes_done();
  const uint64_t fingerprint = hash64(e.memory());
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(e.writes_done(), writes);
  EXPECT_EQ(hash64(e.memory()), fingerprint);
  EXPECT_TRUE(e.take_dirty_log()->size() > 0);
  EXPECT_TRUE(e.take_dirty_log()->empty());  // nothing written while paused
  ASSERT_TRUE(e.resume());
  wait_for_writes(e, writes + 100);
  ASSERT_TRUE(e.pause());
  EXPECT_NE(hash64(e.memory()), fingerprint);
}

TEST(SyntheticEngine, DirtyLogIsExactAndAgreesWithScanner) {
  Config c = small_config();
  c.bytes_per_write = 64;
  auto engine = SyntheticEngine::create(c);
  ASSERT_TRUE(engine);
  auto& e = **engine;
  PageScanner scanner(c.page_size, 2);
  scanner.scan(e.memory());  // may race the writer: only seeds the hashes

  ASSERT_TRUE(e.pause());
  uint64_t from = 0;
  // First log: everything since start. Scanner baseline now taken while paused.
  auto first = e.take_dirty_log();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, as_vector(pages_of_writes(c, 0, e.writes_done())));
  scanner.reset();
  scanner.scan(e.memory());
  from = e.writes_done();

  for (int epoch = 0; epoch < 5; ++epoch) {
    ASSERT_TRUE(e.resume());
    wait_for_writes(e, from + 200 + epoch * 300);
    ASSERT_TRUE(e.pause());
    const uint64_t to = e.writes_done();
    auto log = e.take_dirty_log();
    ASSERT_TRUE(log);
    const auto expected = as_vector(pages_of_writes(c, from, to));
    EXPECT_EQ(*log, expected) << "epoch " << epoch;
    EXPECT_EQ(scanner.scan(e.memory()), expected) << "epoch " << epoch;
    from = to;
  }
}

TEST(SyntheticEngine, MessagesAreNumberedByWrites) {
  Config c = small_config();
  c.dirty_pages_per_sec = 100'000;
  c.messages_per_sec = 3'000;  // one message every 33 writes
  const uint64_t k = SyntheticEngine::writes_per_message(c);
  ASSERT_EQ(k, 33u);
  EXPECT_EQ(SyntheticEngine::messages_after(c, 32), 0u);
  EXPECT_EQ(SyntheticEngine::messages_after(c, 33), 1u);
  EXPECT_EQ(SyntheticEngine::messages_after(c, 100), 3u);

  std::mutex mu;
  std::vector<uint64_t> numbers;
  std::vector<uint64_t> writes_at_message;
  std::atomic<SyntheticEngine*> self{nullptr};
  auto engine = SyntheticEngine::create(c, [&](uint64_t m) {
    std::lock_guard lock(mu);
    numbers.push_back(m);
    if (auto* e = self.load())
      writes_at_message.push_back(e->writes_done());
    else
      writes_at_message.push_back(UINT64_MAX);
  });
  ASSERT_TRUE(engine);
  auto& e = **engine;
  self = &e;
  for (int round = 0; round < 3; ++round) {
    wait_for_writes(e, (round + 1) * 2000);
    ASSERT_TRUE(e.pause());
    std::lock_guard lock(mu);
    ASSERT_EQ(numbers.size(), SyntheticEngine::messages_after(c, e.writes_done()));
    EXPECT_EQ(e.messages_emitted(), numbers.size());
    for (size_t m = 0; m < numbers.size(); ++m) {
      ASSERT_EQ(numbers[m], m);
      // Emitted right after write (m+1)*k - 1, i.e. with (m+1)*k writes done.
      if (writes_at_message[m] != UINT64_MAX) {
        ASSERT_EQ(writes_at_message[m], (m + 1) * k);
      }
    }
    ASSERT_TRUE(e.resume());
  }
}

TEST(SyntheticEngine, PacingNeverExceedsTheConfiguredRate) {
  Config c = small_config();
  c.dirty_pages_per_sec = 20'000;
  auto engine = SyntheticEngine::create(c);
  ASSERT_TRUE(engine);
  auto& e = **engine;
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(e.pause());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double expected = secs * static_cast<double>(c.dirty_pages_per_sec);
  // Upper bound is strict (pacing must hold); the lower one only tolerates a loaded machine.
  EXPECT_LE(static_cast<double>(e.writes_done()), expected * 1.05 + 200);
  EXPECT_GE(static_cast<double>(e.writes_done()), expected * 0.2);
  // Time spent paused is not made up for after resume: not even the 10 ms
  // backlog (200 writes) a stall is allowed; only ~1 ms batch granularity.
  std::this_thread::sleep_for(200ms);
  const uint64_t before = e.writes_done();
  const auto resumed = std::chrono::steady_clock::now();
  ASSERT_TRUE(e.resume());
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(e.pause());
  const double run =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - resumed).count();
  EXPECT_LE(static_cast<double>(e.writes_done() - before), run * 20'000 * 1.05 + 40);
}

TEST(SyntheticEngine, NoMessagesWhenNotConfigured) {
  Config c = small_config();
  std::atomic<int> calls{0};
  auto engine = SyntheticEngine::create(c, [&](uint64_t) { ++calls; });
  ASSERT_TRUE(engine);
  wait_for_writes(**engine, 500);
  ASSERT_TRUE((*engine)->pause());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(SyntheticEngine::writes_per_message(c), 0u);
}

TEST(SyntheticEngine, DeviceStateRoundTripsOnlyWhilePaused) {
  Config c = small_config();
  c.messages_per_sec = 1000;
  auto engine = SyntheticEngine::create(c, [](uint64_t) {});
  ASSERT_TRUE(engine);
  auto& e = **engine;
  auto running = e.capture_device_state();
  ASSERT_FALSE(running);
  EXPECT_EQ(running.error().code, ErrorCode::kFailedPrecondition);

  wait_for_writes(e, 1000);
  ASSERT_TRUE(e.pause());
  auto blob = e.capture_device_state();
  ASSERT_TRUE(blob) << blob.error().to_string();
  auto state = SyntheticEngine::decode_device_state(*blob);
  ASSERT_TRUE(state) << state.error().to_string();
  EXPECT_EQ(state->seed, c.seed);
  EXPECT_EQ(state->writes_done, e.writes_done());
  EXPECT_EQ(state->messages_emitted, SyntheticEngine::messages_after(c, e.writes_done()));
  EXPECT_GT(state->messages_emitted, 0u);
}

TEST(SyntheticEngineDeviceState, MalformedBlobsAreRejectedClearly) {
  const auto good = SyntheticEngine::encode_device_state({7, 100, 3});
  ASSERT_TRUE(SyntheticEngine::decode_device_state(good));

  auto expect_corrupt = [](std::span<const std::byte> blob, std::string_view what) {
    auto r = SyntheticEngine::decode_device_state(blob);
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt) << what;
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
  };
  expect_corrupt({}, "bytes");
  expect_corrupt(std::span(good).first(good.size() - 1), "bytes");
  auto longer = good;
  longer.push_back(std::byte{0});
  expect_corrupt(longer, "bytes");

  auto bad_magic = good;
  bad_magic[0] ^= std::byte{1};
  expect_corrupt(bad_magic, "magic");
  auto bad_version = good;
  bad_version[4] = std::byte{9};
  expect_corrupt(bad_version, "version");
  for (size_t i = 8; i < good.size(); ++i) {  // any flipped payload/checksum byte
    auto flipped = good;
    flipped[i] ^= std::byte{0x40};
    expect_corrupt(flipped, "checksum");
  }
  expect_corrupt(SyntheticEngine::encode_device_state({7, 2, 5}), "messages");
}

TEST(SyntheticEngine, ScalesTo4GiBLazily) {
  Config c;
  c.memory_bytes = 4ull << 30;
  c.dirty_pages_per_sec = 0;  // unthrottled
  c.locality = 0.2;
  c.seed = 9;
  c.bytes_per_write = 4096;
  auto engine = SyntheticEngine::create(c);
  ASSERT_TRUE(engine) << engine.error().to_string();
  auto& e = **engine;
  wait_for_writes(e, 20000);
  ASSERT_TRUE(e.pause());
  const uint64_t k = e.writes_done();
  auto log = e.take_dirty_log();
  ASSERT_TRUE(log);
  EXPECT_EQ(*log, as_vector(pages_of_writes(c, 0, k)));
  EXPECT_GT(log->back(), (1u << 20) / 2);  // writes reach the upper half of 1 Mi pages
  // The written pages (only those: the rest is untouched zeros) match replay.
  auto image = SyntheticEngine::replay(c, k);
  ASSERT_TRUE(image);
  for (uint32_t p : *log) {
    const size_t off = static_cast<size_t>(p) * c.page_size;
    ASSERT_EQ(std::memcmp(e.memory().data() + off, image->data() + off, c.page_size), 0)
        << "page " << p;
  }
}

}  // namespace
}  // namespace ftd
