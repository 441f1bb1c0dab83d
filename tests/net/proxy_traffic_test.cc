// Real traffic through the proxy: a kernel stack on each side.
//   ns "host":  tap (the proxy's) 10.77.0.1  <- UDP client
//   ns "guest": tap 10.77.0.2 pumped to the proxy's unix socket like QEMU would
//               <- UDP echo server
// Replies are guest output, so they are held until their epoch is committed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>

#include "common/log.h"
#include "net/netns.h"
#include "net/network_proxy.h"
#include "net_test_util.h"

namespace ftd::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::FakeQemu;
using testing::GuestPump;

constexpr char kHostIp[] = "10.77.0.1";
constexpr char kGuestIp[] = "10.77.0.2";
constexpr char kHostMac[] = "02:77:00:00:00:01";
constexpr char kGuestMac[] = "02:77:00:00:00:02";
constexpr uint16_t kEchoPort = 7007;

sockaddr_in addr_of(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

Result<UniqueFd> udp_bound(const char* ip, uint16_t port) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket");
  auto a = addr_of(ip, port);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno_error("bind");
  return s;
}

// Echoes every datagram back; counts what it saw.
class UdpEcho {
 public:
  explicit UdpEcho(UniqueFd s) : sock_(std::move(s)), thread_([this] { run(); }) {}
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
  }
  uint64_t received() const { return received_; }

 private:
  void run() {
    char buf[2048];
    while (!stop_) {
      if (!testing::wait_readable(sock_.get(), 20ms)) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n =
          ::recvfrom(sock_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      ++received_;
      ::sendto(sock_.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from),
               len);
    }
  }
  UniqueFd sock_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::thread thread_;
};

// Advances an epoch every `period` and commits it `ack_delay` later, like the
// primary's checkpoint loop with a secondary that acks after applying.
class CommitTimer {
 public:
  CommitTimer(NetworkProxy& proxy, std::chrono::microseconds period,
              std::chrono::microseconds ack_delay)
      : thread_([this, &proxy, period, ack_delay] {
          auto next = Clock::now() + period;
          while (!stop_) {
            std::this_thread::sleep_until(next);
            next += period;
            uint64_t closed = proxy.advance_epoch() - 1;
            std::this_thread::sleep_for(ack_delay);
            proxy.commit(closed);
          }
        }) {}
  ~CommitTimer() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

class ProxyTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = NetNamespace::create(unique_ifname("fthn"));
    auto guest = NetNamespace::create(unique_ifname("ftgn"));
    ASSERT_TRUE(host && guest);
    host_ = std::move(*host);
    guest_ = std::move(*guest);
    auto echo_sock = guest_.run([] { return udp_bound("0.0.0.0", kEchoPort); });
    ASSERT_TRUE(echo_sock) << echo_sock.error().to_string();
    echo_ = std::make_unique<UdpEcho>(std::move(*echo_sock));
    auto client = host_.run([] { return udp_bound("0.0.0.0", 0); });
    ASSERT_TRUE(client) << client.error().to_string();
    client_ = std::move(*client);
  }

  // Starts a proxy on a fresh host tap and a pumped guest tap; static
  // neighbours so no ARP exchange blurs the first measurements.
  void start_proxy(bool passthrough) {
    pump_.reset();
    proxy_.reset();
    auto tap = host_.run(
        [] { return TapDevice::open({.name = "taph0", .up = false, .disable_ipv6 = true}); });
    ASSERT_TRUE(tap) << tap.error().to_string();
    ASSERT_TRUE(host_.ip({"link", "set", "taph0", "address", kHostMac}));
    ASSERT_TRUE(add_address(host_.name(), "taph0", std::string(kHostIp) + "/24"));
    ASSERT_TRUE(host_.ip(
        {"neigh", "replace", kGuestIp, "lladdr", kGuestMac, "dev", "taph0", "nud", "permanent"}));
    std::string path = testing::unique_socket_path("traffic");
    auto proxy =
        NetworkProxy::start({.socket_path = path, .passthrough = passthrough}, std::move(*tap));
    ASSERT_TRUE(proxy) << proxy.error().to_string();
    proxy_ = std::move(*proxy);

    auto gtap = guest_.run(
        [] { return TapDevice::open({.name = "tapg0", .up = false, .disable_ipv6 = true}); });
    ASSERT_TRUE(gtap) << gtap.error().to_string();
    ASSERT_TRUE(guest_.ip({"link", "set", "tapg0", "address", kGuestMac}));
    ASSERT_TRUE(add_address(guest_.name(), "tapg0", std::string(kGuestIp) + "/24"));
    ASSERT_TRUE(guest_.ip(
        {"neigh", "replace", kHostIp, "lladdr", kHostMac, "dev", "tapg0", "nud", "permanent"}));
    auto link = FakeQemu::connect(path);
    ASSERT_TRUE(link) << link.error().to_string();
    pump_ = std::make_unique<GuestPump>(std::move(*gtap), std::move(*link));
    ASSERT_TRUE(proxy_->wait_for_guest(5s));
  }

  Status send_request(uint32_t seq) {
    auto to = addr_of(kGuestIp, kEchoPort);
    if (::sendto(client_.get(), &seq, sizeof seq, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) !=
        sizeof seq) {
      return errno_error("sendto");
    }
    return ok();
  }
  // Waits for the echo of `seq` (stale echoes of earlier requests are skipped).
  bool await_reply(uint32_t seq, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (!testing::wait_readable(client_.get(), std::max(left, 1ms))) return false;
      uint32_t got = 0;
      if (::recv(client_.get(), &got, sizeof got, 0) == sizeof got && got == seq) return true;
    }
    return false;
  }
  // Round-trip times (microseconds) of `n` sequential requests.
  std::vector<double> measure_rtts(int n, uint32_t first_seq) {
    std::vector<double> rtts;
    for (int i = 0; i < n; ++i) {
      uint32_t seq = first_seq + static_cast<uint32_t>(i);
      auto t0 = Clock::now();
      EXPECT_TRUE(send_request(seq));
      if (!await_reply(seq, 2s)) {
        ADD_FAILURE() << "no echo for request " << seq;
        continue;
      }
      rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      // Spread sends over the epoch so the hold time samples its whole range.
      std::this_thread::sleep_for(std::chrono::microseconds(1000 + (i * 3137) % 7000));
    }
    return rtts;
  }

  NetNamespace host_, guest_;
  std::unique_ptr<UdpEcho> echo_;
  UniqueFd client_;
  std::unique_ptr<NetworkProxy> proxy_;
  std::unique_ptr<GuestPump> pump_;
};

TEST_F(ProxyTrafficTest, ReplyIsHeldUntilCommitThenDelivered) {
  ASSERT_NO_FATAL_FAILURE(start_proxy(/*passthrough=*/false));
  ASSERT_TRUE(send_request(1));
  // The request (host -> guest) is not held: the guest's server gets it.
  auto deadline = Clock::now() + 3s;
  while (echo_->received() < 1 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(echo_->received(), 1u);
  // Its reply is guest output: it must not come out before a commit.
  EXPECT_FALSE(await_reply(1, 400ms));
  auto s = proxy_->stats();
  EXPECT_EQ(s.frames_held, 1u);
  EXPECT_EQ(s.frames_released, 0u);
  uint64_t closed = proxy_->advance_epoch() - 1;
  EXPECT_EQ(proxy_->commit(closed), 1u);
  EXPECT_TRUE(await_reply(1, 1s));
  EXPECT_GE(proxy_->stats().hold_max_us, 350'000.0);  // held through the silence
}

TEST_F(ProxyTrafficTest, ReplyHeldThenDroppedNeverArrives) {
  ASSERT_NO_FATAL_FAILURE(start_proxy(false));
  ASSERT_TRUE(send_request(9));
  auto deadline = Clock::now() + 3s;
  while (proxy_->stats().frames_held < 1 && Clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(proxy_->drop_all(), 1u);
  proxy_->commit(proxy_->advance_epoch());
  EXPECT_FALSE(await_reply(9, 300ms));
}

TEST_F(ProxyTrafficTest, AddedLatencyUnderPeriodicCommit) {
  constexpr int kRequests = 150;
  constexpr auto kPeriod = 20ms;   // 50 checkpoints per second
  constexpr auto kAckDelay = 2ms;  // secondary's ship + apply + ack

  ASSERT_NO_FATAL_FAILURE(start_proxy(/*passthrough=*/true));
  auto base = measure_rtts(kRequests, 1000);
  ASSERT_EQ(base.size(), static_cast<size_t>(kRequests));

  ASSERT_NO_FATAL_FAILURE(start_proxy(/*passthrough=*/false));
  std::vector<double> held;
  NetworkProxyStats s;
  {
    CommitTimer timer(*proxy_, kPeriod, kAckDelay);
    held = measure_rtts(kRequests, 5000);
    s = proxy_->stats();
  }
  ASSERT_EQ(held.size(), static_cast<size_t>(kRequests));

  double base_p50 = percentile(base, 0.5), held_p50 = percentile(held, 0.5);
  double base_p99 = percentile(base, 0.99), held_p99 = percentile(held, 0.99);
  spdlog::info(
      "net.bench.added_latency period_ms={} ack_delay_ms={} requests={} rtt_base_p50_us={:.0f} "
      "rtt_base_p99_us={:.0f} rtt_held_p50_us={:.0f} rtt_held_p99_us={:.0f} added_p50_us={:.0f} "
      "hold_p50_us={:.0f} hold_p99_us={:.0f} hold_max_us={:.0f}",
      kPeriod.count(), kAckDelay.count(), kRequests, base_p50, base_p99, held_p50, held_p99,
      held_p50 - base_p50, s.hold_p50_us, s.hold_p99_us, s.hold_max_us);
  RecordProperty("rtt_base_p50_us", static_cast<int>(base_p50));
  RecordProperty("rtt_held_p50_us", static_cast<int>(held_p50));
  RecordProperty("hold_p50_us", static_cast<int>(s.hold_p50_us));
  RecordProperty("hold_p99_us", static_cast<int>(s.hold_p99_us));

  // Every held reply waits at least the ack delay and at most about one period
  // plus the ack delay (+ scheduling slack on a busy 2-core machine).
  EXPECT_GE(s.hold_p50_us, 2000.0);
  EXPECT_LE(s.hold_p50_us, 20000.0 + 2000.0 + 10000.0);
  EXPECT_GT(held_p50, base_p50 + 2000.0);
  EXPECT_EQ(s.frames_dropped, 0u);
  EXPECT_GE(s.frames_released, static_cast<uint64_t>(kRequests));
}

}  // namespace
}  // namespace ftd::net
