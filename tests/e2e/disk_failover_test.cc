// Disk replication on the real guest (issue 9): a protected VM with an ext4
// disk (ProtectedPair disk_mib), the guest appending numbered records with
// fsync and reporting each over a live TCP connection (ftd-guest-disklog).
//  1. Quiesced: the guest unmounts its disk; the replica image must then be
//     byte for byte the primary's image, and fsck-clean.
//  2. The primary host is powered off mid-write-storm and the secondary
//     fails over: the same TCP connection goes on with the next record
//     number, and after the standby QEMU stops, the replica image is
//     fsck-clean and holds every record from 1 to the last the guest
//     reported, each exactly once, and none beyond.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include "proto/status_mapping.h"
#include "tests/e2e/disk_log_client.h"
#include "tests/e2e/disk_log_failover.h"
#include "tests/e2e/process_tree.h"
#include "tests/e2e/protected_pair.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kDiskMib = 64;

class DiskFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = ProtectedPair::start({.arbiter = "none", .disk_mib = kDiskMib});
    ASSERT_TRUE(pair) << pair.error().to_string();
    pair_ = std::move(*pair);
  }
  void TearDown() override {
    if (HasFailure() && pair_)
      std::printf("%s\n----- primary serial -----\n%s\n----- secondary serial -----\n%s\n",
                  pair_->logs().c_str(), console_events("primary-run/serial.log").c_str(),
                  console_events("secondary-run/serial.log").c_str());
    if (HasFailure() && pair_ && std::getenv("FTD_E2E_LOG_DIR"))
      (void)pair_->copy_logs(std::getenv("FTD_E2E_LOG_DIR"));
  }
  // The guest's console without its tick lines.
  std::string console_events(const std::string& name) const {
    std::string out, line;
    std::istringstream in(slurp(pair_->path(name)));
    while (std::getline(in, line))
      if (line.find("ftd-tick") == std::string::npos) out += line + "\n";
    return out;
  }
  Result<std::unique_ptr<DiskLogClient>> connect() {
    return DiskLogClient::connect(pair_->lan(), HostId::kClient, kGuestIp, kDiskLogPort, 60s);
  }

  std::unique_ptr<ProtectedPair> pair_;
};

TEST_F(DiskFailoverTest, FsyncedRecordsSurvivePrimaryHostLoss) {
  Daemon& primary = pair_->primary();
  const auto t0 = std::chrono::steady_clock::now();
  auto disk = wait_disk_protected(primary);
  ASSERT_TRUE(disk) << disk.error().to_string();
  auto st = primary.status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->disk_bytes(), uint64_t{kDiskMib} << 20);
  std::printf("[e2e] disk protected %.1f s after the RAM (pair synced in %.1f s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              pair_->sync_seconds());

  // 1. Quiesced: every write the guest made is acknowledged, no more come.
  auto client = connect();
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_TRUE((*client)->wait_for(50, 120s)) << (*client)->progress().error;
  auto quiesced = (*client)->stop(60s);
  ASSERT_TRUE(quiesced) << quiesced.error().to_string();
  client->reset();
  auto primary_hash = file_hash(pair_->disk_image());
  auto replica_hash = file_hash(pair_->replica_disk());
  ASSERT_TRUE(primary_hash && replica_hash);
  std::printf("[e2e] quiesced after record %lu: primary image %016lx replica image %016lx\n",
              static_cast<unsigned long>(*quiesced), static_cast<unsigned long>(*primary_hash),
              static_cast<unsigned long>(*replica_hash));
  EXPECT_EQ(*primary_hash, *replica_hash) << "the replica disk differs from the primary's";
  EXPECT_TRUE(fsck_clean(pair_->replica_disk()));
  auto quiesced_records = records_in_image(pair_->replica_disk(), pair_->path("quiesced.log"));
  ASSERT_TRUE(quiesced_records) << quiesced_records.error().to_string();
  EXPECT_EQ(*quiesced_records, *quiesced);

  // 2. Write storm, then the primary host loses power.
  client = connect();
  ASSERT_TRUE(client) << client.error().to_string();
  auto fo = kill_primary_host_fail_over_disk_log(*pair_, **client, *quiesced + 100);
  ASSERT_TRUE(fo) << fo.error().to_string();
  std::printf(
      "[e2e] RESULT quiesced_record=%lu records_at_kill=%lu final_record=%lu "
      "records_on_replica=%lu failover_epoch=%lu activation_ms=%.1f\n",
      static_cast<unsigned long>(*quiesced), static_cast<unsigned long>(fo->at_kill),
      static_cast<unsigned long>(fo->final_record), static_cast<unsigned long>(fo->on_replica),
      static_cast<unsigned long>(fo->reply.epoch()), fo->reply.activation_us() / 1e3);
  // The same connection went on with the next record numbers.
  EXPECT_EQ(fo->end.breaks, 0u) << "record numbers lost, repeated or reordered on the stream";
  EXPECT_EQ(fo->end.first, *quiesced + 1);
  EXPECT_EQ(fo->end.last, fo->final_record);
  // Every record reported fsynced before the kill is there, and the guest
  // wrote on after the failover: exactly the records it reported.
  EXPECT_GE(fo->on_replica, fo->at_kill);
  EXPECT_EQ(fo->on_replica, fo->final_record);
}

}  // namespace
}  // namespace ftd::testing
