// FailoverMonitor end to end on loopback: real UDP heartbeats (through a
// relay that can partition the link), a real ftd-witness, fencing commands.
#include "failover/failover_monitor.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "failover/no_arbiter.h"
#include "failover/witness_arbiter.h"
#include "tests/failover/udp_ports.h"
#include "tests/witness/witness_process.h"

namespace ftd {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::free_udp_port;
using testing::holder_key;
using testing::loopback;

// Forwards UDP between two monitors; `cut` drops everything (a partition).
class UdpRelay {
 public:
  UdpRelay(int a_port, int b_port) : a_(a_port), b_(b_port) {
    ra_ = bind_port(ra_port_ = free_udp_port());
    rb_ = bind_port(rb_port_ = free_udp_port());
    thread_ = std::thread([this] { run(); });
  }
  ~UdpRelay() {
    stop_ = true;
    thread_.join();
    ::close(ra_), ::close(rb_);
  }
  int a_side_port() const { return ra_port_; }  // A sends here
  int b_side_port() const { return rb_port_; }  // B sends here
  std::atomic<bool> cut{false};

 private:
  static sockaddr_in addr(int port) { return testing::loopback_addr(port); }
  static int bind_port(int port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = addr(port);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    return fd;
  }
  void run() {
    pollfd fds[2] = {{ra_, POLLIN, 0}, {rb_, POLLIN, 0}};
    char buf[2048];
    while (!stop_) {
      if (::poll(fds, 2, 20) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (n <= 0 || cut) continue;
        // From A (at ra) goes out of rb to B, and the other way round.
        sockaddr_in to = addr(i == 0 ? b_ : a_);
        ::sendto(i == 0 ? rb_ : ra_, buf, n, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      }
    }
  }
  int a_, b_, ra_port_, rb_port_, ra_, rb_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Host {
  std::unique_ptr<HeartbeatMonitor> heartbeat;
  std::unique_ptr<Arbiter> arbiter;
  std::unique_ptr<FailoverMonitor> monitor;
  std::atomic<int> activations{0}, degraded{0}, fenced{0};
  std::atomic<uint64_t> activated_epoch{0};
  Clock::time_point acted{};
  void stop() {  // "host loss": everything of this host stops at once
    monitor.reset();
    arbiter.reset();
    heartbeat.reset();
  }
};

std::string counters(const Host& h) {
  auto c = h.heartbeat->snapshot().counters;
  return fmt::format(
      "sent={} accepted={} malformed={} bad_mac={} replayed={} stale={} wrong_peer={}", c.sent,
      c.accepted, c.malformed, c.bad_mac, c.replayed, c.stale, c.wrong_peer);
}

struct Rig {
  explicit Rig(const std::string& name) {
    dir = ::testing::TempDir() + "/fm-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
  }
  Status start_witness() {
    auto w = testing::WitnessProcess::start({.dir = dir});
    if (!w) return std::unexpected(w.error());
    witness.emplace(std::move(*w));
    return ok();
  }
  HeartbeatConfig hb(bool a_side) const {
    return {.vm = "web1",
            .key = holder_key('e'),
            .links = {a_side ? HeartbeatLink{loopback(pa), loopback(relay.a_side_port())}
                             : HeartbeatLink{loopback(pb), loopback(relay.b_side_port())}}};
  }
  std::unique_ptr<Arbiter> witness_arbiter(const std::string& holder, char key, bool hold) {
    return std::move(*WitnessArbiter::create({.address = witness->address(),
                                              .vm = "web1",
                                              .holder = holder,
                                              .key = holder_key(key),
                                              .hold_from_start = hold}));
  }
  void start_primary(Host& h, std::unique_ptr<Arbiter> arbiter) {
    h.heartbeat = std::move(*HeartbeatMonitor::start(hb(true), PeerRole::kPrimary, 5));
    h.arbiter = std::move(arbiter);
    h.monitor = std::make_unique<FailoverMonitor>(
        FailoverMonitorConfig{.side = Side::kPrimary, .vm = "web1"}, *h.heartbeat, *h.arbiter,
        FailoverCallbacks{.go_degraded = [&h]() -> Status {
                            h.acted = Clock::now();
                            ++h.degraded;
                            return ok();
                          },
                          .hold = [] {},
                          .fence_self = [&h](const std::string&) { ++h.fenced; }});
  }
  void start_secondary(Host& h, std::unique_ptr<Arbiter> arbiter,
                       std::optional<FenceCommand> fence = std::nullopt) {
    h.heartbeat = std::move(*HeartbeatMonitor::start(hb(false), PeerRole::kSecondary, 5));
    h.arbiter = std::move(arbiter);
    h.monitor = std::make_unique<FailoverMonitor>(
        FailoverMonitorConfig{.side = Side::kSecondary,
                              .vm = "web1",
                              .fence = std::move(fence),
                              .fence_target = {.vm = "web1", .peer = "hostA"}},
        *h.heartbeat, *h.arbiter,
        FailoverCallbacks{.activate = [&h](uint64_t epoch) -> Status {
                            h.acted = Clock::now();
                            h.activated_epoch = epoch;
                            ++h.activations;
                            return ok();
                          },
                          .replica_epoch = [] { return uint64_t{5}; }});
  }
  std::string dir;
  int pa = free_udp_port(), pb = free_udp_port();
  UdpRelay relay{pa, pb};
  std::optional<testing::WitnessProcess> witness;
};

TEST(FailoverMonitor, PrimaryHostLossActivatesSecondaryAfterLeaseExpiry) {
  Rig rig("hostloss");
  ASSERT_TRUE(rig.start_witness());
  Host a, b;
  rig.start_primary(a, rig.witness_arbiter("web1/A", 'a', true));
  rig.start_secondary(b, rig.witness_arbiter("web1/B", 'b', false));
  ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
  const auto lease_deadline = Clock::now() + 3s;
  while (!a.arbiter->current().may_run_alone && Clock::now() < lease_deadline)
    a.monitor->wait_for_state(FailoverState::kFenced, 10ms);
  ASSERT_TRUE(a.arbiter->current().may_run_alone);
  EXPECT_EQ(a.monitor->status().state, FailoverState::kProtected);
  EXPECT_EQ(b.monitor->status().state, FailoverState::kStandby);

  const auto killed = Clock::now();
  a.stop();
  ASSERT_TRUE(b.monitor->wait_for_state(FailoverState::kActive, 5s)) << b.monitor->status().reason;
  EXPECT_EQ(b.activations, 1);
  EXPECT_EQ(b.activated_epoch, 5u);
  auto st = b.monitor->status();
  EXPECT_EQ(st.verdict.term, 2u);
  std::printf("host loss → activation %.0f ms (lease 1000 ms, renew 250 ms, detection 250 ms)\n",
              std::chrono::duration<double, std::milli>(b.acted - killed).count());
}

TEST(FailoverMonitor, SecondaryLossLetsThePrimaryRunDegradedAndNeverBoth) {
  Rig rig("seclost");
  ASSERT_TRUE(rig.start_witness());
  Host a, b;
  rig.start_primary(a, rig.witness_arbiter("web1/A", 'a', true));
  rig.start_secondary(b, rig.witness_arbiter("web1/B", 'b', false));
  ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
  // Partition the heartbeat link; both still reach the witness.
  rig.relay.cut = true;
  ASSERT_TRUE(a.monitor->wait_for_state(FailoverState::kDegraded, 5s))
      << a.monitor->status().reason;
  // The secondary keeps asking and keeps being refused: it must stay standby.
  EXPECT_FALSE(b.monitor->wait_for_state(FailoverState::kActive, 2s));
  EXPECT_EQ(b.activations, 0);
  EXPECT_EQ(a.degraded, 1);
  EXPECT_TRUE(a.monitor->may_release_unacked());
  // Refused for good: A recorded at the witness that it runs alone.
  EXPECT_NE(b.monitor->status().reason.find("web1/A ran alone"), std::string::npos)
      << b.monitor->status().reason << " / " << counters(a) << " / " << counters(b);
  EXPECT_TRUE(a.monitor->status().verdict.alone_recorded);
}

// Wraps a WitnessArbiter; once `cut`, this side cannot reach the witness:
// claims are refused as unreachable and the lease simply runs out.
class CuttableArbiter final : public Arbiter {
 public:
  explicit CuttableArbiter(std::unique_ptr<WitnessArbiter> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "witness"; }
  ArbiterVerdict current() const override { return inner_->current(); }
  Result<ArbiterVerdict> claim(std::chrono::milliseconds timeout) override {
    if (!cut) return inner_->claim(timeout);
    std::this_thread::sleep_for(std::min(timeout, 50ms));  // an RPC timing out
    return current();
  }
  Result<ArbiterVerdict> mark_alone(std::chrono::milliseconds timeout) override {
    if (!cut) return inner_->mark_alone(timeout);
    std::this_thread::sleep_for(std::min(timeout, 50ms));
    return current();
  }
  std::atomic<bool> cut{false};

 private:
  std::unique_ptr<WitnessArbiter> inner_;
};

TEST(FailoverMonitor, PrimaryIsolatedFromBothStopsBeforeSecondaryActivatesThenFences) {
  Rig rig("isolated");
  ASSERT_TRUE(rig.start_witness());
  Host a, b;
  // The inner renewer runs rarely: renewals come from the monitor's claims,
  // which the cut stops.
  auto cuttable = std::make_unique<CuttableArbiter>(
      std::move(*WitnessArbiter::create({.address = rig.witness->address(),
                                         .vm = "web1",
                                         .holder = "web1/A",
                                         .key = holder_key('a'),
                                         .renew_interval = 60s,
                                         .hold_from_start = true})));
  CuttableArbiter* a_arbiter = cuttable.get();
  rig.start_primary(a, std::move(cuttable));
  std::atomic<int> a_state_at_activation{-1};
  rig.start_secondary(b, rig.witness_arbiter("web1/B", 'b', false));
  ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
  ASSERT_TRUE(a.monitor->wait_for_state(FailoverState::kProtected, 1s));
  const auto lease_deadline = Clock::now() + 3s;
  while (!a_arbiter->current().may_run_alone && Clock::now() < lease_deadline)
    a.monitor->wait_for_state(FailoverState::kFenced, 10ms);

  // Watch the primary's verdict while B works towards activation.
  Clock::time_point a_lost{};
  std::atomic<bool> watching{true};
  std::thread watch([&] {
    while (watching && a_arbiter->current().may_run_alone) std::this_thread::sleep_for(1ms);
    a_lost = Clock::now();
  });
  a_arbiter->cut = true;
  rig.relay.cut = true;
  ASSERT_TRUE(b.monitor->wait_for_state(FailoverState::kActive, 5s)) << b.monitor->status().reason;
  const auto a_state = a.monitor->status().state;
  EXPECT_FALSE(a.monitor->may_release_unacked());
  watching = false;
  watch.join();
  EXPECT_LT(a_lost, b.acted) << "the isolated primary's lease must end before B activates";
  EXPECT_NE(a_state, FailoverState::kDegraded);
  // Cut from the witness it could not record "alone": it never released
  // unacked output, not even during the rest of its lease.
  EXPECT_EQ(a.degraded, 0);
  std::printf("isolated primary lost its lease %.0f ms before the secondary activated\n",
              std::chrono::duration<double, std::milli>(b.acted - a_lost).count());

  // Partition heals: A hears the active peer and fences itself for good.
  rig.relay.cut = false;
  ASSERT_TRUE(a.monitor->wait_for_state(FailoverState::kFenced, 5s)) << a.monitor->status().reason;
  a.monitor.reset();  // joins: the fence_self callback has run
  EXPECT_EQ(a.fenced, 1);
}

TEST(FailoverMonitor, NoArbiterMeansNoAutomaticFailover) {
  Rig rig("none");
  Host a, b;
  rig.start_primary(a, std::make_unique<NoArbiter>());
  rig.start_secondary(b, std::make_unique<NoArbiter>());
  ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
  a.stop();
  ASSERT_TRUE(b.heartbeat->wait_peer_alive(false, 3s));
  EXPECT_FALSE(b.monitor->wait_for_state(FailoverState::kActive, 500ms));
  auto st = b.monitor->status();
  EXPECT_EQ(st.arbiter, "none");
  EXPECT_NE(st.reason.find("automatic failover off"), std::string::npos) << st.reason;
}

TEST(FailoverMonitor, FailingOrHangingFenceCommandBlocksActivation) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"false"},
                                       std::vector<std::string>{"sh", "-c", "sleep 30", "fence"}}) {
    Rig rig("fence");
    ASSERT_TRUE(rig.start_witness());
    Host a, b;
    rig.start_primary(a, rig.witness_arbiter("web1/A", 'a', true));
    rig.start_secondary(b, rig.witness_arbiter("web1/B", 'b', false), FenceCommand(cmd, 300ms));
    ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
    a.stop();
    // Arbitration is won, fencing fails: the status says so and nothing activates.
    const auto deadline = Clock::now() + 5s;
    while (b.monitor->status().last_error.empty() && Clock::now() < deadline)
      b.monitor->wait_for_state(FailoverState::kActive, 20ms);
    auto st = b.monitor->status();
    EXPECT_NE(st.last_error.find("fence command"), std::string::npos) << st.last_error;
    EXPECT_FALSE(b.monitor->wait_for_state(FailoverState::kActive, 500ms));
    EXPECT_EQ(b.activations, 0);
  }
}

TEST(FailoverMonitor, SuccessfulFenceCommandThenActivation) {
  Rig rig("fenceok");
  ASSERT_TRUE(rig.start_witness());
  Host a, b;
  const std::string marker = rig.dir + "/fenced-peer";
  rig.start_primary(a, rig.witness_arbiter("web1/A", 'a', true));
  rig.start_secondary(b, rig.witness_arbiter("web1/B", 'b', false),
                      FenceCommand({"sh", "-c", "echo $FTD_PEER > " + marker, "fence"}, 2s));
  ASSERT_TRUE(a.heartbeat->wait_peer_alive(true, 3s) && b.heartbeat->wait_peer_alive(true, 3s));
  a.stop();
  ASSERT_TRUE(b.monitor->wait_for_state(FailoverState::kActive, 5s)) << b.monitor->status().reason;
  std::ifstream in(marker);
  std::string peer;
  in >> peer;
  EXPECT_EQ(peer, "hostA");
}

}  // namespace
}  // namespace ftd
