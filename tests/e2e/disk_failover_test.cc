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

#include <fstream>
#include <sstream>

#include "common/hash.h"
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

// At a quiesced epoch: `replica` equals `source` byte for byte (xxh3), is
// fsck-clean and holds exactly records 1..`records` (`scratch`: a dump file).
void expect_quiesced_copy(const std::string& what, const std::string& source,
                          const std::string& replica, uint64_t records,
                          const std::string& scratch) {
  auto source_hash = file_hash(source);
  auto replica_hash = file_hash(replica);
  ASSERT_TRUE(source_hash && replica_hash);
  std::printf("[e2e] %s, quiesced after record %lu: source %016lx replica %016lx\n", what.c_str(),
              static_cast<unsigned long>(records), static_cast<unsigned long>(*source_hash),
              static_cast<unsigned long>(*replica_hash));
  EXPECT_EQ(*source_hash, *replica_hash) << what << ": the replica differs from its source";
  EXPECT_TRUE(fsck_clean(replica));
  auto in_image = records_in_image(replica, scratch);
  ASSERT_TRUE(in_image) << in_image.error().to_string();
  EXPECT_EQ(*in_image, records);
}

class DiskFailoverTest : public ::testing::Test {
 protected:
  virtual PairOptions options() const { return {.arbiter = "none", .disk_mib = kDiskMib}; }
  void SetUp() override {
    auto pair = ProtectedPair::start(options());
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
  expect_quiesced_copy("primary image -> replica", pair_->disk_image(), pair_->replica_disk(),
                       *quiesced, pair_->path("quiesced.log"));
  if (HasFatalFailure()) return;

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

// Re-protection with a disk: after the failover above, the survivor is
// protected back to the returning old primary host (`ftctl protect --peer`);
// the mirror copies the running disk there, the record log goes on
// throughout, the returned host's replica equals the running image at a
// quiesced epoch, and a second failover (the survivor's host killed) runs the
// guest on that replica with every record.
TEST_F(DiskFailoverTest, ReprotectedToTheReturningHostAndFailedOverAgain) {
  Daemon& secondary = pair_->secondary();
  ASSERT_TRUE(wait_disk_protected(pair_->primary()));
  auto client = connect();
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_TRUE((*client)->wait_for(30, 120s)) << (*client)->progress().error;

  // 1. The primary host dies; the secondary runs the guest on its replica disk.
  ASSERT_TRUE(secondary.status());
  ASSERT_TRUE(pair_->lan().kill_host(HostId::kPrimary));
  const uint64_t at_kill = (*client)->progress().last;
  auto fo = secondary.failover();
  ASSERT_TRUE(fo) << fo.error().to_string();
  ASSERT_TRUE((*client)->wait_for(at_kill + 20, 120s)) << (*client)->progress().error;

  // 2. The old primary host returns empty; protect the survivor to it.
  auto back = pair_->return_as_secondary(HostId::kPrimary);
  ASSERT_TRUE(back) << back.error().to_string();
  const auto t_protect = std::chrono::steady_clock::now();
  auto reply = secondary.protect(HostLan::address(HostId::kPrimary) + ":7400");
  ASSERT_TRUE(reply) << reply.error().to_string();
  std::string last;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = secondary.status();
        auto r = (*back)->status();
        if (s && r)
          last = fmt::format("{} {} disk {} / returned host: disk {}", state_name(s->state()),
                             s->detail(), s->disk_detail(), r->disk_detail());
        return s && r && s->role() == "primary" && s->state() == v1::VM_STATE_PROTECTED &&
               s->disk_protected() && r->disk_protected();
      },
      240s))
      << "not protected again with its disk: " << last;
  const double reprotect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_protect).count();
  const uint64_t at_protected = (*client)->progress().last;

  // 3. Quiesced: the returned host's replica is the running guest's image.
  ASSERT_TRUE((*client)->wait_for(at_protected + 30, 120s)) << (*client)->progress().error;
  auto quiesced = (*client)->stop(60s);
  ASSERT_TRUE(quiesced) << quiesced.error().to_string();
  EXPECT_EQ((*client)->progress().breaks, 0u) << "record numbers lost, repeated or reordered";
  client->reset();
  std::printf("[e2e] re-protected in %.1f s\n", reprotect_s);
  expect_quiesced_copy("running image -> returned host's replica", pair_->replica_disk(),
                       pair_->returned_replica_disk(), *quiesced, pair_->path("reprotected.log"));
  if (HasFatalFailure()) return;

  // 4. The survivor's host dies too: the returned host runs the guest on its
  // replica, and the record log goes on there.
  client = connect();
  ASSERT_TRUE(client) << client.error().to_string();
  DiskLogClient& log = **client;
  ASSERT_TRUE(log.wait_for(*quiesced + 30, 120s)) << log.progress().error;
  ASSERT_TRUE((*back)->status());
  ASSERT_TRUE(pair_->lan().kill_host(HostId::kSecondary));
  const uint64_t at_kill2 = log.progress().last;
  auto fo2 = (*back)->failover();
  ASSERT_TRUE(fo2) << fo2.error().to_string();
  ASSERT_TRUE(log.wait_for(at_kill2 + 20, 120s)) << log.progress().error;
  auto final_record = log.stop(60s);
  ASSERT_TRUE(final_record) << final_record.error().to_string();
  EXPECT_EQ(log.progress().breaks, 0u) << "record numbers lost, repeated or reordered";
  EXPECT_EQ(log.progress().first, *quiesced + 1);
  for (pid_t q : qemu_children((*back)->process().pid())) ASSERT_TRUE(kill_if_qemu(q));
  EXPECT_TRUE(fsck_clean(pair_->returned_replica_disk()));
  auto final_records = records_in_image(pair_->returned_replica_disk(), pair_->path("final.log"));
  ASSERT_TRUE(final_records) << final_records.error().to_string();
  std::printf(
      "[e2e] RESULT reprotect_s=%.1f quiesced_record=%lu second_kill_at=%lu final_record=%lu "
      "records_on_returned_replica=%lu activation_ms=%.1f/%.1f\n",
      reprotect_s, static_cast<unsigned long>(*quiesced), static_cast<unsigned long>(at_kill2),
      static_cast<unsigned long>(*final_record), static_cast<unsigned long>(*final_records),
      fo->activation_us() / 1e3, fo2->activation_us() / 1e3);
  EXPECT_GE(*final_records, at_kill2);
  EXPECT_EQ(*final_records, *final_record);
}

// A qcow2 image on the primary (`--disk PATH,format=qcow2`): the mirror
// copies what the guest sees, so the raw replica must equal the qcow2 image's
// guest-visible contents (qemu-img convert to raw) at a quiesced epoch.
class DiskQcow2Test : public DiskFailoverTest {
 protected:
  PairOptions options() const override {
    return {.arbiter = "none", .disk_mib = kDiskMib, .disk_format = "qcow2"};
  }
};

TEST_F(DiskQcow2Test, RawReplicaEqualsTheQcow2ImagesContents) {
  ASSERT_TRUE(wait_disk_protected(pair_->primary()));
  auto st = pair_->primary().status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->disk_bytes(), uint64_t{kDiskMib} << 20) << "the guest-visible size, not the file's";
  auto client = connect();
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_TRUE((*client)->wait_for(40, 120s)) << (*client)->progress().error;
  auto quiesced = (*client)->stop(60s);
  ASSERT_TRUE(quiesced) << quiesced.error().to_string();
  client->reset();
  // -U: QEMU holds the image's lock; nothing writes it while quiesced.
  const std::string as_raw = pair_->path("primary-as-raw.img");
  ASSERT_TRUE(run_command(
      {"qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", pair_->disk_image(), as_raw}, 60s));
  expect_quiesced_copy("qcow2 primary's contents -> raw replica", as_raw, pair_->replica_disk(),
                       *quiesced, pair_->path("qcow2.log"));
}

}  // namespace
}  // namespace ftd::testing
