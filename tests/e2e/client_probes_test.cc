// Parsing of the client probes' output, on canned text (no network needed).
#include "tests/e2e/client_probes.h"

#include <gtest/gtest.h>

#include "tests/e2e/process_tree.h"

namespace ftd::testing {
namespace {

TEST(ParsePing, RepliesGapAndSummary) {
  auto r = parse_ping(
      "PING 10.77.0.2 (10.77.0.2) 56(84) bytes of data.\n"
      "[1700000000.000000] 64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=50.1 ms\n"
      "[1700000000.050000] 64 bytes from 10.77.0.2: icmp_seq=2 ttl=64 time=49.0 ms\n"
      "[1700000000.080000] From 10.77.0.10 icmp_seq=3 Destination Host Unreachable\n"
      "[1700000001.550000] 64 bytes from 10.77.0.2: icmp_seq=31 ttl=64 time=60 ms\n"
      "[1700000001.600000] 64 bytes from 10.77.0.2: icmp_seq=32 ttl=64 time=55.5 ms\n"
      "\n--- 10.77.0.2 ping statistics ---\n"
      "32 packets transmitted, 4 received, +1 errors, 87.5% packet loss, time 1600ms\n");
  ASSERT_EQ(r.replies.size(), 4u);
  EXPECT_EQ(r.replies[2].seq, 31u);
  EXPECT_DOUBLE_EQ(r.replies[3].rtt_ms, 55.5);
  EXPECT_NEAR(r.longest_gap_ms, 1500, 1e-3);
  EXPECT_NEAR(r.longest_gap_end_unix_s, 1700000001.55, 1e-6);
  EXPECT_EQ(r.transmitted, 32u);
  EXPECT_EQ(r.received, 4u);
  EXPECT_DOUBLE_EQ(r.loss_pct, 87.5);
  EXPECT_EQ(replies_between(r, 1700000000.0, 1700000001.0), 2u);
  EXPECT_EQ(replies_between(r, 1700000001.0, 1700000002.0), 2u);
}

TEST(ParsePing, EmptyAndGarbageGiveNothing) {
  auto r = parse_ping("ping: connect: Network is unreachable\nrandom [1.5] bytes\n");
  EXPECT_TRUE(r.replies.empty());
  EXPECT_EQ(r.transmitted, 0u);
  EXPECT_EQ(r.longest_gap_ms, 0);
}

// A verdict can fail with nothing lost, duplicated or reordered (a guest that
// replayed state breaks the server counter; a reset connection sets error):
// the summary must carry what made it fail, not only the three counters.
TEST(RecordSummary, KeepsEveryReasonAVerdictFailed) {
  const auto j = nlohmann::json::parse(R"({"ok": false, "sent": 10, "received": 10, "lost": 0,
      "duplicated": 0, "reordered": 0, "server_seq_breaks": 1, "unknown": 2,
      "error": "server closed the connection", "longest_gap_ms": 900.5,
      "longest_gap_before_seq": 7, "latency_p99_ms": 40.0})");
  const auto s = record_summary(j, 1);
  EXPECT_FALSE(s["ok"].get<bool>());
  EXPECT_EQ(s["server_seq_breaks"], 1);
  EXPECT_EQ(s["unknown"], 2);
  EXPECT_EQ(s["error"], "server closed the connection");
  EXPECT_EQ(s["longest_gap_before_seq"], 7);
  EXPECT_EQ(s["exit_code"], 1);
  // A verdict missing the counters reads as "not known", never as 0.
  const auto empty = record_summary(nlohmann::json::object(), 1);
  EXPECT_EQ(empty["lost"], -1);
  EXPECT_EQ(empty["duplicated"], -1);
  EXPECT_FALSE(empty["ok"].get<bool>());
}

TEST(ProcessTree, FindsOwnChildrenAndRefusesNonQemu) {
  auto child = Subprocess::spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(child);
  auto kids = child_pids(::getpid());
  EXPECT_NE(std::find(kids.begin(), kids.end(), child->pid()), kids.end());
  EXPECT_TRUE(qemu_children(::getpid()).empty());
  EXPECT_FALSE(kill_if_qemu(child->pid())) << "must never signal a non-QEMU process";
  EXPECT_TRUE(child->running());
}

}  // namespace
}  // namespace ftd::testing
