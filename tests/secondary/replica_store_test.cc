// The secondary's replica: persistence, atomic apply, and every reject path
// leaving memory, device state and epoch exactly as they were.
#include "secondary/replica_store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/hash.h"
#include "tests/secondary/test_primary.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kPage = 4096;
constexpr uint64_t kMem = 64 * kPage;

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "ftd-replica-XXXXXX").string();
  char* p = ::mkdtemp(tmpl.data());
  EXPECT_NE(p, nullptr) << std::strerror(errno);
  return tmpl;
}

using Primary = TestPrimary;

uint64_t fingerprint(const ReplicaStore& r) { return hash64(r.memory()); }

class ReplicaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  Result<ReplicaStore> open(uint64_t mem = kMem, uint32_t page = kPage) {
    return ReplicaStore::open(dir_, "vm1", mem, page);
  }
  void write_meta(const std::string& text) { std::ofstream(dir_ + "/vm1.meta") << text; }

  // Applies `enc` expecting `code`, and checks nothing changed.
  void expect_rejected(ReplicaStore& r, std::span<const std::byte> enc, ErrorCode code) {
    const uint64_t epoch = r.epoch(), hash = fingerprint(r);
    const auto device = r.device_state();
    auto st = r.apply(enc);
    ASSERT_FALSE(st) << "apply accepted";
    EXPECT_EQ(st.error().code, code) << st.error().to_string();
    EXPECT_EQ(r.epoch(), epoch);
    EXPECT_EQ(fingerprint(r), hash);
    EXPECT_TRUE(r.device_state() == device);
  }

  std::string dir_;
};

TEST_F(ReplicaStoreTest, CreateApplyReopen) {
  auto r = open();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->epoch(), 0u);
  EXPECT_EQ(r->memory_bytes(), kMem);
  EXPECT_EQ(fingerprint(*r), hash64(std::vector<std::byte>(kMem)));
  EXPECT_TRUE(fs::exists(r->ram_path()));

  Primary p(1);
  for (uint64_t e = 1; e <= 5; ++e) {
    auto enc = p.next(e, e - 1);
    auto st = r->apply(enc);
    ASSERT_TRUE(st) << st.error().to_string();
    p.applied();
    EXPECT_EQ(st->epoch, e);
    EXPECT_EQ(st->pages, 5u);
    EXPECT_EQ(r->epoch(), e);
    EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
    EXPECT_TRUE(r->device_state() == p.device());
  }
  r = make_error(ErrorCode::kInternal, "closed");  // releases the mapping and the lock
  r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 5u);
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
  EXPECT_TRUE(r->device_state() == p.device());
  // And it keeps applying after the reopen.
  ASSERT_TRUE(r->apply(p.next(6, 5)));
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
}

// Planned migration seeds a replica image with a guest's final RAM: it is no
// epoch of anything (a reopen says epoch 0) but keeps the bytes, so the next
// primary's differential sync finds them equal.
TEST_F(ReplicaStoreTest, SeededImageKeepsItsBytesAtEpochZero) {
  auto r = open();
  ASSERT_TRUE(r);
  Primary p(3);
  for (uint64_t e = 1; e <= 3; ++e) {
    ASSERT_TRUE(r->apply(p.next(e, e - 1)));
    p.applied();
  }
  std::vector<std::byte> ram(kMem);
  for (size_t i = 0; i < ram.size(); ++i) ram[i] = std::byte(i * 7 % 251);
  ASSERT_TRUE(r->seed(ram));
  EXPECT_EQ(r->epoch(), 0u);
  EXPECT_EQ(fingerprint(*r), hash64(ram));
  EXPECT_FALSE(r->seed(std::vector<std::byte>(kMem / 2)));  // wrong size: refused
  r = make_error(ErrorCode::kInternal, "closed");
  r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u) << r->recovery();
  EXPECT_NE(r->recovery().find("a guest ran"), std::string::npos) << r->recovery();
  EXPECT_EQ(fingerprint(*r), hash64(ram));
}

TEST_F(ReplicaStoreTest, GeometryMismatchResetsTheEpoch) {
  {
    auto r = open();
    ASSERT_TRUE(r);
    Primary p(2);
    ASSERT_TRUE(r->apply(p.next(1, 0)));
  }
  {
    auto r = open(2 * kMem);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->epoch(), 0u);
    EXPECT_EQ(r->memory_bytes(), 2 * kMem);
  }
  auto r = open(kMem, 2 * kPage);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u);
}

TEST_F(ReplicaStoreTest, SecondOwnerOfTheSameReplicaIsRefusedNamingTheHolder) {
  auto r = open();
  ASSERT_TRUE(r) << r.error().to_string();
  auto second = open();
  ASSERT_FALSE(second) << "two owners of one replica";
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(second.error().message.find("in use by pid " + std::to_string(::getpid())),
            std::string::npos)
      << second.error().message;
  EXPECT_TRUE(ReplicaStore::open(dir_, "other-vm", kMem, kPage)) << "the lock is per VM";
  r = make_error(ErrorCode::kInternal, "closed");  // the owner goes away: free again
  EXPECT_TRUE(open());
}

TEST_F(ReplicaStoreTest, RejectsInvalidOpenArguments) {
  EXPECT_FALSE(ReplicaStore::open(dir_, "", kMem, kPage));
  EXPECT_FALSE(ReplicaStore::open(dir_, "a/b", kMem, kPage));
  EXPECT_FALSE(ReplicaStore::open(dir_, "..", kMem, kPage));
  EXPECT_FALSE(ReplicaStore::open(dir_, "vm", kMem + 1, kPage));
  EXPECT_FALSE(ReplicaStore::open(dir_, "vm", 0, kPage));
  EXPECT_FALSE(ReplicaStore::open(dir_, "vm", kMem, 0));
}

TEST_F(ReplicaStoreTest, RejectsStaleWrongBaseAndCorruptWithoutChange) {
  auto r = open();
  ASSERT_TRUE(r);
  Primary p(3);
  auto e1 = p.next(1, 0);
  ASSERT_TRUE(r->apply(e1));
  p.applied();
  auto e2 = p.next(2, 1);
  ASSERT_TRUE(r->apply(e2));
  p.applied();

  expect_rejected(*r, e1, ErrorCode::kFailedPrecondition);  // stale
  expect_rejected(*r, e2, ErrorCode::kFailedPrecondition);  // replay of the current epoch
  Primary other(4);
  expect_rejected(*r, other.next(3, 1), ErrorCode::kFailedPrecondition);  // wrong base
  expect_rejected(*r, other.next(3, 7), ErrorCode::kFailedPrecondition);

  auto e3 = p.next(3, 2);
  for (size_t at :
       {size_t{0}, size_t{30}, size_t{kCheckpointHeaderSize + 1}, e3.size() / 2, e3.size() - 1}) {
    auto bad = e3;
    bad[at] ^= std::byte{0x80};
    SCOPED_TRACE(at);
    const uint64_t epoch = r->epoch(), hash = fingerprint(*r);
    EXPECT_FALSE(r->apply(bad));
    EXPECT_EQ(r->epoch(), epoch);
    EXPECT_EQ(fingerprint(*r), hash);
  }
  expect_rejected(*r, std::span(e3).first(e3.size() - 1), ErrorCode::kCorrupt);
  expect_rejected(*r, std::span(e3).first(10), ErrorCode::kCorrupt);

  // A replica with another page size refuses the checkpoint outright.
  auto r2 = ReplicaStore::open(dir_ + "/other", "vm1", kMem, 2 * kPage);
  ASSERT_TRUE(r2);
  expect_rejected(*r2, e1, ErrorCode::kInvalidArgument);

  // The good one still applies after all the rejects.
  ASSERT_TRUE(r->apply(e3)) << "after rejects";
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
}

TEST_F(ReplicaStoreTest, InterruptedApplyWithoutUndoLogReopensAtEpochZero) {
  {
    auto r = open();
    ASSERT_TRUE(r);
    Primary p(5);
    ASSERT_TRUE(r->apply(p.next(1, 0)));
    ASSERT_TRUE(r->apply(p.next(2, 1)));
  }
  {
    auto r = open();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->epoch(), 2u);
  }
  // "applying" with its staged device state but no undo log to go back with
  // (the format before undo logs, or a log that vanished): nothing to trust.
  write_meta(fmt::format("applying 3 {} {} 2\n", kMem, kPage));
  std::ofstream(dir_ + "/vm1.devstate.staged") << "x";
  {
    auto r = open();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->epoch(), 0u);
    EXPECT_TRUE(r->device_state().empty());
  }
  // And what the reopen wrote is a clean epoch 0, not the torn state again.
  auto r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u);
  r = make_error(ErrorCode::kInternal, "closed");
  for (const char* garbage : {"", "clean", "clean x y z", "dirty 5 262144 4096"}) {
    write_meta(garbage);
    auto g = open();
    ASSERT_TRUE(g) << garbage;
    EXPECT_EQ(g->epoch(), 0u) << garbage;
  }
}

TEST_F(ReplicaStoreTest, MissingDeviceStateReopensAtEpochZero) {
  {
    auto r = open();
    ASSERT_TRUE(r);
    Primary p(6);
    ASSERT_TRUE(r->apply(p.next(1, 0)));
  }
  fs::remove(dir_ + "/vm1.devstate");
  auto r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u);
}

TEST_F(ReplicaStoreTest, SyncChunksThenCheckpoint) {
  auto r = open();
  ASSERT_TRUE(r);
  Primary p(7);
  ASSERT_TRUE(r->apply(p.next(4, 0)));  // a replica that was at epoch 4 ...
  p.applied();
  // ... receives a full sync: chunks at epoch 0, absolute pages, no device state.
  auto chunk = p.next(0, 0, 10, kFlagSyncChunk, false);
  auto st = r->apply(chunk);
  ASSERT_TRUE(st) << st.error().to_string();
  // What the secondary acks: the replica's new epoch (0), never the old 4 — a
  // primary with fewer epochs would take 4 as applied and release its output.
  EXPECT_EQ(st->epoch, 0u);
  p.applied();
  // Double-buffered: epoch 4 stays the consistent state until the sync completes.
  EXPECT_EQ(r->epoch(), 4u);
  EXPECT_EQ(r->resume_epoch(), 0u);
  EXPECT_TRUE(r->syncing());
  EXPECT_TRUE(r->resyncing());
  EXPECT_GT(r->undo_bytes(), 10u * kPage);
  // A sync chunk claiming a base is malformed.
  Primary other(70);
  expect_rejected(*r, other.next(0, 3, 2, kFlagSyncChunk, false), ErrorCode::kCorrupt);
  // The first checkpoint after the sync is based on epoch 0.
  ASSERT_TRUE(r->apply(p.next(5, 0)));
  p.applied();
  EXPECT_EQ(r->epoch(), 5u);
  EXPECT_FALSE(r->syncing());
  EXPECT_FALSE(r->resyncing());
  EXPECT_EQ(r->undo_bytes(), 0u);
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
}

TEST_F(ReplicaStoreTest, SecondaryMarkedRunningReopensAtEpochZero) {
  {
    auto r = open();
    ASSERT_TRUE(r);
    Primary p(9);
    ASSERT_TRUE(r->apply(p.next(3, 0)));
    ASSERT_TRUE(r->mark_running(3));  // failover: a guest runs on the image now
  }
  auto r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u) << "an image a guest ran on was taken for a replica";
}

TEST_F(ReplicaStoreTest, ResetForgetsTheEpoch) {
  auto r = open();
  ASSERT_TRUE(r);
  Primary p(8);
  ASSERT_TRUE(r->apply(p.next(1, 0)));
  ASSERT_TRUE(r->reset());
  EXPECT_EQ(r->epoch(), 0u);
  r = make_error(ErrorCode::kInternal, "closed");
  r = open();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 0u);
}

// A 1 MiB tmpfs: the replica fits, then a filler eats the rest of the space.
class ReplicaStoreFullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    if (::mount("ftd-test", dir_.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
      int err = errno;
      fs::remove_all(dir_);
      dir_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << std::strerror(err);
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0)
      ADD_FAILURE() << "umount " << dir_ << ": " << std::strerror(errno);
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Writes until ENOSPC; returns the bytes written.
  size_t fill(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::vector<char> block(4096, 'x');
    size_t total = 0;
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) total += block.size();
    std::fclose(f);
    return total;
  }
  std::string dir_;
  bool mounted_ = false;
};

TEST_F(ReplicaStoreFullDiskTest, ApplyFailsCleanlyAndRecovers) {
  auto r = ReplicaStore::open(dir_, "vm1", kMem, kPage);  // 256 KiB of 1 MiB
  ASSERT_TRUE(r) << r.error().to_string();
  Primary p(9);
  ASSERT_TRUE(r->apply(p.next(1, 0)));
  p.applied();
  const uint64_t hash = fingerprint(*r);
  const auto device = r->device_state();

  const std::string filler = dir_ + "/filler";
  fill(filler);
  auto e2 = p.next(2, 1);
  auto st = r->apply(e2);
  ASSERT_FALSE(st) << "apply succeeded on a full disk";
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_NE(st.error().message.find("No space left"), std::string::npos) << st.error().to_string();
  EXPECT_EQ(r->epoch(), 1u);
  EXPECT_EQ(fingerprint(*r), hash);
  EXPECT_TRUE(r->device_state() == device);
  {
    auto again = ReplicaStore::open(dir_, "vm2", kMem, kPage);
    EXPECT_FALSE(again) << "a second replica cannot fit";
  }

  // Space comes back: the same checkpoint applies, and a reopen agrees.
  fs::remove(filler);
  st = r->apply(e2);
  ASSERT_TRUE(st) << st.error().to_string();
  p.applied();
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
  r = make_error(ErrorCode::kInternal, "closed");  // releases the mapping and the lock
  r = ReplicaStore::open(dir_, "vm1", kMem, kPage);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch(), 2u);
  EXPECT_EQ(fingerprint(*r), hash64(p.memory()));
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_NE(entry.path().extension(), ".tmp") << "leftover temp file " << entry.path();
}

}  // namespace
}  // namespace ftd
