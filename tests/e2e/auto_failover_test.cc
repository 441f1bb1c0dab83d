// Automatic failover end to end, with real QEMU guests, real ftd daemons and
// ftd-witness, every host its own network namespace (ProtectedPair on
// HostLan) and a client streaming TCP records and pings to the guest.
// One test per controlled failure; each checks who runs the VM afterwards,
// that the record stream lost, duplicated and reordered nothing, that the two
// sides never both released guest output, and prints one `[chaos] {json}`
// line (what deploy/chaos/ prints for an operator).
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "proto/status_mapping.h"
#include "tests/e2e/client_probes.h"
#include "tests/e2e/process_tree.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string failover_state(Daemon& d) {
  auto s = d.status();
  return s ? s->failover().state() : "unreachable";
}

// Polls both daemons every 50 ms on its own thread for the whole scenario and
// remembers the first moment each side ran the VM alone / released output:
// the split-brain check ("at no moment did both sides release").
class SideWatcher {
 public:
  SideWatcher(Daemon& primary, Daemon& secondary) : primary_(primary), secondary_(secondary) {
    thread_ = std::thread([this] { run(); });
  }
  ~SideWatcher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Primary: last time its released-output counter grew (unix s).
  double primary_last_release() const { return primary_last_release_; }
  // Secondary: first time it reported active (unix s, 0: never).
  double secondary_active_at() const { return secondary_active_at_; }
  std::string primary_states() const { return primary_states_; }
  std::string secondary_states() const { return secondary_states_; }

 private:
  void run() {
    uint64_t released = 0;
    std::string pstate, sstate;
    while (!stop_) {
      if (auto p = primary_.status()) {
        if (p->output_released() > released) {
          released = p->output_released();
          primary_last_release_ = unix_now_s();
        }
        note(pstate, primary_states_,
             std::string(state_name(p->state())) + "/" + p->failover().state());
      }
      if (auto s = secondary_.status()) {
        if (s->state() == v1::VM_STATE_ACTIVE && secondary_active_at_ == 0)
          secondary_active_at_ = unix_now_s();
        note(sstate, secondary_states_,
             std::string(state_name(s->state())) + "/" + s->failover().state());
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  static void note(std::string& last, std::string& log, const std::string& now) {
    if (now == last) return;
    last = now;
    log += (log.empty() ? "" : " > ") + now;
  }
  Daemon& primary_;
  Daemon& secondary_;
  std::atomic<bool> stop_{false};
  std::atomic<double> primary_last_release_{0};
  std::atomic<double> secondary_active_at_{0};
  std::string primary_states_, secondary_states_;  // read after stop()
  std::thread thread_;
};

class AutoFailover : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(PairOptions options) {
    auto pair = ProtectedPair::start(std::move(options));
    ASSERT_TRUE(pair) << pair.error().to_string();
    pair_ = std::move(*pair);
    auto ping = PingProbe::start(lan().ns(HostId::kClient), kGuestIp, pair_->path("ping.log"));
    ASSERT_TRUE(ping) << ping.error().to_string();
    ping_.emplace(std::move(*ping));
    auto records = RecordStream::start(lan().ns(HostId::kClient), kGuestIp,
                                       pair_->path("record.log"), pair_->path("record.json"),
                                       /*rate=*/50, /*recv_timeout_s=*/60);
    ASSERT_TRUE(records) << records.error().to_string();
    records_.emplace(std::move(*records));
    ASSERT_TRUE(wait_until([&] { return records_->progress_received().value_or(0) > 0; }, 60s))
        << "no record reply while protected\n"
        << pair_->tail("record.log");
    std::this_thread::sleep_for(3s);
    watcher_.emplace(pair_->primary(), pair_->secondary());
  }
  void TearDown() override {
    if (HasFailure() && pair_) std::printf("%s\n", pair_->logs().c_str());
  }

  HostLan& lan() { return pair_->lan(); }

  // Starts the primary's ftd again with --reattach (after kill_primary_daemon);
  // the watcher follows the new daemon.
  ::testing::AssertionResult restart_primary_reattached() {
    watcher_.reset();  // it polls the daemon object that is about to be replaced
    auto restarted = pair_->restart_primary_daemon({"--reattach"});
    if (!restarted) return ::testing::AssertionFailure() << restarted.error().to_string();
    watcher_.emplace(pair_->primary(), pair_->secondary());
    return ::testing::AssertionSuccess();
  }
  // Waits until `d` reports `state` (and, with `as_primary`, the primary
  // role); a failure names the last state seen.
  ::testing::AssertionResult reaches(Daemon& d, v1::VmState state, std::chrono::seconds timeout,
                                     bool as_primary = false) {
    std::string last;
    if (wait_until(
            [&] {
              auto s = d.status();
              if (s) last = fmt::format("{} {} {}", s->role(), state_name(s->state()), s->detail());
              return s && s->state() == state && (!as_primary || s->role() == "primary");
            },
            timeout))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "never " << (as_primary ? "primary and " : "")
                                         << state_name(state) << "; last: " << last;
  }
  ::testing::AssertionResult primary_reaches(v1::VmState state, std::chrono::seconds timeout) {
    return reaches(pair_->primary(), state, timeout);
  }

  // Waits until the record stream answered something new, then `settle`, and
  // stops the clients. Returns the record verdict (asserted intact) and fills
  // the scenario's JSON line.
  void finish(json& line, double t_fault, std::chrono::seconds settle = 6s) {
    const uint64_t before = records_->progress_received().value_or(0);
    const bool resumed =
        wait_until([&] { return records_->progress_received().value_or(0) > before; }, 30s);
    std::this_thread::sleep_for(settle);
    watcher_->stop();
    auto verdict = records_->stop(90s);
    auto pings = ping_->stop();
    ASSERT_TRUE(verdict) << verdict.error().to_string();
    ASSERT_TRUE(pings) << pings.error().to_string();
    const auto& [j, exit_code] = *verdict;
    double first_after = 0;
    // First echo *sent* after the fault that was answered.
    for (const auto& p : pings->replies)
      if (p.unix_s - p.rtt_ms / 1e3 >= t_fault) {
        first_after = p.unix_s;
        break;
      }
    line["records"] = record_summary(j, exit_code);
    line["ping"] = {
        {"loss_pct", pings->loss_pct},
        {"longest_gap_ms", pings->longest_gap_ms},
        {"fault_to_first_reply_ms", first_after > 0 ? (first_after - t_fault) * 1e3 : -1.0}};
    line["primary_states"] = watcher_->primary_states();
    line["secondary_states"] = watcher_->secondary_states();
    std::printf("[chaos] %s\n", line.dump().c_str());
    RecordProperty("chaos", line.dump());
    EXPECT_TRUE(resumed) << "the record stream never resumed after the fault";
    EXPECT_TRUE(j.value("ok", false)) << j.dump();
    EXPECT_EQ(exit_code, 0);
    EXPECT_EQ(j.value("lost", -1), 0);
    EXPECT_EQ(j.value("duplicated", -1), 0);
    EXPECT_EQ(j.value("reordered", -1), 0);
    EXPECT_EQ(j.value("received", uint64_t{0}), j.value("sent", uint64_t{1}));
  }

  std::unique_ptr<ProtectedPair> pair_;
  std::optional<PingProbe> ping_;
  std::optional<RecordStream> records_;
  std::optional<SideWatcher> watcher_;
};

TEST_F(AutoFailover, PrimaryHostLossSecondaryActivatesByItself) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();
  json line{{"scenario", "kill-primary-host"},
            {"expected", "secondary active"},
            {"kill_to_active_ms", (t_active - t_kill) * 1e3}};
  finish(line, t_kill);
  EXPECT_EQ(pair_->secondary().status()->state(), v1::VM_STATE_ACTIVE);
}

// Re-protection (issue 8): the VM fails over, is protected again to its old
// host when that host returns (a fresh secondary there), and fails over back
// to it when the new primary's host dies. One TCP connection survives both;
// a protect to a host where no secondary listens fails first and changes nothing.
TEST_F(AutoFailover, ReprotectToReturningHostThenFailBack) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();

  auto nobody = pair_->secondary().protect(HostLan::address(HostId::kArbiter) + ":7400");
  ASSERT_FALSE(nobody) << "protect to a host without a secondary succeeded";
  std::printf("protect to nowhere: %s\n", nobody.error().message.c_str());
  auto alone = pair_->secondary().status();
  ASSERT_TRUE(alone);
  EXPECT_EQ(alone->state(), v1::VM_STATE_UNPROTECTED) << alone->detail();

  auto back = pair_->return_as_secondary(HostId::kPrimary);
  ASSERT_TRUE(back) << back.error().to_string();
  const double t_protect = unix_now_s();
  auto reply = pair_->secondary().protect(HostLan::address(HostId::kPrimary) + ":7400");
  ASSERT_TRUE(reply) << reply.error().to_string();
  ASSERT_TRUE(reaches(pair_->secondary(), v1::VM_STATE_PROTECTED, 240s, /*as_primary=*/true))
      << "not protected again";
  const double t_protected = unix_now_s();
  std::this_thread::sleep_for(3s);

  const double t_kill2 = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kSecondary));
  ASSERT_TRUE(wait_until([&] { return failover_state(**back) == "active"; }, 30s))
      << "returned host did not take the VM back: " << failover_state(**back);
  const double t_active2 = unix_now_s();
  json line{{"scenario", "failover-reprotect-failback"},
            {"expected", "VM back on the returned host, stream intact"},
            {"kill_to_active_ms", (t_active - t_kill) * 1e3},
            {"reprotect_s", t_protected - t_protect},
            {"kill_to_active_back_ms", (t_active2 - t_kill2) * 1e3}};
  finish(line, t_kill);
  EXPECT_EQ((*back)->status()->state(), v1::VM_STATE_ACTIVE);
}

TEST_F(AutoFailover, SecondaryHostLossPrimaryRunsAlone) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kSecondary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->primary()) == "degraded"; }, 30s))
      << "primary did not go degraded: " << failover_state(pair_->primary());
  const double t_alone = unix_now_s();
  json line{{"scenario", "kill-secondary-host"},
            {"expected", "primary degraded (runs alone)"},
            {"kill_to_alone_ms", (t_alone - t_kill) * 1e3}};
  finish(line, t_kill);
  auto s = pair_->primary().status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state(), v1::VM_STATE_DEGRADED);
  EXPECT_EQ(s->output_held(), 0u) << "running alone must not hold output";
}

// The secondary's host dies, the primary runs alone; the host returns with
// its old (now stale) replica on disk and joins as secondary: `protect` on
// the primary resynchronises it and the VM is protected again, the stream
// intact. (The stale epoch is never activated: only a full resync makes it
// a replica again.)
TEST_F(AutoFailover, PrimaryRanAloneReprotectedToReturningSecondary) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kSecondary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->primary()) == "degraded"; }, 30s))
      << "primary did not go degraded: " << failover_state(pair_->primary());
  std::this_thread::sleep_for(2s);
  auto back = pair_->return_as_secondary(HostId::kSecondary);
  ASSERT_TRUE(back) << back.error().to_string();
  auto stale = (*back)->status();
  ASSERT_TRUE(stale);
  const uint64_t stale_epoch = stale->epoch();
  const double t_protect = unix_now_s();
  auto reply = pair_->primary().protect();
  ASSERT_TRUE(reply) << reply.error().to_string();
  std::string last;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = pair_->primary().status();
        if (s) last = std::string(state_name(s->state())) + " " + s->detail();
        return s && s->state() == v1::VM_STATE_PROTECTED;
      },
      240s))
      << "not protected again: " << last;
  const double t_protected = unix_now_s();
  auto replica = (*back)->status();
  ASSERT_TRUE(replica);
  json line{{"scenario", "alone-then-reprotect"},
            {"expected", "primary protected again to the returned secondary"},
            {"stale_replica_epoch", stale_epoch},
            {"replica_epoch_after", replica->epoch()},
            {"reprotect_s", t_protected - t_protect}};
  finish(line, t_kill);
  EXPECT_EQ(replica->state(), v1::VM_STATE_PROTECTED);
  EXPECT_EQ(pair_->primary().status()->state(), v1::VM_STATE_PROTECTED);
}

TEST_F(AutoFailover, PartitionWithWitnessReachablePrimaryKeepsTheVm) {
  const double t_cut = unix_now_s();
  ASSERT_TRUE(lan().partition(HostId::kPrimary, HostId::kSecondary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->primary()) == "degraded"; }, 30s))
      << "primary did not go degraded: " << failover_state(pair_->primary());
  const double t_alone = unix_now_s();
  // Far longer than the lease: the secondary must never take the VM.
  std::this_thread::sleep_for(5s);
  ASSERT_TRUE(lan().heal(HostId::kPrimary, HostId::kSecondary));
  std::this_thread::sleep_for(3s);
  auto sec = pair_->secondary().status();
  ASSERT_TRUE(sec);
  json line{{"scenario", "partition-primary-secondary"},
            {"expected", "primary degraded, secondary never active"},
            {"cut_to_alone_ms", (t_alone - t_cut) * 1e3},
            {"secondary_arbiter", sec->failover().arbiter_evidence()}};
  finish(line, t_cut);
  EXPECT_EQ(watcher_->secondary_active_at(), 0) << "the secondary activated: two copies";
  EXPECT_NE(sec->state(), v1::VM_STATE_ACTIVE);
  // After the heal the witness still refuses: the replica is stale.
  EXPECT_NE(sec->failover().arbiter_evidence().find("ran alone"), std::string::npos)
      << sec->failover().arbiter_evidence();
}

TEST_F(AutoFailover, PrimaryIsolatedSecondaryTakesOverPrimaryFences) {
  const double t_cut = unix_now_s();
  ASSERT_TRUE(lan().isolate(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();
  auto held = pair_->primary().status();
  ASSERT_TRUE(held);
  ASSERT_TRUE(lan().reconnect(HostId::kPrimary));
  const bool fenced = wait_until([&] { return failover_state(pair_->primary()) == "fenced"; }, 20s);
  json line{{"scenario", "isolate-primary"},
            {"expected", "secondary active, primary holds then fenced"},
            {"cut_to_active_ms", (t_active - t_cut) * 1e3},
            {"primary_state_while_cut", held->failover().state()},
            {"primary_fenced_after_reconnect", fenced}};
  finish(line, t_cut);
  EXPECT_TRUE(fenced) << "primary: " << failover_state(pair_->primary());
  EXPECT_EQ(pair_->primary().status()->state(), v1::VM_STATE_FENCED);
  // Split brain check: the primary released nothing once the secondary ran.
  ASSERT_GT(watcher_->secondary_active_at(), 0);
  EXPECT_LT(watcher_->primary_last_release(), watcher_->secondary_active_at())
      << "the primary released output after the secondary activated";
}

TEST_F(AutoFailover, ArbiterLossChangesNothing) {
  ASSERT_TRUE(pair_->kill_witness());
  std::this_thread::sleep_for(4s);  // 4 leases
  const std::string p1 = failover_state(pair_->primary());
  const std::string s1 = failover_state(pair_->secondary());
  EXPECT_EQ(p1, "protected");
  EXPECT_EQ(s1, "standby");
  EXPECT_EQ(pair_->primary().status()->state(), v1::VM_STATE_PROTECTED);
  // Restarted from its state file, the witness still arbitrates: a later
  // primary loss fails over (after a full lease: it cannot know the last renewal).
  ASSERT_TRUE(pair_->restart_witness());
  std::this_thread::sleep_for(1s);
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  json line{
      {"scenario", "kill-arbiter"},
      {"expected", "no change without the witness; after its restart a primary loss fails over"},
      {"states_without_witness", p1 + "/" + s1},
      {"kill_to_active_ms", (unix_now_s() - t_kill) * 1e3}};
  finish(line, t_kill);
}

TEST_F(AutoFailover, LossyReplicationLinkChangesNothing) {
  // netem is not in every kernel: 5 % random loss with nftables instead.
  const double t0 = unix_now_s();
  ASSERT_TRUE(lan().lose(HostId::kPrimary, HostId::kSecondary, 5));
  std::this_thread::sleep_for(15s);
  const std::string p = failover_state(pair_->primary());
  const std::string s = failover_state(pair_->secondary());
  auto st = pair_->primary().status();
  ASSERT_TRUE(lan().heal(HostId::kPrimary, HostId::kSecondary));
  json line{{"scenario", "lossy-replication-link"},
            {"expected", "stays protected, no failover"},
            {"loss_pct", 5},
            {"states", p + "/" + s},
            {"checkpoints_per_sec", st ? st->checkpoints_per_sec() : 0},
            {"lag_ms", st ? st->lag_ms() : 0}};
  finish(line, t0, 3s);
  EXPECT_EQ(p, "protected");
  EXPECT_EQ(s, "standby");
  EXPECT_EQ(watcher_->secondary_active_at(), 0);
  EXPECT_EQ(watcher_->primary_states(), "protected/protected");
}

// With a fencing command: the secondary powers the primary host off first.
class AutoFailoverFenced : public AutoFailover {
 protected:
  void SetUp() override { start({.fence_primary = true}); }
};

TEST_F(AutoFailoverFenced, PrimaryDaemonKilledSecondaryFencesTheOrphanedQemuThenActivates) {
  auto qemus = qemu_children(pair_->primary().process().pid());
  ASSERT_EQ(qemus.size(), 1u);
  const double t_kill = unix_now_s();
  ASSERT_TRUE(pair_->kill_primary_daemon());
  ASSERT_EQ(::kill(qemus[0], 0), 0) << "the primary's QEMU should survive its ftd";
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();
  // The fence ran before activation: the orphan is gone.
  const bool orphan_gone = wait_until([&] { return ::kill(qemus[0], 0) != 0; }, 2s);
  const std::string sec_log = pair_->tail("secondary.log", 200000);
  json line{{"scenario", "kill-primary-ftd+fence"},
            {"expected", "fence command powers the primary host off, then secondary active"},
            {"kill_to_active_ms", (t_active - t_kill) * 1e3},
            {"orphan_qemu_killed", orphan_gone}};
  finish(line, t_kill);
  EXPECT_TRUE(orphan_gone) << "the orphaned QEMU still runs after the fence";
  EXPECT_NE(sec_log.find("failover_fenced_peer"), std::string::npos);
}

TEST_F(AutoFailover, PrimaryDaemonKilledQemuSurvivesSecondaryTakesOver) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(pair_->kill_primary_daemon());
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 30s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();
  // The operator restarts the primary's ftd too late: it re-attaches to the
  // orphaned guest, learns that the secondary runs the VM (heartbeat role
  // `active`), and fences: guest stopped, nothing ever released.
  ASSERT_TRUE(restart_primary_reattached());
  ASSERT_TRUE(primary_reaches(v1::VM_STATE_FENCED, 30s));
  const double t_fenced = unix_now_s();
  auto fenced = pair_->primary().status();
  ASSERT_TRUE(fenced);
  EXPECT_EQ(fenced->output_released(), 0u) << "the stale guest's output left the host";
  json line{{"scenario", "kill-primary-ftd-only"},
            {"expected",
             "secondary active; the orphaned QEMU has no network (its proxy died); a late "
             "--reattach fences it"},
            {"kill_to_active_ms", (t_active - t_kill) * 1e3},
            {"late_reattach_to_fenced_ms", (t_fenced - t_active) * 1e3}};
  finish(line, t_kill);
  EXPECT_EQ(pair_->primary().status()->output_released(), 0u);
}

// Issue 12: only the primary's ftd dies (SIGKILL) while its QEMU keeps
// running; a new ftd started with --reattach takes the same QEMU over (QMP,
// guest RAM, its userfaultfd, the NIC socket QEMU listens on) and protects it
// again without a reboot. The heartbeat timeout is 100 x 50 ms = 5 s here so
// the restart fits inside it and the secondary does not fail over meanwhile;
// a later primary host loss must still fail over to it.
class PrimaryDaemonRestart : public AutoFailover {
 protected:
  void SetUp() override { start({.extra_args = {"--heartbeat-misses", "100"}}); }
};

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(PrimaryDaemonRestart, ReattachesToTheRunningGuestThenStillFailsOver) {
  auto qemus = qemu_children(pair_->primary().process().pid());
  ASSERT_EQ(qemus.size(), 1u) << "expected one QEMU under the primary ftd";
  const pid_t qemu_pid = qemus[0];
  auto before = pair_->primary().status();
  ASSERT_TRUE(before);
  const uint64_t epoch_before = before->epoch();

  const double t_kill = unix_now_s();
  ASSERT_TRUE(pair_->kill_primary_daemon());
  ASSERT_EQ(::kill(qemu_pid, 0), 0) << "QEMU died with its ftd";
  ASSERT_TRUE(restart_primary_reattached());
  const double t_up = unix_now_s();
  ASSERT_TRUE(primary_reaches(v1::VM_STATE_PROTECTED, 120s));
  const double t_protected = unix_now_s();
  auto after = pair_->primary().status();
  ASSERT_TRUE(after);
  // Epochs advance on the new daemon (it counts from 1 after its full sync).
  ASSERT_TRUE(wait_for_acked_epoch(pair_->primary(), after->epoch() + 20, 60s));
  EXPECT_EQ(failover_state(pair_->secondary()), "standby") << "the secondary failed over";

  // Same QEMU, never rebooted: the run directory's pid file names it, the
  // guest announced readiness once, and the new daemon says it re-attached.
  EXPECT_EQ(::kill(qemu_pid, 0), 0);
  EXPECT_EQ(std::stol(file_text(pair_->primary_run() + "/qemu.pid")), qemu_pid);
  EXPECT_EQ(count_of(file_text(pair_->primary_run() + "/serial.log"), "FTD-GUEST-READY"), 1u);
  const std::string log = file_text(pair_->path("primary.log"));
  const size_t second_life = log.find(fmt::format("qemu.reattached pid={}", qemu_pid));
  ASSERT_NE(second_life, std::string::npos) << "no re-attach line";
  // The dirty tracker of the second life is the first life's (uffd-wp re-armed on QEMU's uffd).
  auto tracker_of = [&](size_t from) {
    size_t at = log.find("tracking.choice", from);
    if (at == std::string::npos) return std::string("none");
    at = log.find("chosen=", at);
    return log.substr(at, log.find(' ', at) - at);
  };
  EXPECT_EQ(tracker_of(second_life), tracker_of(0));
  for (const char* evidence : {"qemu.reattach", "tracking.uffd_wp.rearmed", "tracking.choice",
                               "net.guest.connected", "tracking.audit_miss"})
    for (size_t at = log.find(evidence, second_life); at != std::string::npos;
         at = log.find(evidence, at + 1))
      std::printf("  %s\n", log.substr(at, log.find('\n', at) - at).c_str());
  EXPECT_EQ(log.find("tracking.audit_miss", second_life), std::string::npos);

  // A later loss of the primary host still fails over.
  std::this_thread::sleep_for(2s);
  const double t_kill2 = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 60s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  const double t_active = unix_now_s();
  json line{{"scenario", "restart-primary-ftd"},
            {"expected", "same QEMU re-attached, protected again, no reboot; later failover works"},
            {"qemu_pid", qemu_pid},
            {"epoch_before_kill", epoch_before},
            {"kill_to_daemon_up_ms", (t_up - t_kill) * 1e3},
            {"kill_to_protected_ms", (t_protected - t_kill) * 1e3},
            {"kill2_to_active_ms", (t_active - t_kill2) * 1e3}};
  finish(line, t_kill);
  EXPECT_EQ(line["records"].value("server_seq_breaks", -1), 0) << "the guest's server restarted";
}

// Issue 12, after a failover: the VM runs on this host's activated standby
// QEMU (RAM: the replica image). Its ftd dies (SIGKILL) and the operator
// starts it again as the primary with --reattach: the same QEMU is taken
// over (no reboot, same TCP connection) and protected to the old primary's
// host when that host returns.
TEST_F(PrimaryDaemonRestart, ActivatedStandbyReattachedAfterItsDaemonDied) {
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  ASSERT_TRUE(wait_until([&] { return failover_state(pair_->secondary()) == "active"; }, 60s))
      << "secondary did not activate: " << failover_state(pair_->secondary());
  auto qemus = qemu_children(pair_->secondary().process().pid());
  ASSERT_EQ(qemus.size(), 1u) << "expected one QEMU (the activated standby) under the ftd";
  const pid_t qemu_pid = qemus[0];
  const uint64_t before = records_->progress_received().value_or(0);
  ASSERT_TRUE(wait_until([&] { return records_->progress_received().value_or(0) > before; }, 30s))
      << "no record reply after the failover";

  watcher_.reset();  // it polls the daemon object that is about to be replaced
  const double t_kill_ftd = unix_now_s();
  ASSERT_TRUE(pair_->kill_secondary_daemon());
  ASSERT_EQ(::kill(qemu_pid, 0), 0) << "the activated guest died with its ftd";
  auto restarted = pair_->restart_secondary_as_primary({"--reattach"});
  ASSERT_TRUE(restarted) << restarted.error().to_string();
  const double t_up = unix_now_s();
  watcher_.emplace(pair_->primary(), pair_->secondary());
  auto back = pair_->return_as_secondary(HostId::kPrimary);
  ASSERT_TRUE(back) << back.error().to_string();
  ASSERT_TRUE(reaches(pair_->secondary(), v1::VM_STATE_PROTECTED, 180s, /*as_primary=*/true))
      << "the re-attached guest was never protected";
  const double t_protected = unix_now_s();
  auto now = pair_->secondary().status();
  ASSERT_TRUE(now);
  ASSERT_TRUE(wait_for_acked_epoch(pair_->secondary(), now->epoch() + 20, 60s));

  EXPECT_EQ(::kill(qemu_pid, 0), 0);
  EXPECT_EQ(std::stol(file_text(pair_->secondary_run() + "/qemu.pid")), qemu_pid);
  EXPECT_EQ(count_of(file_text(pair_->secondary_run() + "/serial.log"), "FTD-GUEST-READY"), 0u)
      << "the standby guest booted (it should only ever resume from the replica)";
  const std::string log = file_text(pair_->path("secondary.log"));
  EXPECT_NE(log.find(fmt::format("qemu.reattached pid={}", qemu_pid)), std::string::npos)
      << "no re-attach line";
  json line{{"scenario", "restart-failed-over-ftd"},
            {"expected", "activated standby re-attached, protected to the returned host"},
            {"qemu_pid", qemu_pid},
            {"kill_ftd_to_daemon_up_ms", (t_up - t_kill_ftd) * 1e3},
            {"kill_ftd_to_protected_ms", (t_protected - t_kill_ftd) * 1e3}};
  finish(line, t_kill);
  EXPECT_EQ(line["records"].value("server_seq_breaks", -1), 0) << "the guest's server restarted";
}

// Planned migration (issue 8): `ftctl migrate` hands the VM to the secondary
// at one final checkpoint and makes the old primary its secondary; the new
// primary protects it back by itself with a differential sync (only the
// pages that changed since the handover cross the wire). There and back
// twice, one TCP connection throughout.
class PlannedMigration : public AutoFailover {
 protected:
  void SetUp() override { start({.migratable = true}); }
};

TEST_F(PlannedMigration, ThereAndBackTwiceWithoutFullResync) {
  const double t_start = unix_now_s();
  Daemon* sides[2] = {&pair_->primary(), &pair_->secondary()};
  json runs = json::array();
  const uint64_t pages = (128ull << 20) / 4096;
  for (int i = 0; i < 4; ++i) {
    Daemon& from = *sides[i % 2];
    Daemon& to = *sides[(i + 1) % 2];
    const double t0 = unix_now_s();
    auto reply = from.migrate(120);
    ASSERT_TRUE(reply) << "migration " << i << ": " << reply.error().to_string();
    std::printf("migration %d: %s\n", i, reply->message().c_str());
    auto old_side = from.status();
    ASSERT_TRUE(old_side);
    EXPECT_EQ(old_side->role(), "secondary") << old_side->detail();
    std::string last;
    v1::VmStatus now;
    ASSERT_TRUE(wait_until(
        [&] {
          auto s = to.status();
          if (s) {
            now = *s;
            last = std::string(state_name(s->state())) + " " + s->detail();
          }
          return s && s->role() == "primary" && s->state() == v1::VM_STATE_PROTECTED;
        },
        120s))
        << "migration " << i << ": not protected in the new direction: " << last;
    const double t_protected = unix_now_s();
    runs.push_back({{"migration", i},
                    {"epoch", reply->epoch()},
                    {"downtime_ms", reply->downtime_us() / 1e3},
                    {"old_host_pause_ms", reply->pause_us() / 1e3},
                    {"final_checkpoint_pages", reply->final_checkpoint_pages()},
                    {"handover_total_ms", reply->total_us() / 1e3},
                    {"protected_again_s", t_protected - t0},
                    {"sync_pages_sent", now.sync_pages_sent()},
                    {"sync_pages_skipped", now.sync_pages_skipped()}});
    // No full resync: the old primary's image is the new primary's RAM at
    // the handover; only pages written since then differ.
    EXPECT_EQ(now.sync_pages_sent() + now.sync_pages_skipped(), pages);
    EXPECT_LT(now.sync_pages_sent(), pages / 4) << "migration " << i << " resynced in full";
    EXPECT_GT(reply->downtime_us(), 0);
    std::this_thread::sleep_for(2s);
  }
  json line{{"scenario", "planned-migration-there-and-back-twice"},
            {"expected", "VM back on its first host, protected, stream intact"},
            {"migrations", runs}};
  finish(line, t_start);
}

// A planned migration interrupted by the loss of the source host (issue 8):
// the host dies as soon as it has logged the handover of the final
// checkpoint, i.e. with the guest paused there and the handover on its way
// or not yet sent. Whichever way the race goes — the target activates from
// the final checkpoint, or fails over from its last acknowledged one — one
// copy runs, on the target, and the TCP stream loses and duplicates nothing.
TEST_F(PlannedMigration, SourceHostDiesMidHandoverTheTargetRunsTheOnlyCopy) {
  auto migration = std::async(std::launch::async, [&] { return pair_->primary().migrate(60); });
  auto handover = wait_for_line(pair_->path("primary.log"), "migration.handover", 60s);
  ASSERT_TRUE(handover) << handover.error().to_string();
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().kill_host(HostId::kPrimary));
  auto answer = migration.get();  // the daemon died: usually no answer
  std::printf("migrate answer: %s\n",
              answer ? answer->message().c_str() : answer.error().to_string().c_str());
  std::string last;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = pair_->secondary().status();
        if (s) last = std::string(state_name(s->state())) + " " + s->detail();
        return s && (s->state() == v1::VM_STATE_ACTIVE || s->role() == "primary");
      },
      30s))
      << "the target runs no copy: " << last;
  const double t_running = unix_now_s();
  json line{{"scenario", "planned-migration-source-host-dies-mid-handover"},
            {"expected", "the target runs the VM (handover or failover), stream intact"},
            {"target_after", last},
            {"kill_to_running_ms", (t_running - t_kill) * 1e3}};
  finish(line, t_kill);
}

// The mirror case (issue 8): the *target* host dies as soon as the source
// has logged the handover of its final checkpoint (unplugged first, ~30 ms,
// then powered off), so it dies before, while or just after it activates.
// The target never released anything (a migrated-to guest holds its output
// until its new secondary acks), so the source's paused guest is still what
// every client saw: the source must end as the only running copy, its guest
// resumed, the same TCP stream intact, and say that the migration failed.
// DISABLED: it fails today. Run of 2026-11-25 00:23: the target logged
// migration.takeover, the source got no answer (CANCELLED), its lease came
// back under a raised term (lease_regained_unshared=no) and it fenced
// itself: no copy ran. Safe, but the VM is lost; the fix (the target holds
// output until the source confirms the HandoverReply) is in docs/states.md,
// not built. Enable it with that fix.
TEST_F(PlannedMigration, DISABLED_TargetHostDiesMidHandoverTheSourceRunsTheOnlyCopy) {
  auto migration = std::async(std::launch::async, [&] { return pair_->primary().migrate(60); });
  auto handover = wait_for_line(pair_->path("primary.log"), "migration.handover", 60s);
  ASSERT_TRUE(handover) << handover.error().to_string();
  const double t_kill = unix_now_s();
  ASSERT_TRUE(lan().isolate(HostId::kSecondary));
  ASSERT_TRUE(lan().kill_host(HostId::kSecondary));
  auto answer = migration.get();
  const std::string answered =
      answer ? "ok: " + answer->message() : "error: " + answer.error().to_string();
  std::printf("migrate answer: %s\n", answered.c_str());
  EXPECT_FALSE(answer) << "a migration to a dead host reported success";
  std::string last;
  v1::VmStatus now;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = pair_->primary().status();
        if (!s) return false;
        now = *s;
        last = std::string(state_name(s->state())) + " " + s->detail();
        // Running alone (degraded): the peer is gone, the arbiter let it
        // release output.
        return s->role() == "primary" && s->state() == v1::VM_STATE_DEGRADED &&
               s->output_held() == 0;
      },
      90s))
      << "the source does not run the VM alone: " << last << " / "
      << failover_state(pair_->primary());
  const double t_running = unix_now_s();
  EXPECT_NE(now.detail().find("migration"), std::string::npos)
      << "the status does not say the migration failed: " << now.detail();
  json line{{"scenario", "planned-migration-target-host-dies-mid-handover"},
            {"expected", "the source resumes and runs the only copy, stream intact"},
            {"migrate_answer", answered},
            {"source_after", last},
            {"kill_to_running_alone_ms", (t_running - t_kill) * 1e3}};
  finish(line, t_kill);
}

}  // namespace
}  // namespace ftd::testing
