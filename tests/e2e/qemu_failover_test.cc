// End to end with real QEMU guests and real ftd daemons (qmp engine): the
// guest is protected by a primary/secondary pair, each daemon on its own
// host namespace (ProtectedPair on HostLan), a client in another namespace
// streams TCP records and pings to it, and
//  1. the primary host (QEMU + ftd) is SIGKILLed and the secondary takes over:
//     the same TCP connection continues with nothing lost, duplicated or
//     reordered, and the guest continues from its checkpoint (no reboot);
//  2. while the secondary cannot acknowledge (SIGSTOP), no reply leaves the
//     primary host; after SIGCONT traffic resumes (output commit).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "proto/status_mapping.h"
#include "tests/e2e/client_probes.h"
#include "tests/e2e/process_tree.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

// The pair of ProtectedPair with automatic failover off (arbiter "none"):
// these tests drive failover by hand (`ftctl failover`).
class QemuPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = ProtectedPair::start({.arbiter = "none"});
    ASSERT_TRUE(pair) << pair.error().to_string();
    pair_ = std::move(*pair);
    primary_ = &pair_->primary();
    secondary_ = &pair_->secondary();
    sync_s_ = pair_->sync_seconds();
    std::printf("[e2e] protected after %.1f s\n", sync_s_);
  }

  const std::string& client_ns() { return pair_->lan().ns(HostId::kClient); }
  std::string primary_run() const { return pair_->primary_run(); }
  std::string secondary_run() const { return pair_->secondary_run(); }
  std::string log(const std::string& name) const { return pair_->path(name); }
  std::string read_log(const std::string& name) const { return pair_->tail(name); }
  void print_logs_on_failure() {
    if (HasFailure())
      std::printf("%s\n----- record.log -----\n%s\n", pair_->logs().c_str(),
                  read_log("record.log").c_str());
  }

  std::unique_ptr<ProtectedPair> pair_;
  Daemon* primary_ = nullptr;
  Daemon* secondary_ = nullptr;
  double sync_s_ = 0;
};

TEST_F(QemuPairTest, PrimaryHostKilledTcpStreamContinuesOnSecondary) {
  auto ping = PingProbe::start(client_ns(), kGuestIp, log("ping.log"));
  ASSERT_TRUE(ping) << ping.error().to_string();
  auto records = RecordStream::start(client_ns(), kGuestIp, log("record.log"), log("record.json"),
                                     /*rate=*/50, /*recv_timeout_s=*/60);
  ASSERT_TRUE(records) << records.error().to_string();
  ASSERT_TRUE(wait_until([&] { return records->progress_received().value_or(0) > 0; }, 60s))
      << "no record reply before failover\n"
      << read_log("record.log");
  std::this_thread::sleep_for(5s);
  ASSERT_GT(ping->report().replies.size(), 0u) << "no ping reply before failover";

  // Fresh control connection to the secondary, so the failover call measures
  // the failover, not a reconnect.
  ASSERT_TRUE(secondary_->status());

  // The primary host dies: its QEMU and its ftd, with no warning.
  auto qemus = qemu_children(primary_->process().pid());
  ASSERT_EQ(qemus.size(), 1u) << "expected exactly one QEMU under the primary ftd";
  const double t_kill = unix_now_s();
  primary_->process().kill(SIGKILL);
  for (pid_t q : qemus) ASSERT_TRUE(kill_if_qemu(q));
  ASSERT_TRUE(primary_->process().wait(5s));

  const double t_failover = unix_now_s();
  auto fo = secondary_->failover();
  const double t_active = unix_now_s();
  ASSERT_TRUE(fo) << fo.error().to_string() << "\n" << read_log("secondary.log");
  std::printf("[e2e] failover: epoch %lu activation %.1f ms rpc %.1f ms: %s\n",
              static_cast<unsigned long>(fo->epoch()), fo->activation_us() / 1e3,
              (t_active - t_failover) * 1e3, fo->message().c_str());
  // The first progress line written after activation bounds from above how
  // many records had been sent before it; every later one is answered (if at
  // all) by the activated standby.
  const size_t lines_at_active = records->progress().lines;
  ASSERT_TRUE(wait_until([&] { return records->progress().lines > lines_at_active; }, 5s));
  const uint64_t sent_by_active = records->progress().sent;

  std::this_thread::sleep_for(8s);
  auto verdict = records->stop(90s);
  auto pings = ping->stop();
  ASSERT_TRUE(verdict) << verdict.error().to_string();
  ASSERT_TRUE(pings) << pings.error().to_string();
  const auto& [j, exit_code] = *verdict;
  std::printf("[e2e] record client: %s\n", j.dump().c_str());

  const uint64_t sent = j.value("sent", uint64_t{0});
  const uint64_t answered_after_failover = sent > sent_by_active ? sent - sent_by_active : 0;
  // Ping's outage: last reply before the kill -> first reply after it.
  double last_before = 0, first_after = 0;
  for (const auto& p : pings->replies) {
    if (p.unix_s < t_kill) last_before = p.unix_s;
    if (p.unix_s >= t_kill && first_after == 0) first_after = p.unix_s;
  }
  const double ping_outage_ms = first_after > 0 ? (first_after - last_before) * 1e3 : -1;
  const double kill_to_ping_ms = first_after > 0 ? (first_after - t_kill) * 1e3 : -1;
  const size_t pings_after = replies_between(*pings, t_active, unix_now_s() + 1);
  // Where ping lost echoes (reply time of the neighbours, relative to the kill).
  std::string missing;
  for (size_t i = 1; i < pings->replies.size(); ++i) {
    const auto &a = pings->replies[i - 1], &b = pings->replies[i];
    if (b.seq > a.seq + 1)
      missing += fmt::format(" seq {}-{} (at {:+.2f} s)", a.seq + 1, b.seq - 1, a.unix_s - t_kill);
  }
  std::printf("[e2e] ping echoes without reply:%s\n", missing.empty() ? " none" : missing.c_str());
  std::printf(
      "[e2e] RESULT sync_s=%.1f activation_ms=%.1f failover_rpc_ms=%.1f "
      "kill_to_first_ping_ms=%.0f ping_outage_ms=%.0f ping_tx=%lu ping_rx=%lu "
      "ping_loss_pct=%.1f ping_longest_gap_ms=%.0f record_longest_gap_ms=%.0f "
      "record_latency_p99_ms=%.0f records_answered_after_failover>=%lu\n",
      sync_s_, fo->activation_us() / 1e3, (t_active - t_failover) * 1e3, kill_to_ping_ms,
      ping_outage_ms, static_cast<unsigned long>(pings->transmitted),
      static_cast<unsigned long>(pings->received), pings->loss_pct, pings->longest_gap_ms,
      j.value("longest_gap_ms", 0.0), j.value("latency_p99_ms", 0.0),
      static_cast<unsigned long>(answered_after_failover));
  RecordProperty("activation_ms", fmt::format("{:.1f}", fo->activation_us() / 1e3));
  RecordProperty("failover_rpc_ms", fmt::format("{:.1f}", (t_active - t_failover) * 1e3));
  RecordProperty("kill_to_first_ping_ms", fmt::format("{:.0f}", kill_to_ping_ms));
  RecordProperty("ping_outage_ms", fmt::format("{:.0f}", ping_outage_ms));
  RecordProperty("ping_loss_pct", fmt::format("{:.1f}", pings->loss_pct));
  RecordProperty("ping_longest_gap_ms", fmt::format("{:.0f}", pings->longest_gap_ms));
  RecordProperty("record_longest_gap_ms", fmt::format("{:.0f}", j.value("longest_gap_ms", 0.0)));
  RecordProperty("records_answered_after_failover", std::to_string(answered_after_failover));

  EXPECT_TRUE(j.value("ok", false)) << j.dump();
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(j.value("lost", -1), 0);
  EXPECT_EQ(j.value("duplicated", -1), 0);
  EXPECT_EQ(j.value("reordered", -1), 0);
  EXPECT_EQ(j.value("server_seq_breaks", -1), 0);
  EXPECT_EQ(j.value("received", uint64_t{0}), sent);
  // ~8 s at 50/s were sent after activation; `ok` says each was answered once, in order.
  EXPECT_GT(answered_after_failover, 100u) << "no records answered after failover";
  EXPECT_GT(pings_after, 0u) << "the guest does not answer pings after failover";
  // Nothing answers while neither host runs the guest.
  EXPECT_EQ(replies_between(*pings, t_kill + 0.05, t_failover), 0u);

  // The guest was resumed, not rebooted: its tick counter continues (> 1) on the secondary.
  auto ticks = tick_numbers(secondary_run() + "/serial.log");
  ASSERT_FALSE(ticks.empty()) << "the activated guest printed no tick";
  EXPECT_GT(ticks.front(), 1u) << "the guest restarted from scratch";
  for (size_t i = 1; i < ticks.size(); ++i) ASSERT_EQ(ticks[i], ticks[i - 1] + 1);
  auto primary_ticks = tick_numbers(primary_run() + "/serial.log");
  ASSERT_FALSE(primary_ticks.empty());
  // The primary's console is not output-committed, so it may be ahead of the
  // checkpoint, never behind it.
  EXPECT_LE(ticks.front(), primary_ticks.back() + 1);
  std::printf("[e2e] ticks: primary last %lu, secondary first %lu last %lu\n",
              static_cast<unsigned long>(primary_ticks.back()),
              static_cast<unsigned long>(ticks.front()), static_cast<unsigned long>(ticks.back()));
  print_logs_on_failure();
}

TEST_F(QemuPairTest, NoFrameLeavesBeforeItsEpochIsAcked) {
  auto ping = PingProbe::start(client_ns(), kGuestIp, log("ping.log"));
  ASSERT_TRUE(ping) << ping.error().to_string();
  auto records = RecordStream::start(client_ns(), kGuestIp, log("record.log"), log("record.json"),
                                     /*rate=*/50, /*recv_timeout_s=*/60);
  ASSERT_TRUE(records) << records.error().to_string();
  ASSERT_TRUE(wait_until([&] { return records->progress_received().value_or(0) > 0; }, 60s))
      << read_log("record.log");
  std::this_thread::sleep_for(3s);
  ASSERT_GT(ping->report().replies.size(), 0u);

  // The secondary freezes: its replication stream stays open but no ack comes.
  const double t_stop = unix_now_s();
  secondary_->process().kill(SIGSTOP);
  // Acks already in flight may still release the epochs they cover.
  std::this_thread::sleep_for(1s);
  const double t_quiet = unix_now_s();
  const uint64_t records_quiet = records->progress_received().value_or(0);
  std::this_thread::sleep_for(4s);
  auto held = primary_->status();
  const uint64_t records_before_cont = records->progress_received().value_or(0);
  const double t_cont = unix_now_s();
  secondary_->process().kill(SIGCONT);

  std::this_thread::sleep_for(8s);
  auto verdict = records->stop(90s);
  auto pings = ping->stop();
  ASSERT_TRUE(verdict) << verdict.error().to_string();
  ASSERT_TRUE(pings) << pings.error().to_string();
  const auto& [j, exit_code] = *verdict;

  const size_t while_blocked = replies_between(*pings, t_quiet, t_cont);
  const size_t after_cont = replies_between(*pings, t_cont, unix_now_s() + 1);
  size_t released_late = 0;  // replies to requests sent while acks were blocked
  for (const auto& p : pings->replies)
    released_late += p.unix_s >= t_cont && p.unix_s - p.rtt_ms / 1000 < t_cont - 0.5;
  std::printf(
      "[e2e] RESULT stop_at=%.3f blocked_window_s=%.1f ping_replies_while_blocked=%zu "
      "ping_replies_after_cont=%zu of_which_held_then_released=%zu output_held=%lu "
      "records_during_block=%lu state=%s\n",
      t_stop, t_cont - t_quiet, while_blocked, after_cont, released_late,
      static_cast<unsigned long>(held ? held->output_held() : 0),
      static_cast<unsigned long>(records_before_cont - records_quiet),
      held ? std::string(state_name(held->state())).c_str() : "?");
  std::printf("[e2e] record client: %s\n", j.dump().c_str());
  RecordProperty("ping_replies_while_blocked", std::to_string(while_blocked));
  RecordProperty("ping_replies_after_cont", std::to_string(after_cont));

  EXPECT_EQ(while_blocked, 0u) << "a reply left the primary while its epoch was unacknowledged";
  EXPECT_EQ(records_before_cont, records_quiet) << "a TCP record reply escaped without an ack";
  ASSERT_TRUE(held) << held.error().to_string();
  EXPECT_GT(held->output_held(), 0u) << "the primary should be holding the guest's frames";
  EXPECT_GT(after_cont, 0u) << "traffic did not resume after the secondary came back";
  EXPECT_TRUE(j.value("ok", false)) << j.dump();
  EXPECT_EQ(exit_code, 0);
  EXPECT_GT(j.value("received", uint64_t{0}), records_before_cont);
  print_logs_on_failure();
}

}  // namespace
}  // namespace ftd::testing
