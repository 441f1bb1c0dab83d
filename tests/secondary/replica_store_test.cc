// The secondary's replica: persistence, atomic apply, and every reject path
// leaving memory, device state and epoch exactly as they were.
#include "secondary/replica_store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/file_util.h"
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

// A replica disk that cannot take a checkpoint's writes (the filesystem is
// full): clear error, RAM and disk stay at the last epoch, the disk is
// reported unprotected until a checkpoint applies again.
TEST_F(ReplicaStoreFullDiskTest, DiskWritesOnAFullFilesystemRollBack) {
  constexpr uint64_t kDiskBytes = 4 << 20;  // sparse: larger than the tmpfs
  auto r = ReplicaStore::open(dir_, "vm1", kMem, kPage, kDiskBytes);
  ASSERT_TRUE(r) << r.error().to_string();
  Primary p(9, kMem, kDiskBytes);
  ASSERT_TRUE(r->apply(p.next(1, 0)));
  p.applied();
  ASSERT_TRUE(r->disk_consistent());
  const uint64_t ram = fingerprint(*r);
  auto image = read_file(r->disk_path());
  ASSERT_TRUE(image);
  const uint64_t disk = hash64(*image);
  EXPECT_EQ(disk, hash64(p.disk()));
  const DiskReplicaState state = r->disk_state();

  // Epoch 2: 256 KiB of data where the disk still holds zeros (its undo
  // record is then a hole, no bytes). Room is left for all but that data.
  constexpr uint32_t kWrite = 256 << 10;
  uint64_t offset = 0;
  while (!std::all_of(p.disk().begin() + offset, p.disk().begin() + offset + kWrite,
                      [](std::byte b) { return b == std::byte{0}; }))
    offset += kWrite;
  ASSERT_LT(offset, kDiskBytes);
  DiskEpoch writes{.disk_size = kDiskBytes, .complete = true};
  DiskWrite w{.seq = state.last_seq + 1, .offset = offset, .length = kWrite};
  w.data.resize(w.length);
  std::memset(w.data.data(), 0x5a, w.length);
  writes.writes.push_back(std::move(w));
  const std::vector<std::byte> device(40, std::byte{2});
  std::vector<std::byte> e2;
  ASSERT_TRUE(encode_checkpoint(
      {.epoch = 2, .base_epoch = 1, .page_size = kPage, .device_state = device, .disk = &writes},
      CompressionPolicy::kNone, e2));
  const std::string filler = dir_ + "/filler";
  const size_t filled = fill(filler);
  fs::resize_file(filler, filled - (64 << 10));
  auto st = r->apply(e2);
  ASSERT_FALSE(st) << "256 KiB of disk writes fit in 64 KiB?";
  EXPECT_NE(st.error().message.find("No space left"), std::string::npos) << st.error().to_string();
  EXPECT_NE(st.error().message.find("vm1.disk"), std::string::npos) << st.error().to_string();
  EXPECT_EQ(r->epoch(), 1u);
  EXPECT_EQ(fingerprint(*r), ram);
  image = read_file(r->disk_path());
  ASSERT_TRUE(image);
  EXPECT_EQ(hash64(*image), disk) << "the disk kept part of epoch 2";
  EXPECT_EQ(r->disk_state().last_seq, state.last_seq);
  EXPECT_FALSE(r->disk_consistent());
  EXPECT_NE(r->disk_error().find("No space left"), std::string::npos) << r->disk_error();

  // A reopen agrees (the failed change left nothing to recover).
  r = make_error(ErrorCode::kInternal, "closed");
  r = ReplicaStore::open(dir_, "vm1", kMem, kPage, kDiskBytes);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->epoch(), 1u);
  image = read_file(r->disk_path());
  ASSERT_TRUE(image);
  EXPECT_EQ(hash64(*image), disk);

  // Space comes back: the same checkpoint applies, the disk is protected again.
  fs::remove(filler);
  st = r->apply(e2);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(st->disk_bytes, kWrite);
  EXPECT_TRUE(r->disk_consistent());
  EXPECT_TRUE(r->disk_error().empty());
  EXPECT_EQ(r->disk_state().last_seq, state.last_seq + 1);
  EXPECT_EQ(r->disk_bytes_applied(), kWrite);
}

// The disk's bounds and sequence are checked before anything changes.
constexpr uint64_t kOneMiB = 1 << 20;

TEST_F(ReplicaStoreTest, DiskSizeMismatchAndSeqGapAreRefusedWithoutChange) {
  constexpr uint64_t kDiskBytes = kOneMiB;
  auto r = ReplicaStore::open(dir_, "vm1", kMem, kPage, kDiskBytes);
  ASSERT_TRUE(r) << r.error().to_string();
  Primary p(5, kMem, kDiskBytes);
  ASSERT_TRUE(r->apply(p.next(1, 0)));
  p.applied();
  const uint64_t last = r->disk_state().last_seq;
  const std::vector<std::byte> device(40, std::byte{3});
  auto encode = [&](DiskEpoch disk) {
    std::vector<std::byte> out;
    EXPECT_TRUE(encode_checkpoint(
        {.epoch = 2, .base_epoch = 1, .page_size = kPage, .device_state = device, .disk = &disk},
        CompressionPolicy::kNone, out));
    return out;
  };
  auto one_write = [&](uint64_t seq, bool complete, uint64_t disk_size = kOneMiB) {
    DiskEpoch d{.disk_size = disk_size, .complete = complete};
    d.writes.push_back({.seq = seq, .offset = 0, .length = 512, .kind = DiskWrite::Kind::kZeroes});
    return encode(std::move(d));
  };
  auto st = r->apply(one_write(last + 1, true, 2 * kDiskBytes));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("carries a disk of 2097152 bytes"), std::string::npos)
      << st.error().to_string();
  st = r->apply(one_write(last + 2, true));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("writes lost"), std::string::npos) << st.error().to_string();
  st = r->apply(encode({}));  // no disk section at all
  ASSERT_FALSE(st);
  EXPECT_EQ(r->epoch(), 1u);
  EXPECT_EQ(r->disk_state().last_seq, last);
  // A primary whose disk copy starts over may start a new sequence: the disk
  // is then incomplete (not activatable) until a complete epoch follows.
  st = r->apply(one_write(1, false));
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_FALSE(r->disk_consistent());
  EXPECT_EQ(r->disk_state().last_seq, 1u);
}

}  // namespace
}  // namespace ftd
