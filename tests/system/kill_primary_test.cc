// Two real ftd processes on loopback; the primary is SIGKILLed while
// checkpoints are in flight. The secondary's replica must equal exactly the
// workload's state at an epoch the primary had committed (or the one in
// flight that completed), and no output message produced after the
// acknowledged epoch may have been released.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <random>
#include <sstream>

#include "common/file_util.h"
#include "common/hash.h"
#include "secondary/replica_store.h"
#include "synthetic/synthetic_engine.h"
#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

struct OutputLog {
  uint64_t last_commit = 0;
  int64_t max_message = -1;
  uint64_t messages = 0;
  bool in_order = true;
};

OutputLog read_output_log(const std::string& path) {
  OutputLog log;
  std::ifstream in(path);
  std::string word;
  uint64_t n;
  while (in >> word >> n) {
    if (word == "commit") log.last_commit = std::max(log.last_commit, n);
    if (word == "msg") {
      if (static_cast<int64_t>(n) != log.max_message + 1) log.in_order = false;
      log.max_message = static_cast<int64_t>(n);
      ++log.messages;
    }
  }
  return log;
}

class KillPrimaryTest : public ::testing::TestWithParam<int> {};

TEST_P(KillPrimaryTest, ReplicaIsLastAckedEpochAndNoLaterOutputEscaped) {
  TempDir work;
  TempDir replica_dir("/dev/shm");
  const int rep_port = free_port();
  // Control on unix sockets: a TCP control address needs TLS or --insecure.
  const std::string sec_ctl = "unix:" + (work.path() / "secondary.ctl").string();
  const std::string pri_ctl = "unix:" + (work.path() / "primary.ctl").string();
  const std::string out_log = (work.path() / "output.log").string();

  auto sec_args = workload_flags();
  sec_args.insert(sec_args.end(),
                  {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", rep_port),
                   "--replica-dir", replica_dir.path().string()});
  auto secondary = Daemon::start(sec_args, sec_ctl, (work.path() / "secondary.log").string());
  ASSERT_TRUE(secondary) << secondary.error().to_string();

  auto pri_args = workload_flags();
  pri_args.insert(pri_args.end(),
                  {"--role", "primary", "--peer", fmt::format("127.0.0.1:{}", rep_port),
                   "--epoch-ms", "30", "--output-log", out_log});
  auto primary = Daemon::start(pri_args, pri_ctl, (work.path() / "primary.log").string());
  ASSERT_TRUE(primary) << primary.error().to_string();

  // Let it run well past the initial sync, then kill at a seed-dependent moment.
  ASSERT_TRUE(wait_for_acked_epoch(*primary, 20, std::chrono::seconds(60)))
      << "primary never reached epoch 20";
  std::mt19937 rng(GetParam());
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
  auto before = primary->status();
  primary->process().kill(SIGKILL);
  ASSERT_TRUE(primary->process().wait(std::chrono::seconds(5)));

  // The secondary notices the dead stream and keeps its last whole epoch.
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = secondary->status();
        return s && s->state() == v1::VM_STATE_WAITING;
      },
      std::chrono::seconds(10)));
  auto sec = secondary->status();
  ASSERT_TRUE(sec);
  const uint64_t replica_epoch = sec->epoch();
  OutputLog log = read_output_log(out_log);
  ASSERT_TRUE(before);
  RecordProperty("replica_epoch", std::to_string(replica_epoch));
  RecordProperty("last_commit", std::to_string(log.last_commit));

  // Replica is at or just past the last epoch the primary saw acknowledged.
  EXPECT_GE(replica_epoch, log.last_commit);
  EXPECT_LE(replica_epoch, log.last_commit + 4 /* max_inflight */);
  EXPECT_GT(log.messages, 0u);
  EXPECT_TRUE(log.in_order) << "released messages out of order or with gaps";

  // The replica is exactly the workload after the number of writes its device state records.
  auto ram = read_file((replica_dir.path() / "vm0.ram").string());
  auto dev_blob = read_file((replica_dir.path() / "vm0.devstate").string());
  ASSERT_TRUE(ram && dev_blob);
  auto dev = SyntheticEngine::decode_device_state(*dev_blob);
  ASSERT_TRUE(dev) << dev.error().to_string();
  auto oracle = SyntheticEngine::replay(workload(), dev->writes_done);
  ASSERT_TRUE(oracle);
  EXPECT_EQ(hash64(*ram), hash64(oracle->bytes()))
      << "replica at epoch " << replica_epoch << " is not the state after " << dev->writes_done
      << " writes";

  // Nothing released that the replica does not contain: after failover no
  // client could see a message "forgotten".
  EXPECT_LT(log.max_message, static_cast<int64_t>(dev->messages_emitted));

  auto fo = secondary->failover();
  ASSERT_TRUE(fo) << fo.error().to_string();
  EXPECT_EQ(fo->epoch(), replica_epoch);
  EXPECT_NE(fo->message().find("replica == replay"), std::string::npos) << fo->message();
  // Split-brain guard: a second failover is refused.
  EXPECT_FALSE(secondary->failover());
}

INSTANTIATE_TEST_SUITE_P(Seeds, KillPrimaryTest, ::testing::Values(1, 2, 3));

TEST(SecondaryRejects, WrongVmNameAndGeometryWithClearErrors) {
  TempDir work;
  TempDir replica_dir("/dev/shm");
  const int rep_port = free_port();
  // Control on unix sockets: a TCP control address needs TLS or --insecure.
  const std::string sec_ctl = "unix:" + (work.path() / "secondary.ctl").string();
  const std::string pri_ctl = "unix:" + (work.path() / "primary.ctl").string();
  auto sec_args = workload_flags();
  sec_args.insert(sec_args.end(),
                  {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", rep_port),
                   "--replica-dir", replica_dir.path().string()});
  auto secondary = Daemon::start(sec_args, sec_ctl, (work.path() / "secondary.log").string());
  ASSERT_TRUE(secondary) << secondary.error().to_string();
  // A primary for another VM name with a different memory size.
  auto primary = Daemon::start({"--role", "primary", "--vm", "other", "--memory-mib", "32",
                                "--peer", fmt::format("127.0.0.1:{}", rep_port)},
                               pri_ctl, (work.path() / "primary.log").string());
  ASSERT_TRUE(primary) << primary.error().to_string();
  ASSERT_TRUE(wait_until(
      [&] {
        auto p = primary->status();
        return p && p->detail().find("not 'other'") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << "the primary's status should carry the secondary's reason";
  auto p = primary->status();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state(), v1::VM_STATE_DEGRADED);
  EXPECT_EQ(p->acked_epoch(), 0u);
  auto s = secondary->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->epoch(), 0u);
  EXPECT_EQ(s->state(), v1::VM_STATE_WAITING);
  // The secondary's own status says whom it refused and why.
  EXPECT_NE(s->detail().find("refused primary"), std::string::npos) << s->detail();
  EXPECT_NE(s->detail().find("not 'other'"), std::string::npos) << s->detail();
  std::ifstream in(work.path() / "secondary.log");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("this secondary protects VM 'vm0', not 'other'"), std::string::npos)
      << ss.str();
  // Failover with nothing consistent is refused, clearly.
  auto fo = secondary->failover();
  ASSERT_FALSE(fo);
  EXPECT_NE(fo.error().message.find("no consistent checkpoint"), std::string::npos);
}

}  // namespace
}  // namespace ftd::testing
