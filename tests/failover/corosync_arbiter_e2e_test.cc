// The corosync arbiter against a real corosync 3 + qdevice + qnetd cluster:
// hosts A and B (corosync nodes 1 and 2) and the qnetd host C, each in its own
// namespaces (tests/failover/corosync_cluster.h). ftd-arbiter-probe runs inside
// A and B and logs the verdict every 10 ms; the tests read those logs.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "tests/failover/corosync_cluster.h"
#include "tests/failover/probe_log.h"

namespace ftd::test {
namespace {

using namespace std::chrono_literals;

int env_int(const char* name, int fallback) {
  const char* v = ::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// The settle time the arbiter uses here; must exceed the measured loser
// window (docs/corosync.md). Overridable to explore the margin.
const int kSettleMs = env_int("FTD_COROSYNC_SETTLE_MS", 2000);

double ms_between(int64_t from_ns, int64_t to_ns) { return (to_ns - from_ns) / 1e6; }

class CorosyncArbiterE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    CorosyncClusterOptions options;
    options.realtime = env_int("FTD_COROSYNC_REALTIME", 0) != 0;
    auto c = CorosyncCluster::start(options);
    ASSERT_TRUE(c) << c.error().to_string();
    cluster_ = std::move(*c);
    for (Host h : {Host::kA, Host::kB}) {
      auto q = cluster_->wait_quorate(h, 3, 2, 60s);
      ASSERT_TRUE(q) << q.error().to_string();
    }
  }

  std::string probe_binary() const {
    const char* dir = ::getenv("FTD_BUILD_DIR");
    return fmt::format("{}/failover/ftd-arbiter-probe", dir ? dir : ".");
  }
  static Host peer_of(Host h) { return h == Host::kA ? Host::kB : Host::kA; }

  std::vector<std::string> probe_argv(Host h, std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv{probe_binary(), "--peer-nodeid",
                                  std::to_string(CorosyncCluster::nodeid(peer_of(h))),
                                  "--settle-ms", std::to_string(kSettleMs)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // Starts the polling probe on A and B and waits until both see the
  // connected, quorate pair.
  void start_probes() {
    for (Host h : {Host::kA, Host::kB}) {
      auto log = cluster_->spawn(h, "probe", probe_argv(h));
      ASSERT_TRUE(log) << log.error().to_string();
      probe_log_[static_cast<int>(h)] = *log;
      auto line = wait_for_line(
          *log, [](const ProbeLine& l) { return l.quorate && l.members.size() == 2; }, 20s);
      ASSERT_TRUE(line) << "probe on " << CorosyncCluster::name(h) << " never saw the pair";
    }
  }
  const std::string& probe_log(Host h) const { return probe_log_[static_cast<int>(h)]; }

  std::unique_ptr<CorosyncCluster> cluster_;
  std::string probe_log_[2];
};

// Connected pair: both quorate, both see each other, neither may run alone
// (acked output needs no arbiter; unacked output and activation do).
TEST_F(CorosyncArbiterE2E, ConnectedPairIsQuorateAndNobodyRunsAlone) {
  ASSERT_NO_FATAL_FAILURE(start_probes());
  const int64_t from = monotonic_ns();
  // claim() on a connected pair must refuse, and say why.
  for (Host h : {Host::kA, Host::kB}) {
    auto out = cluster_->run(h, probe_argv(h, {"--claim-ms", "1500", "--count", "1"}));
    ASSERT_TRUE(out) << out.error().to_string();
    EXPECT_NE(out->find(R"("claim":true)"), std::string::npos) << *out;
    EXPECT_NE(out->find(R"("may_run_alone":false)"), std::string::npos) << *out;
    EXPECT_NE(out->find("pair connected"), std::string::npos) << *out;
  }
  for (Host h : {Host::kA, Host::kB}) {
    auto lines = read_probe_log(probe_log(h));
    int checked = 0;
    for (const ProbeLine& l : lines) {
      if (l.t_ns < from) continue;
      ++checked;
      EXPECT_TRUE(l.connected && l.quorate) << l.evidence;
      EXPECT_EQ(l.members.size(), 2u) << l.evidence;
      EXPECT_EQ(l.votes, 3u) << l.evidence;  // two nodes + the qdevice
      EXPECT_FALSE(l.may_run_alone) << l.evidence;
    }
    EXPECT_GT(checked, 100) << "probe on " << CorosyncCluster::name(h) << " too slow";
  }
}

// Partition A<->B with C reachable from both: exactly one side may run alone,
// and at no sampled instant do both.
TEST_F(CorosyncArbiterE2E, PartitionExactlyOneSideRunsAloneNeverBoth) {
  ASSERT_NO_FATAL_FAILURE(start_probes());
  const int64_t cut = monotonic_ns();
  if (auto p = cluster_->partition_ab(); !p) FAIL() << p.error().to_string();
  std::optional<ProbeLine> winner_line;
  Host winner = Host::kA;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (!winner_line && std::chrono::steady_clock::now() < deadline) {
    for (Host h : {Host::kA, Host::kB}) {
      auto w = wait_for_line(
          probe_log(h), [&](const ProbeLine& l) { return l.t_ns > cut && l.may_run_alone; }, 50ms);
      if (w) {
        winner_line = w;
        winner = h;
        break;
      }
    }
  }
  ASSERT_TRUE(winner_line) << "no side won within 40 s";
  const Host loser = peer_of(winner);
  // Keep watching past another full settle time: a late double grant would show.
  const int64_t watch_until = monotonic_ns() + int64_t{kSettleMs + 2000} * 1'000'000;
  auto more = wait_for_line(
      probe_log(loser), [&](const ProbeLine& l) { return l.t_ns > watch_until; }, 30s);
  ASSERT_TRUE(more);

  auto w_lines = read_probe_log(probe_log(winner));
  auto l_lines = read_probe_log(probe_log(loser));
  // Each side's verdict holds from one sample until the next: intervals.
  auto true_intervals = [](const std::vector<ProbeLine>& lines, int64_t from) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
      if (lines[i].t_ns >= from && lines[i].may_run_alone) {
        out.emplace_back(lines[i].t_ns, lines[i + 1].t_ns);
      }
    }
    return out;
  };
  auto max_gap_ms = [](const std::vector<ProbeLine>& lines, int64_t from) {
    double gap = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      if (lines[i].t_ns > from) gap = std::max(gap, ms_between(lines[i - 1].t_ns, lines[i].t_ns));
    }
    return gap;
  };
  const int64_t start = std::min(w_lines.front().t_ns, l_lines.front().t_ns);
  auto wi = true_intervals(w_lines, start);
  auto li = true_intervals(l_lines, start);
  EXPECT_TRUE(li.empty()) << "loser " << CorosyncCluster::name(loser) << " was granted too";
  for (auto [a0, a1] : wi) {
    for (auto [b0, b1] : li) {
      EXPECT_FALSE(a0 < b1 && b0 < a1) << "both may run alone around t=" << a0;
    }
  }
  // Sampling must be dense for "never both" to mean anything.
  EXPECT_LT(max_gap_ms(w_lines, cut), 250.0);
  EXPECT_LT(max_gap_ms(l_lines, cut), 250.0);
  // The winner keeps its grant once it has it (stable partition).
  EXPECT_TRUE(w_lines.back().may_run_alone) << w_lines.back().evidence;

  // Measurements for docs/corosync.md.
  auto first = [&](const std::vector<ProbeLine>& lines, auto pred) -> double {
    for (const ProbeLine& l : lines) {
      if (l.t_ns > cut && pred(l)) return ms_between(cut, l.t_ns);
    }
    return -1;
  };
  const uint32_t wpeer = CorosyncCluster::nodeid(loser), lpeer = CorosyncCluster::nodeid(winner);
  const double winner_ring = first(w_lines, [&](auto& l) { return !l.has_member(wpeer); });
  const double winner_grant = ms_between(cut, winner_line->t_ns);
  const double loser_ring = first(l_lines, [&](auto& l) { return !l.has_member(lpeer); });
  const double loser_unquorate = first(l_lines, [&](auto& l) { return !l.quorate; });
  // The loser's dangerous window: quorate with a membership without the peer.
  double loser_alone_ms = 0;
  for (size_t i = 0; i + 1 < l_lines.size(); ++i) {
    const ProbeLine& l = l_lines[i];
    if (l.t_ns > cut && l.quorate && !l.has_member(lpeer)) {
      loser_alone_ms += ms_between(l.t_ns, l_lines[i + 1].t_ns);
    }
  }
  EXPECT_GE(loser_unquorate, 0) << "loser never lost quorum";
  EXPECT_LT(loser_alone_ms, kSettleMs) << "settle too small for this machine";
  const std::string json = fmt::format(
      R"({{"scenario":"partition","winner":"{}","settle_ms":{},"cut_to_winner_ring_ms":{:.0f},)"
      R"("cut_to_winner_may_run_alone_ms":{:.0f},"cut_to_loser_ring_ms":{:.0f},)"
      R"("cut_to_loser_not_quorate_ms":{:.0f},"loser_quorate_without_peer_ms":{:.0f}}})",
      CorosyncCluster::name(winner), kSettleMs, winner_ring, winner_grant, loser_ring,
      loser_unquorate, loser_alone_ms);
  std::printf("MEASURED %s\n", json.c_str());
  RecordProperty("measured", json);
}

// Host B lost: A wins and may run alone within token + qdevice + settle.
TEST_F(CorosyncArbiterE2E, HostLossLetsSurvivorRunAlone) {
  ASSERT_NO_FATAL_FAILURE(start_probes());
  const int64_t cut = monotonic_ns();
  if (auto k = cluster_->kill_host(Host::kB); !k) FAIL() << k.error().to_string();
  auto grant = wait_for_line(
      probe_log(Host::kA), [&](const ProbeLine& l) { return l.t_ns > cut && l.may_run_alone; },
      40s);
  ASSERT_TRUE(grant) << "A never got may_run_alone after B died";
  EXPECT_EQ(grant->members, std::vector<uint32_t>{1}) << grant->evidence;
  EXPECT_NE(grant->evidence.find("votes=2/3"), std::string::npos) << grant->evidence;
  auto lines = read_probe_log(probe_log(Host::kA));
  double ring_ms = -1;
  for (const ProbeLine& l : lines) {
    if (l.t_ns > cut && !l.has_member(2)) {
      ring_ms = ms_between(cut, l.t_ns);
      break;
    }
  }
  const std::string json =
      fmt::format(R"({{"scenario":"kill_host_b","settle_ms":{},"kill_to_ring_without_b_ms":{:.0f},)"
                  R"("kill_to_a_may_run_alone_ms":{:.0f}}})",
                  kSettleMs, ring_ms, ms_between(cut, grant->t_ns));
  std::printf("MEASURED %s\n", json.c_str());
  RecordProperty("measured", json);
}

// The qnetd host dies while A and B are connected: nothing changes.
TEST_F(CorosyncArbiterE2E, ArbiterHostLossChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(start_probes());
  const int64_t cut = monotonic_ns();
  if (auto k = cluster_->kill_host(Host::kC); !k) FAIL() << k.error().to_string();
  // Proof that the loss was noticed: the qdevice vote disappears (3 -> 2).
  auto noticed = wait_for_line(
      probe_log(Host::kA), [&](const ProbeLine& l) { return l.t_ns > cut && l.votes == 2; }, 60s);
  ASSERT_TRUE(noticed) << "qdevice never noticed qnetd loss";
  const int64_t until = monotonic_ns() + 3'000'000'000;
  ASSERT_TRUE(wait_for_line(
      probe_log(Host::kB), [&](const ProbeLine& l) { return l.t_ns > until; }, 20s));
  for (Host h : {Host::kA, Host::kB}) {
    for (const ProbeLine& l : read_probe_log(probe_log(h))) {
      if (l.t_ns < cut) continue;
      EXPECT_TRUE(l.quorate) << l.evidence;
      EXPECT_EQ(l.members.size(), 2u) << l.evidence;
      EXPECT_FALSE(l.may_run_alone) << l.evidence;
    }
  }
  std::printf("MEASURED {\"scenario\":\"kill_qnetd\",\"qnetd_loss_noticed_ms\":%.0f}\n",
              ms_between(cut, noticed->t_ns));
}

// corosync absent (host C runs none) or gone (killed under a running probe):
// a clear error, never may_run_alone.
TEST_F(CorosyncArbiterE2E, NoCorosyncIsAClearRefusal) {
  auto out = cluster_->run(Host::kC, probe_argv(Host::kA, {"--count", "1"}));
  ASSERT_FALSE(out) << "probe must exit non-zero without corosync: " << *out;
  EXPECT_NE(out.error().message.find("CS_ERR_LIBRARY"), std::string::npos) << out.error().message;
  EXPECT_NE(out.error().message.find("is corosync running"), std::string::npos);
  EXPECT_NE(out.error().message.find(R"("may_run_alone":false)"), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(start_probes());
  const int64_t cut = monotonic_ns();
  if (auto k = cluster_->kill(Host::kA, "corosync"); !k) FAIL() << k.error().to_string();
  auto down = wait_for_line(
      probe_log(Host::kA), [&](const ProbeLine& l) { return l.t_ns > cut && !l.connected; }, 10s);
  ASSERT_TRUE(down) << "probe on A never noticed corosync's death";
  EXPECT_FALSE(down->may_run_alone);
  EXPECT_NE(down->evidence.find("corosync unreachable"), std::string::npos) << down->evidence;
  for (const ProbeLine& l : read_probe_log(probe_log(Host::kA))) {
    EXPECT_FALSE(l.may_run_alone) << l.evidence;
  }
  std::printf("MEASURED {\"scenario\":\"kill_corosync\",\"noticed_ms\":%.0f}\n",
              ms_between(cut, down->t_ns));
}

}  // namespace
}  // namespace ftd::test
