// The output-driven epoch policy shortens the time output waits, measured on
// real daemons: a protected pair (synthetic engine, real gRPC on loopback)
// whose workload emits 20 numbered output messages per second — each one
// stands for a response the guest sends, held under output commit until the
// checkpoint that covers it is acknowledged. The primary's own hold-time
// percentiles (ftctl status) are that response's added latency.
//
// Same test, same machine, one pair per policy: with `fixed` 200 ms epochs a
// message waits ~half to one epoch; with `output-driven` (5..200 ms) it waits
// ~one pause + one round trip + apply. The comparison is relative (medians,
// a factor of 3) so a loaded machine slows both and the test stays stable,
// while an output-driven loop that never wakes early (or wakes on the wrong
// signal) fails it. A third pair with no output shows the policy adds no
// checkpoints then.
#include <gtest/gtest.h>

#include <thread>

#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

struct Measured {
  double hold_p50_ms = 0;
  uint64_t by_output = 0, by_timer = 0;
  double checkpoints_per_sec = 0;
  std::string policy;
};

// Flags shared by both daemons: a small, lightly written guest so pauses are
// short and the epoch is what dominates the hold time.
std::vector<std::string> flags(const std::string& messages_per_sec) {
  return {"--vm",
          "vm0",
          "--memory-mib",
          "16",
          "--dirty-rate",
          "2000",
          "--seed",
          "3",
          "--messages-per-sec",
          messages_per_sec};
}

Measured run_pair(const std::vector<std::string>& policy_flags,
                  const std::string& messages_per_sec = "20") {
  TempDir work;
  TempDir replica_dir{"/dev/shm"};
  const int port = free_port();
  auto sec_args = flags(messages_per_sec);
  sec_args.insert(sec_args.end(),
                  {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", port),
                   "--replica-dir", replica_dir.path().string()});
  auto secondary = Daemon::start(sec_args, "unix:" + (work.path() / "s.ctl").string(),
                                 (work.path() / "s.log").string());
  EXPECT_TRUE(secondary) << (secondary ? "" : secondary.error().to_string());
  if (!secondary) return {};
  auto pri_args = flags(messages_per_sec);
  pri_args.insert(pri_args.end(), {"--role", "primary", "--peer", fmt::format("127.0.0.1:{}", port),
                                   "--output-log", (work.path() / "out.log").string()});
  pri_args.insert(pri_args.end(), policy_flags.begin(), policy_flags.end());
  auto primary = Daemon::start(pri_args, "unix:" + (work.path() / "p.ctl").string(),
                               (work.path() / "p.log").string());
  EXPECT_TRUE(primary) << (primary ? "" : primary.error().to_string());
  if (!primary) return {};
  EXPECT_TRUE(wait_for_acked_epoch(*primary, 5, 60s)) << slurp(work.path() / "p.log");
  // Steady state: ~80 messages, so the sync's long holds are a small minority.
  std::this_thread::sleep_for(4s * sanitizer_time_scale());
  auto st = primary->status();
  EXPECT_TRUE(st) << (st ? "" : st.error().to_string());
  if (!st) return {};
  // The daemon logs the policy it runs with at start.
  EXPECT_NE(slurp(work.path() / "p.log").find("checkpoint.policy policy=" + st->epoch_policy()),
            std::string::npos);
  return {st->output_hold_p50_ms(), st->checkpoints_by_output(), st->checkpoints_by_timer(),
          st->checkpoints_per_sec(), st->epoch_policy()};
}

TEST(EpochPolicy, OutputDrivenReleasesResponsesWithinAPauseAndARoundTrip) {
  const Measured fixed = run_pair({"--epoch-policy", "fixed", "--epoch-ms", "200"});
  const Measured driven =
      run_pair({"--epoch-policy", "output-driven", "--epoch-min-ms", "5", "--epoch-max-ms", "200"});
  fmt::print("fixed 200 ms: hold p50 {:.1f} ms, {:.1f} ckpt/s (output {} timer {})\n",
             fixed.hold_p50_ms, fixed.checkpoints_per_sec, fixed.by_output, fixed.by_timer);
  fmt::print("output-driven 5..200 ms: hold p50 {:.1f} ms, {:.1f} ckpt/s (output {} timer {})\n",
             driven.hold_p50_ms, driven.checkpoints_per_sec, driven.by_output, driven.by_timer);
  EXPECT_EQ(fixed.policy, "fixed");
  EXPECT_EQ(driven.policy, "output-driven");
  EXPECT_EQ(fixed.by_output, 0u);
  EXPECT_GT(fixed.by_timer, 0u);
  // 20 messages/s against a 200 ms max: nearly every checkpoint is for output.
  EXPECT_GT(driven.by_output, driven.by_timer);
  ASSERT_GT(fixed.hold_p50_ms, 0.0);
  ASSERT_GT(driven.hold_p50_ms, 0.0);
  EXPECT_LT(driven.hold_p50_ms * 3, fixed.hold_p50_ms)
      << "output-driven should release output in ~a pause + a round trip, not ~an epoch";
}

TEST(EpochPolicy, OutputDrivenAddsNoCheckpointsWithoutOutput) {
  const Measured quiet = run_pair(
      {"--epoch-policy", "output-driven", "--epoch-min-ms", "5", "--epoch-max-ms", "100"}, "0");
  fmt::print("output-driven 5..100 ms, no output: {:.1f} ckpt/s (output {} timer {})\n",
             quiet.checkpoints_per_sec, quiet.by_output, quiet.by_timer);
  EXPECT_EQ(quiet.by_output, 0u);
  EXPECT_GT(quiet.by_timer, 0u);
  EXPECT_LE(quiet.checkpoints_per_sec, 11.0);  // the max interval's rate (5 s window edges)
}

TEST(EpochPolicy, InvertedBoundsAreRefusedAtStart) {
  TempDir work;
  std::vector<std::string> argv = {built_binary("daemon/ftd")};
  auto args = flags("20");
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--role", "primary", "--peer", "127.0.0.1:1", "--control",
                           "unix:" + (work.path() / "r.ctl").string(), "--epoch-policy",
                           "output-driven", "--epoch-min-ms", "50", "--epoch-max-ms", "10"});
  const std::string log = (work.path() / "r.log").string();
  auto ftd = Subprocess::spawn({.argv = argv, .log_path = log});
  ASSERT_TRUE(ftd) << ftd.error().to_string();
  auto code = ftd->wait(30s);
  ASSERT_TRUE(code) << "ftd did not exit";
  EXPECT_EQ(*code, 2) << slurp(log);
  EXPECT_NE(slurp(log).find("epoch max 10 ms is below epoch min 50 ms"), std::string::npos)
      << slurp(log);
}

}  // namespace
}  // namespace ftd::testing
