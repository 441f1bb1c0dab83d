// Two real ftd processes on loopback, the synthetic guest with a disk: every
// checkpoint carries the epoch's disk writes over gRPC. After the primary is
// SIGKILLed, the secondary's replica disk must equal the guest's disk at the
// replica's epoch (a replay of the disk writes its device state implies),
// `ftctl status` shows the disk fields, and a disk size that differs between
// the hosts is refused in the handshake with a clear error.
#include <gtest/gtest.h>
#include <signal.h>

#include "common/file_util.h"
#include "common/hash.h"
#include "synthetic/synthetic_engine.h"
#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

constexpr uint64_t kDiskMib = 8;

struct Pair {
  TempDir work;
  TempDir replica_dir{"/dev/shm"};
  int port = free_port();
  std::string sec_ctl = "unix:" + (work.path() / "secondary.ctl").string();
  std::string pri_ctl = "unix:" + (work.path() / "primary.ctl").string();
  std::optional<Daemon> secondary, primary;

  void start(uint64_t primary_disk_mib) {
    auto sec_args = workload_flags(32);
    sec_args.insert(
        sec_args.end(),
        {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", port), "--replica-dir",
         replica_dir.path().string(), "--disk-mib", std::to_string(kDiskMib)});
    auto s = Daemon::start(sec_args, sec_ctl, (work.path() / "secondary.log").string());
    ASSERT_TRUE(s) << s.error().to_string();
    secondary.emplace(std::move(*s));
    auto pri_args = workload_flags(32);
    pri_args.insert(pri_args.end(),
                    {"--role", "primary", "--peer", fmt::format("127.0.0.1:{}", port), "--epoch-ms",
                     "30", "--disk-mib", std::to_string(primary_disk_mib)});
    auto p = Daemon::start(pri_args, pri_ctl, (work.path() / "primary.log").string());
    ASSERT_TRUE(p) << p.error().to_string();
    primary.emplace(std::move(*p));
  }
  std::string ftctl_status(const std::string& ctl) {
    auto out = run_command({built_binary("tools/ftctl/ftctl"), "-c", ctl, "status"});
    return out ? *out : out.error().to_string();
  }
};

TEST(DiskReplica, ReplicaDiskEqualsTheGuestsDiskAtTheReplicaEpochAfterPrimaryKill) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start(kDiskMib));
  ASSERT_TRUE(wait_for_acked_epoch(*pair.primary, 25, std::chrono::seconds(60)))
      << slurp(pair.work.path() / "primary.log");
  const std::string pri_status = pair.ftctl_status(pair.pri_ctl);
  const std::string sec_status = pair.ftctl_status(pair.sec_ctl);
  EXPECT_NE(pri_status.find("disk 8.0 MiB  protected"), std::string::npos) << pri_status;
  EXPECT_NE(sec_status.find("disk 8.0 MiB  protected"), std::string::npos) << sec_status;
  auto p = pair.primary->status();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->disk_bytes(), kDiskMib << 20);
  EXPECT_TRUE(p->disk_protected()) << p->disk_detail();
  EXPECT_GT(p->disk_last_seq(), 0u);

  pair.primary->process().kill(SIGKILL);
  ASSERT_TRUE(pair.primary->process().wait(std::chrono::seconds(5)));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = pair.secondary->status();
        return s && s->state() == v1::VM_STATE_WAITING;
      },
      std::chrono::seconds(10)));
  auto sec = pair.secondary->status();
  ASSERT_TRUE(sec);
  EXPECT_TRUE(sec->disk_protected()) << sec->disk_detail();

  // The oracle: the synthetic guest's disk after the writes of the replica's epoch.
  const auto dir = pair.replica_dir.path();
  auto dev_blob = read_file((dir / "vm0.devstate").string());
  auto disk = read_file((dir / "vm0.disk").string());
  ASSERT_TRUE(dev_blob && disk);
  auto dev = SyntheticEngine::decode_device_state(*dev_blob);
  ASSERT_TRUE(dev) << dev.error().to_string();
  const uint64_t disk_writes = SyntheticDisk::writes_after(dev->writes_done);
  auto oracle = SyntheticDisk::replay(workload().seed, kDiskMib << 20, disk_writes);
  ASSERT_TRUE(oracle);
  EXPECT_GT(disk_writes, 100u);
  EXPECT_EQ(sec->disk_last_seq(), disk_writes);
  EXPECT_EQ(disk->size(), kDiskMib << 20);
  EXPECT_EQ(hash64(*disk), hash64(oracle->bytes()))
      << "replica disk at epoch " << sec->epoch() << " is not the guest's disk after "
      << disk_writes << " disk writes";
  RecordProperty("replica_epoch", std::to_string(sec->epoch()));
  RecordProperty("disk_writes", std::to_string(disk_writes));
  RecordProperty("disk_bytes_applied", std::to_string(sec->disk_bytes_applied()));

  auto fo = pair.secondary->failover();
  ASSERT_TRUE(fo) << fo.error().to_string();
  EXPECT_EQ(fo->epoch(), sec->epoch());
}

TEST(DiskReplica, DiskSizeMismatchIsRefusedInTheHandshake) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start(kDiskMib / 2));
  ASSERT_TRUE(wait_until(
      [&] {
        auto p = pair.primary->status();
        return p && p->detail().find("disk size mismatch") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << "the primary's status should carry the secondary's reason";
  auto p = pair.primary->status();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->acked_epoch(), 0u);
  EXPECT_NE(p->detail().find("primary's disk is 4194304 bytes"), std::string::npos) << p->detail();
  auto s = pair.secondary->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->epoch(), 0u);
  EXPECT_FALSE(s->disk_protected());
  EXPECT_FALSE(pair.secondary->failover());
}

}  // namespace
}  // namespace ftd::testing
