// Two real ftd processes on loopback; the secondary is SIGKILLed at random
// moments while checkpoints stream in and restarted on the same replica
// directory. What the dead daemon left must open at a consistent epoch (no
// acknowledged epoch lost, RAM equal to a replay of the workload at the
// device state's write count), and replication must resume by catching up,
// never by a full resync. A second test fails over while a restarted primary
// resyncs the replica: the activated state is the previous consistent epoch.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/hash.h"
#include "secondary/replica_store.h"
#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

namespace fs = std::filesystem;

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The replica files exactly as a dead daemon left them, opened in a copy:
// the recovery its restart performs, checked against the workload's replay.
struct Recovered {
  uint64_t epoch = 0;
  bool equals_replay = false;
  std::string recovery;
};
Recovered recover_copy(const fs::path& replica_dir, const fs::path& copy_dir, uint64_t mib) {
  fs::remove_all(copy_dir);
  fs::create_directories(copy_dir);
  for (const auto& f : fs::directory_iterator(replica_dir))
    fs::copy(f.path(), copy_dir / f.path().filename());
  auto r = ReplicaStore::open(copy_dir.string(), "vm0", mib << 20, 4096);
  EXPECT_TRUE(r) << r.error().to_string();
  if (!r) return {};
  Recovered out{.epoch = r->epoch(), .recovery = r->recovery()};
  auto dev = SyntheticEngine::decode_device_state(r->device_state());
  EXPECT_TRUE(dev) << dev.error().to_string();
  if (dev) {
    auto oracle = SyntheticEngine::replay(workload(mib), dev->writes_done);
    EXPECT_TRUE(oracle);
    out.equals_replay = oracle && hash64(oracle->bytes()) == hash64(r->memory());
  }
  r = make_error(ErrorCode::kInternal, "closed");
  fs::remove_all(copy_dir);
  return out;
}

class Pair {
 public:
  explicit Pair(uint64_t mib) : mib_(mib), replica_dir_("/dev/shm"), port_(free_port()) {}

  Result<Daemon> start_secondary() {
    auto args = workload_flags(mib_);
    args.insert(args.end(), {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", port_),
                             "--replica-dir", replica_dir_.path().string()});
    const std::string name = fmt::format("secondary-{}", secondaries_++);
    last_secondary_log_ = work_.path() / (name + ".log");
    return Daemon::start(args, "unix:" + (work_.path() / (name + ".ctl")).string(),
                         last_secondary_log_.string());
  }
  Result<Daemon> start_primary() {
    auto args = workload_flags(mib_);
    args.insert(args.end(), {"--role", "primary", "--peer", fmt::format("127.0.0.1:{}", port_),
                             "--epoch-ms", "30"});
    const std::string name = fmt::format("primary-{}", primaries_++);
    last_primary_log_ = work_.path() / (name + ".log");
    return Daemon::start(args, "unix:" + (work_.path() / (name + ".ctl")).string(),
                         last_primary_log_.string());
  }
  // Both daemons, once the pair is well past its initial sync.
  struct Running {
    Daemon secondary, primary;
  };
  Result<Running> start_protected() {
    FTD_ASSIGN_OR_RETURN(Daemon secondary, start_secondary());
    FTD_ASSIGN_OR_RETURN(Daemon primary, start_primary());
    if (!wait_for_acked_epoch(primary, 20, std::chrono::seconds(60)))
      return make_error(ErrorCode::kTimeout, "primary never reached epoch 20; see {}",
                        last_primary_log_.string());
    return Running{std::move(secondary), std::move(primary)};
  }
  const fs::path& replica_dir() const { return replica_dir_.path(); }
  fs::path copy_dir() const { return work_.path() / "replica-copy"; }
  const fs::path& secondary_log() const { return last_secondary_log_; }
  const fs::path& primary_log() const { return last_primary_log_; }

 private:
  uint64_t mib_;
  TempDir work_;
  TempDir replica_dir_;
  int port_;
  int secondaries_ = 0, primaries_ = 0;
  fs::path last_secondary_log_, last_primary_log_;
};

bool state_is(Daemon& d, v1::VmState state) {
  auto s = d.status();
  return s && s->state() == state;
}

class KillSecondaryTest : public ::testing::TestWithParam<int> {};

TEST_P(KillSecondaryTest, RestartOpensAtConsistentEpochAndCatchesUpWithoutResync) {
  constexpr uint64_t kMib = 32;
  Pair pair(kMib);
  auto running = pair.start_protected();
  ASSERT_TRUE(running) << running.error().to_string();
  Result<Daemon> secondary = std::move(running->secondary);
  Result<Daemon> primary = std::move(running->primary);

  std::mt19937 rng(GetParam());
  constexpr int kKills = 2;
  for (int kill = 0; kill < kKills; ++kill) {
    SCOPED_TRACE(fmt::format("seed {} kill {}", GetParam(), kill));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    secondary->process().kill(SIGKILL);
    ASSERT_TRUE(secondary->process().wait(std::chrono::seconds(5)));
    auto acked = primary->status();
    ASSERT_TRUE(acked);

    const Recovered rec = recover_copy(pair.replica_dir(), pair.copy_dir(), kMib);
    RecordProperty(fmt::format("kill{}_epoch", kill), std::to_string(rec.epoch));
    EXPECT_GT(rec.epoch, 0u) << rec.recovery;
    EXPECT_GE(rec.epoch, acked->acked_epoch())
        << "an acknowledged epoch was lost: " << rec.recovery;
    EXPECT_TRUE(rec.equals_replay)
        << "replica at epoch " << rec.epoch << " is torn: " << rec.recovery;

    secondary = pair.start_secondary();
    ASSERT_TRUE(secondary) << secondary.error().to_string();
    EXPECT_NE(slurp(pair.secondary_log())
                  .find(fmt::format("epoch={} resume_epoch={}", rec.epoch, rec.epoch)),
              std::string::npos)
        << "the restarted daemon should open at epoch " << rec.epoch << ":\n"
        << slurp(pair.secondary_log());
    // Replication resumes from there: well past the epoch, protected again.
    ASSERT_TRUE(wait_until(
        [&] {
          auto s = secondary->status();
          return s && s->state() == v1::VM_STATE_PROTECTED && s->epoch() >= rec.epoch + 10;
        },
        std::chrono::seconds(20)))
        << slurp(pair.secondary_log());
    auto s = secondary->status();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->sync_chunks_applied(), 0u) << "the restarted secondary was sent a full sync";
  }
  // The primary's side of the same story: one full sync (the first connection), catch-ups after.
  const std::string log = slurp(pair.primary_log());
  EXPECT_EQ(count(log, "plan=full_sync"), 1u) << log;
  EXPECT_EQ(count(log, "sync.start"), 1u) << log;
  EXPECT_EQ(count(log, "plan=catch_up") + count(log, "plan=in_step"), size_t{kKills}) << log;
}

INSTANTIATE_TEST_SUITE_P(Seeds, KillSecondaryTest, ::testing::Values(1, 2, 3));

// A restarted primary resyncs the replica (its epochs are not ours); a
// failover in the middle must activate the epoch the replica held before.
TEST(FailoverDuringResync, ActivatesThePreviousConsistentEpoch) {
  constexpr uint64_t kMib = 64;  // sync + convergence rounds span a few hundred ms
  Pair pair(kMib);
  auto running = pair.start_protected();
  ASSERT_TRUE(running) << running.error().to_string();
  Result<Daemon> secondary = std::move(running->secondary);
  Result<Daemon> primary = std::move(running->primary);

  std::optional<v1::VmStatus> caught;
  uint64_t kept = 0;
  for (int attempt = 0; attempt < 4 && !caught; ++attempt) {
    primary->process().kill(SIGKILL);
    ASSERT_TRUE(primary->process().wait(std::chrono::seconds(5)));
    ASSERT_TRUE(wait_until([&] { return state_is(*secondary, v1::VM_STATE_WAITING); },
                           std::chrono::seconds(10)));
    auto before = secondary->status();
    ASSERT_TRUE(before);
    kept = before->epoch();
    ASSERT_GT(kept, 0u);
    primary = pair.start_primary();  // epoch numbering from 1: a full sync
    ASSERT_TRUE(primary) << primary.error().to_string();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = secondary->status();
      if (s && s->resyncing()) {
        caught = *s;
        break;
      }
      if (s && s->state() == v1::VM_STATE_PROTECTED && s->epoch() != kept) break;  // missed it
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_TRUE(caught) << "never saw the secondary mid-resync";
  RecordProperty("kept_epoch", std::to_string(kept));
  EXPECT_EQ(caught->epoch(), kept) << "status must show the kept epoch during the resync";
  EXPECT_EQ(caught->state(), v1::VM_STATE_SYNCING);
  EXPECT_GT(caught->undo_bytes(), 0u);

  auto fo = secondary->failover();
  ASSERT_TRUE(fo) << fo.error().to_string();
  EXPECT_EQ(fo->epoch(), kept);
  // The synthetic activator compares the RAM with a replay of the workload at
  // the device state's write count: a torn image fails here.
  EXPECT_NE(fo->message().find("replica == replay"), std::string::npos) << fo->message();
  EXPECT_NE(slurp(pair.secondary_log()).find("failover.rollback"), std::string::npos);
  auto after = secondary->status();
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->resyncing());
  EXPECT_EQ(after->state(), v1::VM_STATE_ACTIVE);
}

}  // namespace
}  // namespace ftd::testing
