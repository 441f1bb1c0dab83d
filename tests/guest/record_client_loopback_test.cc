// ftd-record-client against the record service on loopback: the real service
// (deploy/guest/src/ftd-guest-svc.c built for the host) must pass; servers that
// lose, duplicate, reorder, stall or hang up must be caught.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "deploy/guest/src/ftd_record.h"
#include "tools/record_client/record_client.h"

namespace ftd::record {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

fs::path build_dir() {
  const char* d = std::getenv("FTD_BUILD_DIR");
  return d ? fs::path(d) : fs::current_path();
}

UniqueFd listen_loopback(uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd.get(), 4) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return UniqueFd();
  }
  port = ntohs(a.sin_port);
  return fd;
}

uint16_t free_port() {
  uint16_t port = 0;
  listen_loopback(port);  // closed again at once; the race with other tests is benign
  return port;
}

// A record server whose replies a test scripts: `respond` maps each request to
// the replies to send (none, one, several), with the per-connection counter.
class FakeServer {
 public:
  using Respond = std::function<std::vector<ftd_record>(const ftd_record&, uint64_t& server_seq)>;
  explicit FakeServer(Respond respond) : respond_(std::move(respond)) {
    listen_ = listen_loopback(port_);
    thread_ = std::jthread([this](std::stop_token st) { serve(st); });
  }
  uint16_t port() const { return port_; }

 private:
  void serve(std::stop_token st) {
    UniqueFd conn;
    while (!st.stop_requested() && !conn) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) == 1)
        conn.reset(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
    uint64_t server_seq = 0;
    unsigned char buf[FTD_RECORD_SIZE];
    size_t have = 0;
    while (!st.stop_requested()) {
      pollfd p{conn.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      ssize_t n = ::recv(conn.get(), buf + have, sizeof buf - have, 0);
      if (n <= 0) return;
      have += static_cast<size_t>(n);
      if (have < FTD_RECORD_SIZE) continue;
      have = 0;
      ftd_record req{};
      if (ftd_record_decode(buf, &req)) return;
      auto replies = respond_(req, server_seq);
      if (replies.size() == 1 && replies[0].kind == 0) return;  // "hang up"
      for (const auto& r : replies) {
        unsigned char out[FTD_RECORD_SIZE];
        ftd_record_encode(&r, out);
        if (::send(conn.get(), out, sizeof out, MSG_NOSIGNAL) != sizeof out) return;
      }
    }
  }

  Respond respond_;
  uint16_t port_ = 0;
  UniqueFd listen_;
  std::jthread thread_;
};

ftd_record reply_to(const ftd_record& req, uint64_t& server_seq) {
  return ftd_record{FTD_RECORD_REPLY, req.client_seq, ++server_seq, server_seq, req.echo};
}

ClientOptions quick(uint16_t port) {
  ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.rate = 500;
  o.duration = milliseconds(400);
  o.recv_timeout = milliseconds(700);
  o.connect_timeout = milliseconds(2000);
  o.progress_interval = milliseconds(0);
  return o;
}

TEST(RecordSession, HonestFakeServerPasses) {
  FakeServer server([](const ftd_record& r, uint64_t& s) { return std::vector{reply_to(r, s)}; });
  Summary s = run_session(quick(server.port()), -1);
  EXPECT_TRUE(s.ok) << s.to_json().dump();
  EXPECT_GT(s.received, 100u);
  EXPECT_EQ(s.lost, 0u);
}

TEST(RecordSession, DroppedReplyIsLostAndFails) {
  FakeServer server([](const ftd_record& r, uint64_t& s) {
    return r.client_seq == 5 ? std::vector<ftd_record>{} : std::vector{reply_to(r, s)};
  });
  Summary s = run_session(quick(server.port()), -1);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.lost, 1u) << s.to_json().dump();
  EXPECT_GE(s.reordered, 1u);  // 6 arrived while 5 was still owed
  EXPECT_NE(s.error.find("no reply"), std::string::npos) << s.error;
}

TEST(RecordSession, DuplicatedReplyFails) {
  FakeServer server([](const ftd_record& r, uint64_t& s) {
    std::vector v{reply_to(r, s)};
    if (r.client_seq == 7) v.push_back(reply_to(r, s));
    return v;
  });
  Summary s = run_session(quick(server.port()), -1);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.duplicated, 1u) << s.to_json().dump();
  EXPECT_EQ(s.lost, 0u);
}

TEST(RecordSession, ServerCounterReplayFails) {
  // A guest that "forgot" state and replays its counter: numbers right, counter wrong.
  FakeServer server([](const ftd_record& r, uint64_t& s) {
    if (r.client_seq == 10) s -= 3;
    return std::vector{reply_to(r, s)};
  });
  Summary s = run_session(quick(server.port()), -1);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.server_seq_breaks, 1u) << s.to_json().dump();
}

TEST(RecordSession, HangUpIsAnError) {
  FakeServer server([](const ftd_record& r, uint64_t& s) {
    return r.client_seq == 20 ? std::vector{ftd_record{}} : std::vector{reply_to(r, s)};
  });
  Summary s = run_session(quick(server.port()), -1);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.error, "server closed the connection");
  EXPECT_EQ(s.received, 19u);
}

TEST(RecordSession, RefusedConnectionIsAClearError) {
  ClientOptions o = quick(free_port());
  o.connect_timeout = milliseconds(300);
  Summary s = run_session(o, -1);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.error.find("connecting to 127.0.0.1"), std::string::npos) << s.error;
  EXPECT_EQ(s.sent, 0u);
}

TEST(RecordSession, UnresolvableHostIsAClearError) {
  ClientOptions o = quick(7000);
  o.host = "no such host!";
  Summary s = run_session(o, -1);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.error.find("cannot resolve"), std::string::npos) << s.error;
}

TEST(RecordSession, LongStallWithinTimeoutIsSurvivedAndMeasured) {
  // Replies stop for ~600 ms (like a failover), then everything arrives.
  FakeServer server([](const ftd_record& r, uint64_t& s) {
    if (r.client_seq == 50) std::this_thread::sleep_for(milliseconds(600));
    return std::vector{reply_to(r, s)};
  });
  ClientOptions o = quick(server.port());
  o.duration = milliseconds(1000);
  o.recv_timeout = milliseconds(3000);
  Summary s = run_session(o, -1);
  EXPECT_TRUE(s.ok) << s.to_json().dump();
  EXPECT_GE(s.longest_gap_ms, 550.0);
  EXPECT_LT(s.longest_gap_ms, 1500.0);
  EXPECT_EQ(s.longest_gap_before_seq, 50u);
}

// The real service and the real binary.
class RealServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    auto svc =
        Subprocess::spawn({.argv = {(build_dir() / "deploy/guest/ftd-guest-svc-host").string(),
                                    std::to_string(port_)},
                           .log_path = (fs::temp_directory_path() /
                                        ("ftd-svc-" + std::to_string(::getpid()) + ".log"))
                                           .string()});
    ASSERT_TRUE(svc) << svc.error().to_string();
    svc_ = std::move(*svc);
  }
  std::string client() const {
    return (build_dir() / "tools/record_client/ftd-record-client").string();
  }
  std::string json_path(int i) const {
    return (fs::temp_directory_path() /
            ("ftd-rc-" + std::to_string(::getpid()) + "-" + std::to_string(i) + ".json"))
        .string();
  }
  static nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    return nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  }
  uint16_t port_ = 0;
  Subprocess svc_;
};

TEST_F(RealServiceTest, TwoConcurrentClientsBothPass) {
  std::vector<Subprocess> clients;
  for (int i = 0; i < 2; ++i) {
    auto c = Subprocess::spawn(
        {.argv = {client(), "127.0.0.1", "--port", std::to_string(port_), "--rate", "300",
                  "--duration", "1.5", "--progress", "0.5", "--json-out", json_path(i)},
         .log_path = json_path(i) + ".log"});
    ASSERT_TRUE(c) << c.error().to_string();
    clients.push_back(std::move(*c));
  }
  for (int i = 0; i < 2; ++i) {
    auto rc = clients[i].wait(std::chrono::seconds(20));
    ASSERT_TRUE(rc) << rc.error().to_string();
    EXPECT_EQ(*rc, 0);
    auto j = read_json(json_path(i));
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["ok"], true) << j.dump();
    EXPECT_GT(j["received"].get<uint64_t>(), 300u);
    EXPECT_EQ(j["lost"], 0);
    std::ifstream log(json_path(i) + ".log");
    std::string all((std::istreambuf_iterator<char>(log)), {});
    EXPECT_NE(all.find("record.progress"), std::string::npos) << all;
  }
}

TEST_F(RealServiceTest, SigtermStopsAnOpenEndedRunCleanly) {
  auto c = Subprocess::spawn({.argv = {client(), "127.0.0.1", "--port", std::to_string(port_),
                                       "--rate", "200", "--json-out", json_path(9)},
                              .log_path = json_path(9) + ".log"});
  ASSERT_TRUE(c) << c.error().to_string();
  std::this_thread::sleep_for(milliseconds(1000));
  c->kill(SIGTERM);
  auto rc = c->wait(std::chrono::seconds(10));
  ASSERT_TRUE(rc) << rc.error().to_string();
  EXPECT_EQ(*rc, 0);
  auto j = read_json(json_path(9));
  EXPECT_EQ(j["ok"], true) << j.dump();
  EXPECT_GT(j["received"].get<uint64_t>(), 50u);
}

TEST_F(RealServiceTest, BadFlagsExitWithUsageError) {
  auto out = run_command({client(), "127.0.0.1", "--rate", "-5"});
  EXPECT_FALSE(out);
  auto c =
      Subprocess::spawn({.argv = {client(), "127.0.0.1", "--rate", "-5"}, .log_path = "/dev/null"});
  ASSERT_TRUE(c);
  auto rc = c->wait(std::chrono::seconds(5));
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 2);
}

}  // namespace
}  // namespace ftd::record
