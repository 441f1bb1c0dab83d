// The secondary's replica survives the death of its process at any moment of
// an apply or a resync: a child process applies a scenario and is SIGKILLed
// (at every step of apply() through the step hook, and at random moments);
// the parent reopens the replica and checks that it is a consistent epoch —
// the last committed one or the one being applied — whose RAM and device
// state equal a replay of the same checkpoints on a fresh store, then
// finishes the scenario from there and checks the end state too.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/unique_fd.h"
#include "secondary/replica_store.h"
#include "tests/secondary/test_primary.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kPage = TestPrimary::kPage;
// tmpfs, where replicas live: the threat is process death, and on a disk
// filesystem the meta file's fsync would dominate the test's time.
constexpr const char* kReplicaRoot = "/dev/shm";

struct Message {
  std::vector<std::byte> bytes;
  bool sync = false;
  std::optional<size_t> resync_start;  // part of a resync: where a primary would start it again
};

// A consistent state of the replica: what a reopen may find.
struct Consistent {
  uint64_t epoch = 0;
  uint64_t ram_hash = 0;
  std::vector<std::byte> device;
  uint64_t disk_hash = 0;  // of the replica disk image (0: no disk)
  uint64_t disk_last_seq = 0;
  bool disk_complete = false;
  bool operator==(const Consistent&) const = default;
};

uint64_t disk_hash(const ReplicaStore& r) {
  if (r.disk_bytes() == 0) return 0;
  auto image = read_file(r.disk_path());
  EXPECT_TRUE(image) << image.error().to_string();
  return image ? hash64(*image) : 1;
}

Consistent state_of(const ReplicaStore& r) {
  return {r.epoch(),    hash64(r.memory()),      r.device_state(),
          disk_hash(r), r.disk_state().last_seq, r.disk_state().complete};
}

// History A (epochs 1..a), then its primary restarts: the guest ran on
// unreplicated (dirty pages), a resync sends all memory in chunks, and the new
// primary numbers its checkpoints from 1 again (epochs 1..b).
struct Scenario {
  uint64_t memory_bytes = 0;
  uint64_t disk_bytes = 0;
  std::vector<Message> messages;
  std::vector<Consistent> after;  // after[i]: the consistent state once message i applied
  Consistent initial;             // a fresh replica

  static Scenario make(uint64_t seed, uint32_t pages, size_t a, size_t b, size_t per_checkpoint,
                       uint32_t chunk_pages, uint64_t disk_bytes = 0) {
    Scenario s;
    s.memory_bytes = uint64_t{pages} * kPage;
    s.disk_bytes = disk_bytes;
    TestPrimary p(seed, s.memory_bytes, disk_bytes);
    // The generator's own RAM and disk hashes per checkpoint.
    std::vector<std::optional<std::pair<uint64_t, uint64_t>>> truth;
    auto hashes = [&] {
      return std::pair(hash64(p.memory()), disk_bytes == 0 ? 0 : hash64(p.disk()));
    };
    for (uint64_t e = 1; e <= a; ++e) {
      s.messages.push_back({p.next(e, e - 1, per_checkpoint)});
      p.applied();
      truth.push_back(hashes());
    }
    p.dirty(per_checkpoint);
    p.set_history(seed + 1000);
    const size_t resync_start = s.messages.size();
    for (uint32_t first = 0; first < pages; first += chunk_pages) {
      s.messages.push_back(
          {p.sync_chunk(first, std::min(chunk_pages, pages - first)), true, resync_start});
      truth.push_back(std::nullopt);
    }
    p.applied();
    for (uint64_t e = 1; e <= b; ++e) {
      s.messages.push_back({p.next(e, e - 1, per_checkpoint)});
      if (e == 1) s.messages.back().resync_start = resync_start;  // it completes the resync
      p.applied();
      truth.push_back(hashes());
    }
    // The oracle: the same messages on a fresh store, without crashes.
    const std::string dir = fs::path(kReplicaRoot) / fmt::format("ftd-oracle-{}", ::getpid());
    fs::remove_all(dir);
    {
      auto r = ReplicaStore::open(dir, "vm", s.memory_bytes, kPage, s.disk_bytes);
      EXPECT_TRUE(r) << r.error().to_string();
      s.initial = state_of(*r);
      for (size_t i = 0; i < s.messages.size(); ++i) {
        auto st = r->apply(s.messages[i].bytes);
        EXPECT_TRUE(st) << i << ": " << st.error().to_string();
        s.after.push_back(s.messages[i].sync ? s.consistent_before(i) : state_of(*r));
        if (truth[i]) {
          EXPECT_EQ(s.after[i].ram_hash, truth[i]->first) << "oracle RAM differs at " << i;
          EXPECT_EQ(s.after[i].disk_hash, truth[i]->second) << "oracle disk differs at " << i;
        }
      }
    }
    fs::remove_all(dir);
    return s;
  }
  const Consistent& consistent_before(size_t i) const { return i == 0 ? initial : after[i - 1]; }
};

// Runs messages [from, end) in a child on the replica in `dir`; the child dies
// by SIGKILL at hook call `kill_at` (0: never) or when `kill_after` elapses.
// Returns the index of the last message the child finished, or `from - 1`.
struct ChildRun {
  int64_t last_done = -1;
  bool killed = false;
};
ChildRun run_child(const Scenario& s, const std::string& dir, size_t from, uint64_t kill_at,
                   std::optional<std::chrono::microseconds> kill_after) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid == 0) {
    read_end.reset();
    auto r = ReplicaStore::open(dir, "vm", s.memory_bytes, kPage, s.disk_bytes);
    if (!r) ::_exit(2);
    uint64_t calls = 0;
    if (kill_at != 0)
      r->set_step_hook([&](ApplyStep) {
        if (++calls == kill_at) ::raise(SIGKILL);
      });
    for (size_t i = from; i < s.messages.size(); ++i) {
      if (!r->apply(s.messages[i].bytes)) ::_exit(3);
      const int64_t done = static_cast<int64_t>(i);
      if (::write(write_end.get(), &done, sizeof done) != sizeof done) ::_exit(4);
    }
    ::_exit(0);
  }
  write_end.reset();
  ChildRun run{.last_done = static_cast<int64_t>(from) - 1};
  int64_t done;
  if (kill_after) {
    // From the first finished message on: a fresh process's first apply is
    // slow (page faults), and the step test covers every point inside it.
    if (::read(read_end.get(), &done, sizeof done) == sizeof done) run.last_done = done;
    std::this_thread::sleep_for(*kill_after);
    ::kill(pid, SIGKILL);
  }
  while (::read(read_end.get(), &done, sizeof done) == sizeof done) run.last_done = done;
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  run.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (!run.killed) EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return run;
}

// Reopens after a child's death and checks the replica; returns where a
// primary would continue from.
size_t check_reopened(const Scenario& s, const std::string& dir, const ChildRun& run,
                      const std::string& where) {
  auto r = ReplicaStore::open(dir, "vm", s.memory_bytes, kPage, s.disk_bytes);
  EXPECT_TRUE(r) << where << ": " << r.error().to_string();
  if (!r) return s.messages.size();
  const Consistent now = state_of(*r);
  if (std::getenv("FTD_CRASH_VERBOSE")) fmt::print("{}: {}\n", where, r->recovery());
  const size_t in_flight = static_cast<size_t>(run.last_done + 1);
  const Consistent& before = s.consistent_before(in_flight);
  const bool rolled_forward = in_flight < s.messages.size() && now == s.after[in_flight] &&
                              !s.messages[in_flight].sync && now != before;
  EXPECT_TRUE(now == before || rolled_forward)
      << where << ": reopened at epoch " << now.epoch << " (" << r->recovery()
      << "), expected epoch " << before.epoch << " or the in-flight message " << in_flight;
  EXPECT_TRUE(now.epoch != 0 || before.epoch == 0) << where << ": lost every epoch";
  if (rolled_forward) return in_flight + 1;
  if (in_flight >= s.messages.size()) return in_flight;
  const auto& restart = s.messages[in_flight].resync_start;
  if (restart && r->resume_epoch() == 0) return *restart;  // the primary resends the whole sync
  if (restart && s.messages[in_flight].sync) return *restart;
  return in_flight;
}

// Finishes the scenario in-process and checks the end state.
void finish(const Scenario& s, const std::string& dir, size_t from, const std::string& where) {
  auto r = ReplicaStore::open(dir, "vm", s.memory_bytes, kPage, s.disk_bytes);
  ASSERT_TRUE(r) << where;
  for (size_t i = from; i < s.messages.size(); ++i) {
    auto st = r->apply(s.messages[i].bytes);
    ASSERT_TRUE(st) << where << ": message " << i << ": " << st.error().to_string();
  }
  EXPECT_TRUE(state_of(*r) == s.after.back()) << where << ": end state differs";
  EXPECT_EQ(r->undo_bytes(), 0u) << where;
}

class ReplicaCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(kReplicaRoot) / fmt::format("ftd-crash-{}", ::getpid());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

void kill_at_every_step(const Scenario& s, const std::string& dir_);

TEST_F(ReplicaCrashTest, KilledAtEveryStepOfApplyAndResync) {
  kill_at_every_step(Scenario::make(11, 64, 3, 3, 5, 32), dir_);
}

// The same with a replica disk: its writes are saved and applied inside the
// same crash-safe step, so disk and RAM always reopen at the same epoch.
TEST_F(ReplicaCrashTest, KilledAtEveryStepWithADisk) {
  kill_at_every_step(Scenario::make(12, 64, 3, 3, 5, 32, 256 << 10), dir_);
}

void kill_at_every_step(const Scenario& s, const std::string& dir_) {
  uint64_t total_calls = 0;
  {
    auto r = ReplicaStore::open(dir_, "vm", s.memory_bytes, kPage, s.disk_bytes);
    ASSERT_TRUE(r);
    r->set_step_hook([&](ApplyStep) { ++total_calls; });
    for (const auto& m : s.messages) ASSERT_TRUE(r->apply(m.bytes));
  }
  fs::remove_all(dir_);
  ASSERT_GT(total_calls, 50u);
  ::testing::Test::RecordProperty("kill_points", std::to_string(total_calls));
  for (uint64_t k = 1; k <= total_calls; ++k) {
    const std::string where = fmt::format("killed at step call {}/{}", k, total_calls);
    ChildRun run = run_child(s, dir_, 0, k, std::nullopt);
    ASSERT_TRUE(run.killed) << where;
    const size_t from = check_reopened(s, dir_, run, where);
    finish(s, dir_, from, where);
    fs::remove_all(dir_);
    if (::testing::Test::HasFailure()) return;
  }
}

class ReplicaRandomKillTest : public ReplicaCrashTest, public ::testing::WithParamInterface<int> {};

TEST_P(ReplicaRandomKillTest, KilledAtRandomMomentsThenResumed) {
  const Scenario s = Scenario::make(GetParam(), 2048, 25, 25, 300, 512);
  // How long one uninterrupted run takes, to spread the kills over it.
  std::chrono::microseconds span{0};
  {
    auto r = ReplicaStore::open(dir_, "vm", s.memory_bytes, kPage, s.disk_bytes);
    ASSERT_TRUE(r);
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& m : s.messages) ASSERT_TRUE(r->apply(m.bytes));
    span = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }
  fs::remove_all(dir_);
  std::mt19937_64 rng(GetParam());
  size_t from = 0;
  int kills = 0;
  while (from < s.messages.size() && kills < 12) {
    // Spread over what is left of the run, so most kills land mid-scenario.
    const uint64_t left =
        static_cast<uint64_t>(span.count()) * (s.messages.size() - from) / s.messages.size();
    const auto delay = std::chrono::microseconds(rng() % (left + 1));
    const std::string where =
        fmt::format("seed {} kill {} after {} us", GetParam(), kills, delay.count());
    ChildRun run = run_child(s, dir_, from, 0, delay);
    if (!run.killed) {
      from = s.messages.size();  // finished before the kill
      break;
    }
    ++kills;
    from = check_reopened(s, dir_, run, where);
    if (HasFailure()) return;
  }
  RecordProperty("kills", kills);
  finish(s, dir_, from, fmt::format("seed {}", GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReplicaRandomKillTest, ::testing::Values(1, 2, 3, 4, 5));

TEST_F(ReplicaCrashTest, KilledAtRandomMomentsWithADisk) {
  const Scenario s = Scenario::make(31, 512, 15, 15, 100, 256, 1 << 20);
  std::mt19937_64 rng(31);
  size_t from = 0;
  for (int kills = 0; from < s.messages.size() && kills < 10; ++kills) {
    const auto delay = std::chrono::microseconds(rng() % 20000);
    const std::string where = fmt::format("disk kill {} after {} us", kills, delay.count());
    ChildRun run = run_child(s, dir_, from, 0, delay);
    if (!run.killed) {
      from = s.messages.size();
      break;
    }
    from = check_reopened(s, dir_, run, where);
    if (HasFailure()) return;
  }
  finish(s, dir_, from, "disk random kills");
}

// Failover during a resync: the kept epoch comes back, in memory and on disk,
// and nothing may build on it but a new full sync.
TEST_F(ReplicaCrashTest, RollBackResyncRestoresTheKeptEpoch) {
  const Scenario s = Scenario::make(21, 64, 3, 2, 5, 32);
  auto r = ReplicaStore::open(dir_, "vm", s.memory_bytes, kPage, s.disk_bytes);
  ASSERT_TRUE(r);
  for (size_t i = 0; i < 4; ++i) ASSERT_TRUE(r->apply(s.messages[i].bytes));  // A1..A3, 1 chunk
  ASSERT_TRUE(r->resyncing());
  EXPECT_EQ(r->epoch(), 3u);
  EXPECT_EQ(r->resume_epoch(), 0u);
  EXPECT_NE(hash64(r->memory()), s.after[2].ram_hash) << "the chunk changed nothing?";
  ASSERT_TRUE(r->roll_back_resync());
  EXPECT_FALSE(r->resyncing());
  EXPECT_TRUE(state_of(*r) == s.after[2]);
  EXPECT_EQ(r->resume_epoch(), 0u) << "a kept epoch is no base for deltas";
  r = make_error(ErrorCode::kInternal, "closed");
  r = ReplicaStore::open(dir_, "vm", s.memory_bytes, kPage, s.disk_bytes);
  ASSERT_TRUE(r);
  EXPECT_TRUE(state_of(*r) == s.after[2]) << r->recovery();
  EXPECT_EQ(r->resume_epoch(), 0u);
  // A checkpoint on the kept epoch is refused; a new full sync is accepted.
  auto st = r->apply(s.messages[5].bytes);  // B1 without its sync chunks
  EXPECT_FALSE(st);
  for (size_t i = 3; i < s.messages.size(); ++i) ASSERT_TRUE(r->apply(s.messages[i].bytes)) << i;
  EXPECT_TRUE(state_of(*r) == s.after.back());
  EXPECT_NE(r->resume_epoch(), 0u);
}

}  // namespace
}  // namespace ftd
