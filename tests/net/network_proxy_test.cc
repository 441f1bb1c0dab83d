// The proxy with a test-double QEMU on its unix socket and an AF_PACKET socket
// on its tap; the tap lives in a namespace the test creates and removes.
#include "net/network_proxy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>

#include "net/netns.h"
#include "net_test_util.h"

namespace ftd::net {
namespace {

using namespace std::chrono_literals;
using testing::FakeQemu;
using testing::make_test_frame;
using testing::PacketSocket;
using testing::test_frame_seq;

class NetworkProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ns = NetNamespace::create(unique_ifname("ftpx"));
    ASSERT_TRUE(ns) << ns.error().to_string();
    ns_ = std::move(*ns);
    tap_name_ = unique_ifname("tap");
    auto tap = ns_.run([&] { return TapDevice::open({.name = tap_name_, .disable_ipv6 = true}); });
    ASSERT_TRUE(tap) << tap.error().to_string();
    auto wire = ns_.run([&] { return PacketSocket::open(tap_name_); });
    ASSERT_TRUE(wire) << wire.error().to_string();
    wire_ = std::move(*wire);
    socket_path_ = testing::unique_socket_path("proxy");
    auto proxy = NetworkProxy::start({.socket_path = socket_path_}, std::move(*tap));
    ASSERT_TRUE(proxy) << proxy.error().to_string();
    proxy_ = std::move(*proxy);
  }

  FakeQemu connect_qemu(uint64_t nth = 1) {
    auto q = FakeQemu::connect(socket_path_);
    EXPECT_TRUE(q) << q.error().to_string();
    EXPECT_TRUE(proxy_->wait_for_guest(5s, nth));
    return std::move(*q);
  }
  // The proxy reads asynchronously: wait until it has taken `n` frames in.
  void wait_from_guest(uint64_t n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (proxy_->stats().frames_from_guest < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(proxy_->stats().frames_from_guest, n);
  }
  // Sequence numbers of test frames arriving on the tap within `window`.
  std::vector<uint32_t> drain_wire(std::chrono::milliseconds window) {
    std::vector<uint32_t> seqs;
    while (auto f = wire_.recv(window)) {
      if (auto s = test_frame_seq(*f)) seqs.push_back(*s);
    }
    return seqs;
  }

  NetNamespace ns_;
  std::string tap_name_;
  std::string socket_path_;
  PacketSocket wire_;
  std::unique_ptr<NetworkProxy> proxy_;
};

TEST_F(NetworkProxyTest, NothingReachesTheTapBeforeItsEpochIsCommitted) {
  FakeQemu qemu = connect_qemu();
  for (uint32_t i = 1; i <= 3; ++i) ASSERT_TRUE(qemu.send_frame(make_test_frame(i)));
  wait_from_guest(3);
  EXPECT_EQ(proxy_->advance_epoch(), 2u);  // "pause": frames 1..3 belong to epoch 1
  for (uint32_t i = 4; i <= 5; ++i) ASSERT_TRUE(qemu.send_frame(make_test_frame(i)));
  wait_from_guest(5);

  EXPECT_EQ(drain_wire(300ms), std::vector<uint32_t>{});
  auto s = proxy_->stats();
  EXPECT_EQ(s.frames_held, 5u);
  EXPECT_EQ(s.bytes_held, 5u * 64);
  EXPECT_EQ(s.frames_released, 0u);

  EXPECT_EQ(proxy_->commit(0), 0u);
  EXPECT_EQ(drain_wire(100ms), std::vector<uint32_t>{});
  EXPECT_EQ(proxy_->commit(1), 3u);
  EXPECT_EQ(drain_wire(200ms), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(proxy_->commit(2), 2u);
  EXPECT_EQ(drain_wire(200ms), (std::vector<uint32_t>{4, 5}));

  s = proxy_->stats();
  EXPECT_EQ(s.frames_held, 0u);
  EXPECT_EQ(s.frames_released, 5u);
  EXPECT_EQ(s.bytes_released, 5u * 64);
  EXPECT_EQ(s.committed_epoch, 2u);
  EXPECT_EQ(s.hold_samples, 5u);
  EXPECT_GE(s.hold_max_us, 300'000.0);  // frame 1 waited through the 300 ms silence
  EXPECT_GT(s.hold_p50_us, 0.0);
}

TEST_F(NetworkProxyTest, ManyEpochsReleaseInOrder) {
  FakeQemu qemu = connect_qemu();
  uint32_t seq = 0;
  for (int epoch = 1; epoch <= 20; ++epoch) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(qemu.send_frame(make_test_frame(++seq)));
    wait_from_guest(seq);
    proxy_->advance_epoch();
  }
  EXPECT_EQ(drain_wire(100ms), std::vector<uint32_t>{});
  EXPECT_EQ(proxy_->commit(20), 200u);  // a late ack covers all earlier epochs
  auto got = drain_wire(300ms);
  ASSERT_EQ(got.size(), 200u);
  for (uint32_t i = 0; i < 200; ++i) EXPECT_EQ(got[i], i + 1);
}

TEST_F(NetworkProxyTest, DropAllLosesHeldFrames) {
  FakeQemu qemu = connect_qemu();
  for (uint32_t i = 1; i <= 4; ++i) ASSERT_TRUE(qemu.send_frame(make_test_frame(i, 1, 100)));
  wait_from_guest(4);
  proxy_->advance_epoch();
  EXPECT_EQ(proxy_->drop_all(), 4u);
  EXPECT_EQ(proxy_->commit(100), 0u);
  EXPECT_EQ(drain_wire(200ms), std::vector<uint32_t>{});
  auto s = proxy_->stats();
  EXPECT_EQ(s.frames_dropped, 4u);
  EXPECT_EQ(s.bytes_dropped, 400u);
  EXPECT_EQ(s.frames_held, 0u);
  EXPECT_EQ(s.bytes_held, 0u);
  // Frames after the drop are held and released normally.
  ASSERT_TRUE(qemu.send_frame(make_test_frame(5)));
  wait_from_guest(5);
  EXPECT_EQ(proxy_->commit(proxy_->advance_epoch() - 1), 1u);
  EXPECT_EQ(drain_wire(200ms), std::vector<uint32_t>{5});
}

TEST_F(NetworkProxyTest, HostToGuestFramesPassImmediately) {
  FakeQemu qemu = connect_qemu();
  ASSERT_TRUE(qemu.send_frame(make_test_frame(1)));  // held the other way round
  wait_from_guest(1);
  for (uint32_t i = 100; i < 105; ++i) {
    auto sent_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(wire_.send(make_test_frame(i, 0x77)));
    auto f = qemu.recv_test_frame(2s);
    ASSERT_TRUE(f) << "host->guest frame " << i << " did not arrive";
    EXPECT_EQ(test_frame_seq(*f), i);
    EXPECT_LT(std::chrono::steady_clock::now() - sent_at, 100ms);
  }
  EXPECT_EQ(proxy_->stats().frames_held, 1u);  // guest->host still held: no commit happened
  EXPECT_GE(proxy_->stats().frames_to_guest, 5u);
}

TEST_F(NetworkProxyTest, PassthroughReleasesHeldThenStopsHolding) {
  FakeQemu qemu = connect_qemu();
  ASSERT_TRUE(qemu.send_frame(make_test_frame(1)));
  ASSERT_TRUE(qemu.send_frame(make_test_frame(2)));
  wait_from_guest(2);
  EXPECT_EQ(drain_wire(100ms), std::vector<uint32_t>{});
  proxy_->set_passthrough();
  EXPECT_EQ(drain_wire(200ms), (std::vector<uint32_t>{1, 2}));
  ASSERT_TRUE(qemu.send_frame(make_test_frame(3)));
  EXPECT_EQ(drain_wire(200ms), std::vector<uint32_t>{3});
  auto s = proxy_->stats();
  EXPECT_TRUE(s.passthrough);
  EXPECT_EQ(s.frames_released, 3u);
  EXPECT_EQ(s.hold_samples, 2u);  // only the two that were actually held
}

TEST_F(NetworkProxyTest, SurvivesQemuDisconnectAndServesTheNextOne) {
  {
    FakeQemu first = connect_qemu(1);
    ASSERT_TRUE(first.send_frame(make_test_frame(1)));
    wait_from_guest(1);
  }  // QEMU dies
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (proxy_->stats().guest_connected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_FALSE(proxy_->stats().guest_connected);
  ASSERT_TRUE(wire_.send(make_test_frame(50, 0x77)));  // nobody to deliver to: dropped
  deadline = std::chrono::steady_clock::now() + 5s;
  while (proxy_->stats().frames_to_guest_dropped == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(proxy_->stats().frames_to_guest_dropped, 1u);

  FakeQemu second = connect_qemu(2);  // e.g. the standby QEMU
  ASSERT_TRUE(second.send_frame(make_test_frame(2)));
  wait_from_guest(2);
  EXPECT_EQ(drain_wire(100ms), std::vector<uint32_t>{});  // frame 1 is still held, not lost
  proxy_->commit(1);
  EXPECT_EQ(drain_wire(200ms), (std::vector<uint32_t>{1, 2}));
  ASSERT_TRUE(wire_.send(make_test_frame(51, 0x77)));
  auto f = second.recv_test_frame(2s);
  ASSERT_TRUE(f);
  EXPECT_EQ(test_frame_seq(*f), 51u);
  EXPECT_EQ(proxy_->stats().guest_connections, 2u);
}

// Dial mode (the primary since issue 12): QEMU listens, the proxy connects —
// also when QEMU starts listening only later — and connects again after the
// connection ended, as a restarted daemon does to a guest that kept running.
// Held frames survive the reconnect; the socket file is QEMU's and stays.
TEST_F(NetworkProxyTest, DialModeConnectsLateAndRedialsAfterDisconnect) {
  auto tap = ns_.run(
      [&] { return TapDevice::open({.name = unique_ifname("tapd"), .disable_ipv6 = true}); });
  ASSERT_TRUE(tap) << tap.error().to_string();
  const std::string qemu_socket = testing::unique_socket_path("qemu-nic");
  auto dialer = NetworkProxy::start({.socket_path = qemu_socket, .dial = true, .dial_retry = 20ms},
                                    std::move(*tap));
  ASSERT_TRUE(dialer) << dialer.error().to_string();
  std::this_thread::sleep_for(100ms);  // nobody listens yet: dials fail and are retried
  EXPECT_FALSE((*dialer)->stats().guest_connected);

  auto listener = FakeQemu::listen_unix(qemu_socket);
  ASSERT_TRUE(listener) << listener.error().to_string();
  {
    auto first = FakeQemu::accept(listener->get(), 5s);
    ASSERT_TRUE(first) << first.error().to_string();
    ASSERT_TRUE((*dialer)->wait_for_guest(5s, 1));
    ASSERT_TRUE(first->send_frame(make_test_frame(1)));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((*dialer)->stats().frames_from_guest < 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
  }  // the daemon's peer went away (here: QEMU side closed)
  auto second = FakeQemu::accept(listener->get(), 5s);
  ASSERT_TRUE(second) << "the proxy did not dial again: " << second.error().to_string();
  ASSERT_TRUE((*dialer)->wait_for_guest(5s, 2));
  auto s = (*dialer)->stats();
  EXPECT_EQ(s.guest_connections, 2u);
  EXPECT_EQ(s.frames_from_guest, 1u);
  EXPECT_EQ(s.frames_held, 1u);  // still waiting for its epoch's commit
  dialer->reset();
  struct stat st {};
  EXPECT_EQ(::lstat(qemu_socket.c_str(), &st), 0) << "the proxy removed QEMU's socket";
  ::unlink(qemu_socket.c_str());
}

TEST_F(NetworkProxyTest, NewerConnectionReplacesOlder) {
  FakeQemu first = connect_qemu(1);
  FakeQemu second = connect_qemu(2);
  EXPECT_FALSE(first.recv_frame(2s));  // closed by the proxy
  EXPECT_TRUE(first.eof());
  ASSERT_TRUE(wire_.send(make_test_frame(7, 0x77)));
  auto f = second.recv_test_frame(2s);
  ASSERT_TRUE(f);
  EXPECT_EQ(test_frame_seq(*f), 7u);
  EXPECT_TRUE(proxy_->stats().guest_connected);
}

TEST_F(NetworkProxyTest, CorruptStreamClosesTheConnectionButKeepsGoodFrames) {
  FakeQemu bad = connect_qemu(1);
  std::vector<uint8_t> stream = *encode_frame(make_test_frame(1));
  stream.insert(stream.end(), {0, 0, 0, 0});  // zero-length frame: corrupt
  stream.insert(stream.end(), 100, 0xab);
  ASSERT_TRUE(bad.send_raw(stream));
  EXPECT_FALSE(bad.recv_frame(2s));
  EXPECT_TRUE(bad.eof());
  auto s = proxy_->stats();
  EXPECT_EQ(s.corrupt_streams, 1u);
  EXPECT_EQ(s.frames_from_guest, 1u);
  EXPECT_FALSE(s.guest_connected);

  FakeQemu good = connect_qemu(2);  // the proxy keeps serving
  ASSERT_TRUE(good.send_frame(make_test_frame(2)));
  wait_from_guest(2);
  proxy_->commit(1);
  EXPECT_EQ(drain_wire(200ms), (std::vector<uint32_t>{1, 2}));
}

TEST_F(NetworkProxyTest, OversizedLengthIsCorruptToo) {
  FakeQemu bad = connect_qemu(1);
  ASSERT_TRUE(bad.send_raw(std::vector<uint8_t>{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}));
  EXPECT_FALSE(bad.recv_frame(2s));
  EXPECT_TRUE(bad.eof());
  EXPECT_EQ(proxy_->stats().corrupt_streams, 1u);
  EXPECT_EQ(proxy_->stats().frames_from_guest, 0u);
}

TEST_F(NetworkProxyTest, StreamUnderConcurrentCommitsKeepsEveryFrameInOrder) {
  FakeQemu qemu = connect_qemu();
  constexpr uint32_t kFrames = 3000;
  std::atomic<bool> stop{false};
  std::thread committer([&] {
    while (!stop) {
      uint64_t closed = proxy_->advance_epoch() - 1;
      std::this_thread::sleep_for(500us);
      proxy_->commit(closed);
    }
  });
  std::vector<uint32_t> got;
  std::thread reader([&] {
    while (got.size() < kFrames) {
      auto f = wire_.recv(3s);
      if (!f) break;
      if (auto s = test_frame_seq(*f)) got.push_back(*s);
    }
  });
  for (uint32_t i = 1; i <= kFrames; ++i) {
    ASSERT_TRUE(qemu.send_frame(make_test_frame(i, 1, 60 + i % 1400)));
    if (i % 100 == 0) std::this_thread::sleep_for(1ms);
  }
  wait_from_guest(kFrames);
  stop = true;
  committer.join();
  proxy_->commit(proxy_->advance_epoch());
  reader.join();
  ASSERT_EQ(got.size(), kFrames);
  for (uint32_t i = 0; i < kFrames; ++i) ASSERT_EQ(got[i], i + 1) << "at " << i;
  auto s = proxy_->stats();
  EXPECT_EQ(s.frames_released, kFrames);
  EXPECT_EQ(s.frames_held, 0u);
  EXPECT_EQ(s.bytes_held, 0u);
  EXPECT_EQ(s.tap_write_errors, 0u);
}

TEST(NetworkProxyStart, RejectsBadSocketPaths) {
  auto ns = NetNamespace::create(unique_ifname("ftpy"));
  ASSERT_TRUE(ns) << ns.error().to_string();
  auto open_tap = [&] { return ns->run([] { return TapDevice::open({.name = "tapbad0"}); }); };

  auto r = NetworkProxy::start({.socket_path = std::string(200, 'x')}, *open_tap());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  r = NetworkProxy::start({.socket_path = std::string(200, 'x'), .dial = true}, *open_tap());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  std::string file = testing::unique_socket_path("notasock");
  std::ofstream(file) << "precious";
  r = NetworkProxy::start({.socket_path = file}, *open_tap());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");  // never clobbered
  ::unlink(file.c_str());

  r = NetworkProxy::start({.socket_path = "/nonexistent-dir/x.sock"}, *open_tap());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIo);

  r = NetworkProxy::start({.socket_path = testing::unique_socket_path("notap")}, TapDevice{});
  ASSERT_FALSE(r);
}

TEST(NetworkProxyStart, ReplacesStaleSocketAndRemovesItOnStop) {
  auto ns = NetNamespace::create(unique_ifname("ftpz"));
  ASSERT_TRUE(ns) << ns.error().to_string();
  std::string path = testing::unique_socket_path("stale");
  {  // a crashed earlier run leaves its socket file behind
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  {
    auto tap = ns->run([] { return TapDevice::open({.name = "tapstale0"}); });
    ASSERT_TRUE(tap) << tap.error().to_string();
    auto proxy = NetworkProxy::start({.socket_path = path}, std::move(*tap));
    ASSERT_TRUE(proxy) << proxy.error().to_string();
    auto q = FakeQemu::connect(path);
    ASSERT_TRUE(q) << q.error().to_string();
    EXPECT_TRUE((*proxy)->wait_for_guest(5s));
  }
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
}

}  // namespace
}  // namespace ftd::net
