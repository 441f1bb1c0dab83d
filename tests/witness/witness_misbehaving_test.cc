// A witness that answers garbage, forges grants or hangs: the client gets a
// clear error or a refusal, never the right to run alone.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "failover/witness_arbiter.h"
#include "failover/witness_auth.h"
#include "tests/witness/witness_process.h"
#include "witness.grpc.pb.h"

namespace ftd {
namespace {
using namespace std::chrono_literals;

enum class Misbehaviour { kBadMac, kWrongNonce, kGrantToOther, kTermBackwards };

class FakeWitness final : public witness::Witness::Service {
 public:
  explicit FakeWitness(Misbehaviour m) : m_(m) {}
  grpc::Status Acquire(grpc::ServerContext*, const witness::LeaseRequest* req,
                       witness::LeaseReply* reply) override {
    reply->set_granted(true);
    reply->set_term(m_ == Misbehaviour::kTermBackwards ? 10 - calls_++ : 5);
    reply->set_holder(m_ == Misbehaviour::kGrantToOther ? "web1/Z" : req->holder());
    reply->set_lease_ms(1000);
    reply->set_request_nonce(req->nonce() + (m_ == Misbehaviour::kWrongNonce ? 1 : 0));
    Mac mac =
        witness_reply_mac(*reply, testing::holder_key(m_ == Misbehaviour::kBadMac ? 'c' : 'a'));
    reply->set_mac(std::string(mac.begin(), mac.end()));
    return grpc::Status::OK;
  }

 private:
  Misbehaviour m_;
  int calls_ = 0;
};

struct FakeServer {
  explicit FakeServer(Misbehaviour m) : service(m) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
  }
  ~FakeServer() { server->Shutdown(); }
  FakeWitness service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

WitnessArbiterConfig cfg(const std::string& addr) {
  return {.address = addr,
          .vm = "web1",
          .holder = "web1/A",
          .key = testing::holder_key('a'),
          .rpc_timeout = 300ms};
}

TEST(WitnessMisbehaving, GarbageRepliesAreErrorsNeverGrants) {
  for (auto m : {Misbehaviour::kBadMac, Misbehaviour::kWrongNonce, Misbehaviour::kGrantToOther}) {
    FakeServer s(m);
    auto a = WitnessArbiter::create(cfg("127.0.0.1:" + std::to_string(s.port)));
    auto v = (*a)->claim(500ms);
    ASSERT_FALSE(v) << "misbehaviour " << static_cast<int>(m) << ": " << v->evidence;
    EXPECT_EQ(v.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(v.error().message.find("misbehaves"), std::string::npos) << v.error().message;
    EXPECT_FALSE((*a)->current().may_run_alone);
    EXPECT_NE((*a)->current().evidence.find("misbehaves"), std::string::npos);
  }
}

TEST(WitnessMisbehaving, TermGoingBackwardsIsAnError) {
  FakeServer s(Misbehaviour::kTermBackwards);
  auto a = WitnessArbiter::create(cfg("127.0.0.1:" + std::to_string(s.port)));
  ASSERT_TRUE((*a)->acquire_once());
  auto v = (*a)->acquire_once();
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("backwards"), std::string::npos) << v.error().message;
}

TEST(WitnessMisbehaving, HangingWitnessGivesARefusalWithinTheTimeout) {
  // Accepts TCP connections (kernel backlog) but never speaks HTTP/2.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto arb = WitnessArbiter::create(cfg("127.0.0.1:" + std::to_string(ntohs(a.sin_port))));
  const auto start = std::chrono::steady_clock::now();
  auto v = (*arb)->claim(800ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_FALSE(v->may_run_alone);
  EXPECT_NE(v->evidence.find("witness 127.0.0.1"), std::string::npos) << v->evidence;
  EXPECT_LT(took, 2s);
}

}  // namespace
}  // namespace ftd
