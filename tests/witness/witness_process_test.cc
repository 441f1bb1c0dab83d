// WitnessArbiter against a real ftd-witness process on loopback.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "failover/witness_arbiter.h"
#include "failover/witness_auth.h"
#include "tests/failover/udp_ports.h"
#include "tests/witness/witness_process.h"
#include "witness.grpc.pb.h"

namespace ftd {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::holder_key;
using testing::WitnessProcess;

std::string fresh_dir(const std::string& name) {
  const std::string d =
      ::testing::TempDir() + "/witness-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  return d;
}

WitnessArbiterConfig cfg(const WitnessProcess& w, const std::string& holder, char key,
                         bool hold_from_start, std::chrono::milliseconds renew = 250ms) {
  return {.address = w.address(),
          .vm = "web1",
          .holder = holder,
          .key = holder_key(key),
          .renew_interval = renew,
          .rpc_timeout = 500ms,
          .hold_from_start = hold_from_start};
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);  // polling an external process's effect
  }
  return true;
}

TEST(WitnessProcess, PrimaryHoldsSecondaryWaitsForExpiryAndOwnerFencesFirst) {
  auto w = WitnessProcess::start({.dir = fresh_dir("order")});
  ASSERT_TRUE(w) << w.error().to_string();
  // A renews only once (long interval), then "dies" as far as the witness knows.
  auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', true, 60s));
  auto b = WitnessArbiter::create(cfg(*w, "web1/B", 'b', false));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(wait_until([&] { return (*a)->current().may_run_alone; }, 3s));
  EXPECT_EQ((*a)->current().term, 1u);
  EXPECT_FALSE((*b)->current().may_run_alone);

  // B's immediate claim is refused while A's lease runs.
  auto v = (*b)->claim(100ms);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_FALSE(v->may_run_alone);
  EXPECT_FALSE(v->superseded);
  EXPECT_NE(v->evidence.find("held by web1/A"), std::string::npos) << v->evidence;

  // Watch when A stops believing it holds the lease, and when B gets it.
  Clock::time_point a_lost{};
  std::thread watch([&] {
    while ((*a)->current().may_run_alone) std::this_thread::sleep_for(1ms);
    a_lost = Clock::now();
  });
  v = (*b)->claim(3s);
  const auto b_granted = Clock::now();
  watch.join();
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_TRUE(v->may_run_alone) << v->evidence;
  EXPECT_EQ(v->term, 2u);
  EXPECT_LT(a_lost, b_granted) << "self-fencing: the old holder must stop first";
  std::printf("A stopped %.1f ms before B was granted\n",
              std::chrono::duration<double, std::milli>(b_granted - a_lost).count());

  // B renews on its own now; A's renewal is refused and A learns it lost.
  auto av = (*a)->acquire_once();
  ASSERT_TRUE(av);
  EXPECT_FALSE(av->may_run_alone);
  EXPECT_TRUE(av->superseded);
  EXPECT_TRUE(wait_until([&] { return (*b)->current().may_run_alone; }, 1s));
  std::this_thread::sleep_for(1500ms);  // > lease: only renewals keep B valid
  EXPECT_TRUE((*b)->current().may_run_alone) << (*b)->current().evidence;
  EXPECT_EQ((*b)->current().term, 2u);
}

TEST(WitnessProcess, RestartNeverRegrantsATermNorGrantsAnotherHolderEarly) {
  const std::string dir = fresh_dir("restart");
  const int port = testing::free_tcp_port();
  auto w = WitnessProcess::start({.dir = dir, .port = port});
  ASSERT_TRUE(w) << w.error().to_string();
  {
    auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', false));
    auto v = (*a)->claim(2s);
    ASSERT_TRUE(v && v->may_run_alone);
    EXPECT_EQ(v->term, 1u);
  }
  // The term is on disk before it was answered.
  std::ifstream state(dir + "/leases.json");
  std::string text((std::istreambuf_iterator<char>(state)), {});
  EXPECT_NE(text.find("\"term\": 1"), std::string::npos) << text;

  w->kill();
  std::this_thread::sleep_for(1200ms);  // A's lease has now expired in real time
  auto w2 = WitnessProcess::start({.dir = dir, .port = port});
  ASSERT_TRUE(w2) << w2.error().to_string();
  const auto restarted = Clock::now();
  auto b = WitnessArbiter::create(cfg(*w2, "web1/B", 'b', false));
  auto v = (*b)->claim(3s);
  const auto granted = Clock::now();
  ASSERT_TRUE(v) << v.error().to_string();
  ASSERT_TRUE(v->may_run_alone) << v->evidence;
  EXPECT_EQ(v->term, 2u) << "term 1 must never be granted again";
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(granted - restarted);
  EXPECT_GE(waited, 950ms) << "a restarted witness waits a full lease before a new holder";
  std::printf("after restart B granted after %lld ms\n", static_cast<long long>(waited.count()));
}

TEST(WitnessProcess, AloneMarkStaysUntilTheHolderSaysItsPeerIsConsistentAgain) {
  auto w = WitnessProcess::start({.dir = fresh_dir("rejoin")});
  ASSERT_TRUE(w) << w.error().to_string();
  auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', true, 100ms));
  auto b = WitnessArbiter::create(cfg(*w, "web1/B", 'b', false));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(wait_until([&] { return (*a)->current().may_run_alone; }, 3s));
  auto marked = (*a)->mark_alone(1s);
  ASSERT_TRUE(marked && marked->alone_recorded) << (marked ? marked->evidence : "error");

  // A (re-protected) says its peer caught up: the mark goes with the next grant.
  (*a)->clear_alone();
  ASSERT_TRUE(wait_until([&] { return !(*a)->current().alone_recorded; }, 2s))
      << (*a)->current().evidence;
  EXPECT_TRUE((*a)->current().may_run_alone);

  // And the peer may be given the VM again once A's lease runs out.
  a->reset();  // A's host dies: no more renewals
  auto v = (*b)->claim(3s);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_TRUE(v->may_run_alone) << v->evidence;
}

TEST(WitnessProcess, AloneMarkRefusesThePeerForever) {
  auto w = WitnessProcess::start({.dir = fresh_dir("alone")});
  ASSERT_TRUE(w) << w.error().to_string();
  {
    auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', true, 100ms));
    ASSERT_TRUE(wait_until([&] { return (*a)->current().may_run_alone; }, 3s));
    auto marked = (*a)->mark_alone(1s);
    ASSERT_TRUE(marked && marked->alone_recorded);
  }
  auto b = WitnessArbiter::create(cfg(*w, "web1/B", 'b', false));
  auto v = (*b)->claim(2500ms);  // well past A's lease
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_FALSE(v->may_run_alone);
  EXPECT_NE(v->evidence.find("ran alone"), std::string::npos) << v->evidence;
}

TEST(WitnessProcess, HandoverWithoutAnswerRegainsOnlyALeaseNobodyHeldMeanwhile) {
  auto w = WitnessProcess::start({.dir = fresh_dir("regain")});
  ASSERT_TRUE(w) << w.error().to_string();
  auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', true, 100ms));
  ASSERT_TRUE(a);
  ASSERT_TRUE(wait_until([&] { return (*a)->current().may_run_alone; }, 3s));

  // The peer never claimed: the lease comes back under the next term.
  ASSERT_TRUE((*a)->release_for_handover(1s));
  EXPECT_FALSE((*a)->current().may_run_alone);
  auto back = (*a)->regain_after_handover(2s);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(*back);
  EXPECT_TRUE((*a)->current().may_run_alone);

  // The peer claimed (and may have activated) before dying: never back.
  ASSERT_TRUE((*a)->release_for_handover(1s));
  {
    auto b = WitnessArbiter::create(cfg(*w, "web1/B", 'b', false));
    auto v = (*b)->claim_for_handover(1s);
    ASSERT_TRUE(v && v->may_run_alone) << (v ? v->evidence : v.error().to_string());
  }  // B's host dies right after; its lease runs out
  std::this_thread::sleep_for(1200ms);
  back = (*a)->regain_after_handover(2s);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_FALSE(*back) << (*a)->current().evidence;
}

// Raw requests, to exercise the server's authentication directly.
class RawClient {
 public:
  explicit RawClient(const std::string& addr)
      : stub_(witness::Witness::NewStub(
            grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()))) {}
  witness::LeaseRequest request(const std::string& holder, char key, int64_t clock_skew_ms = 0) {
    witness::LeaseRequest r;
    r.set_vm("web1");
    r.set_holder(holder);
    r.set_timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() +
                       clock_skew_ms);
    r.set_nonce(*random_u64());
    Mac mac = witness_request_mac(r, holder_key(key));
    r.set_mac(std::string(mac.begin(), mac.end()));
    return r;
  }
  grpc::Status call(const witness::LeaseRequest& r, witness::LeaseReply* reply = nullptr) {
    witness::LeaseReply tmp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    return stub_->Acquire(&ctx, r, reply ? reply : &tmp);
  }

 private:
  std::unique_ptr<witness::Witness::Stub> stub_;
};

TEST(WitnessProcess, RejectsUnauthenticatedReplayedAndGarbageRequests) {
  auto w = WitnessProcess::start({.dir = fresh_dir("auth")});
  ASSERT_TRUE(w) << w.error().to_string();
  RawClient c(w->address());
  auto expect_rejected = [&](const witness::LeaseRequest& r, const std::string& why) {
    auto s = c.call(r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << why << ": " << s.error_message();
  };
  expect_rejected(c.request("web1/A", 'b'), "wrong key");
  expect_rejected(c.request("web1/Z", 'a'), "unknown holder");
  expect_rejected(c.request("web1/A", 'a', -120000), "old timestamp");
  auto tampered = c.request("web1/A", 'a');
  tampered.set_vm("web2");
  expect_rejected(tampered, "tampered");
  witness::LeaseRequest empty;
  expect_rejected(empty, "empty");
  auto good = c.request("web1/A", 'a');
  witness::LeaseReply reply;
  ASSERT_TRUE(c.call(good, &reply).ok());
  EXPECT_TRUE(reply.granted());
  EXPECT_EQ(reply.request_nonce(), good.nonce());
  expect_rejected(good, "replayed");

  // Raw garbage on the TCP port: the witness must shrug it off.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(w->port()));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const char junk[] = "GET / HTTP/1.1\r\n\r\n\x00\xff\xfe garbage";
  (void)::write(fd, junk, sizeof junk);
  ::close(fd);
  ASSERT_TRUE(c.call(c.request("web1/A", 'a'), &reply).ok());
  EXPECT_TRUE(reply.granted());
  EXPECT_EQ(reply.term(), 1u);

  // The arbiter with a wrong key reports the witness refusing it as an error.
  auto bad = WitnessArbiter::create(
      {.address = w->address(), .vm = "web1", .holder = "web1/B", .key = holder_key('c')});
  auto v = (*bad)->claim(500ms);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("bad MAC"), std::string::npos) << v.error().message;
  EXPECT_FALSE((*bad)->current().may_run_alone);
}

TEST(WitnessProcess, GrantAndRenewLatency) {
  auto w = WitnessProcess::start({.dir = fresh_dir("latency")});
  ASSERT_TRUE(w);
  auto a = WitnessArbiter::create(cfg(*w, "web1/A", 'a', false, 60s));
  std::vector<double> ms;
  for (int i = 0; i < 100; ++i) {
    const auto t = Clock::now();
    auto v = (*a)->acquire_once();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    ASSERT_TRUE(v && v->may_run_alone);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("witness acquire/renew round trip ms: p50 %.2f p99 %.2f max %.2f\n", ms[50], ms[98],
              ms.back());
  EXPECT_LT(ms[50], 50.0);
}

}  // namespace
}  // namespace ftd
