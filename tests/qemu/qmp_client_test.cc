// QmpClient against a scripted fake QMP server (protocol edge cases that a
// real QEMU will not produce on demand). Real-QEMU cases are in the other suites.
#include "qemu/qmp_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "qemu/qemu_process.h"
#include "qemu_test_util.h"

namespace ftd {
namespace {

using Json = QmpClient::Json;
using namespace std::chrono_literals;

// Answers each request line with the lines `script(request)` returns; the
// reply "CLOSE" closes the connection, "SILENT" sends nothing.
class FakeQmpServer {
 public:
  using Script = std::function<std::vector<std::string>(const Json&)>;
  FakeQmpServer(std::string path, Script script,
                std::string greeting = R"({"QMP": {"version": {}, "capabilities": []}})")
      : listener_(*UnixListener::listen(path)),
        thread_([this, script, greeting] { serve(script, greeting); }) {}
  ~FakeQmpServer() { thread_.join(); }
  const std::string& path() const { return listener_.path(); }

 private:
  void serve(const Script& script, const std::string& greeting) {
    auto conn = listener_.accept(deadline_after(5s));
    if (!conn) return;
    int fd = conn->get();
    // MSG_NOSIGNAL: the client may close first (a flood it refuses).
    auto send = [fd](const std::string& s) { (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL); };
    send(greeting + "\r\n");
    std::string buf;
    char c;
    while (::read(fd, &c, 1) == 1) {
      if (c != '\n') {
        buf += c;
        continue;
      }
      Json req = Json::parse(buf, nullptr, false);
      buf.clear();
      if (req.value("execute", "") == "qmp_capabilities") {
        send(Json{{"return", Json::object()}, {"id", req["id"]}}.dump() + "\r\n");
        continue;
      }
      for (const auto& line : script(req)) {
        if (line == "CLOSE") return;
        if (line == "SILENT") continue;
        send(line + "\r\n");
      }
    }
  }

  UnixListener listener_;
  std::thread thread_;
};

std::string reply(const Json& req, const Json& value) {
  return Json{{"return", value}, {"id", req["id"]}}.dump();
}

TEST(QmpClient, ReturnsValuesAndQueuesEvents) {
  testing::TempDir dir;
  FakeQmpServer server(dir.file("q"), [](const Json& req) -> std::vector<std::string> {
    return {R"({"event": "STOP", "data": {}})",
            R"({"event": "MIGRATION", "data": {"status": "active"}})",
            reply(req, Json{{"status", "paused"}})};
  });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp) << qmp.error().to_string();
  auto r = qmp->execute("query-status");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)["status"], "paused");
  EXPECT_EQ(qmp->queued_events(), 2u);
  auto ev = qmp->wait_event("MIGRATION", 100ms,
                            [](const Json& d) { return d.value("status", "") == "active"; });
  ASSERT_TRUE(ev) << ev.error().to_string();
  EXPECT_EQ(qmp->queued_events(), 1u);
  auto missing = qmp->wait_event("RESUME", 50ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kTimeout);
  qmp->discard_events();
  EXPECT_EQ(qmp->queued_events(), 0u);
}

TEST(QmpClient, ErrorReplyCarriesClassAndDescription) {
  testing::TempDir dir;
  FakeQmpServer server(dir.file("q"), [](const Json& req) -> std::vector<std::string> {
    return {Json{
        {"error", {{"class", "CommandNotFound"}, {"desc", "The command foo has not been found"}}},
        {"id", req["id"]}}
                .dump()};
  });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto r = qmp->execute("foo");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("CommandNotFound"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("has not been found"), std::string::npos);
}

TEST(QmpClient, EofWhileWaitingIsUnavailable) {
  testing::TempDir dir;
  FakeQmpServer server(dir.file("q"),
                       [](const Json&) -> std::vector<std::string> { return {"CLOSE"}; });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto start = Clock::now();
  auto r = qmp->execute("stop", {}, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();
  EXPECT_LT(ms_since(start), 1000);
  EXPECT_FALSE(qmp->connected());
}

TEST(QmpClient, NoReplyTimesOutAndStaleReplyIsSkipped) {
  testing::TempDir dir;
  int calls = 0;
  FakeQmpServer server(dir.file("q"), [&calls](const Json& req) -> std::vector<std::string> {
    if (++calls == 1) return {"SILENT"};
    // The late reply to the first command arrives before the second's.
    return {Json{{"return", "stale"}, {"id", req["id"].get<int>() - 1}}.dump(),
            reply(req, "fresh")};
  });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto start = Clock::now();
  auto r = qmp->execute("stop", {}, 100ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(ms_since(start), 1000);
  auto r2 = qmp->execute("cont", {}, 2s);
  ASSERT_TRUE(r2) << r2.error().to_string();
  EXPECT_EQ(*r2, "fresh");
  (void)qmp->execute("x", {}, 50ms);  // lets the fake server finish
}

TEST(QmpClient, ConnectGivesUpAtDeadline) {
  testing::TempDir dir;
  auto start = Clock::now();
  auto qmp = QmpClient::connect(dir.file("nobody-listens"), deadline_after(150ms));
  ASSERT_FALSE(qmp);
  EXPECT_EQ(qmp.error().code, ErrorCode::kTimeout);
  EXPECT_GE(ms_since(start), 140);
  EXPECT_LT(ms_since(start), 2000);
}

TEST(QmpClient, RejectsNonQmpPeer) {
  testing::TempDir dir;
  FakeQmpServer server(
      dir.file("q"), [](const Json&) -> std::vector<std::string> { return {}; },
      R"({"hello": "not qmp"})");
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_FALSE(qmp);
  EXPECT_EQ(qmp.error().code, ErrorCode::kCorrupt);
}

TEST(QmpClient, MalformedJsonIsCorrupt) {
  testing::TempDir dir;
  FakeQmpServer server(dir.file("q"), [](const Json&) -> std::vector<std::string> {
    return {"{not json", "CLOSE"};
  });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto r = qmp->execute("stop");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
}

TEST(QmpClient, LargeReplyBelowTheLimitIsRead) {
  testing::TempDir dir;
  std::string big(4 << 20, 'x');  // far larger than any QEMU 7.2 reply, below the cap
  FakeQmpServer server(dir.file("q"), [&big](const Json& req) -> std::vector<std::string> {
    return {reply(req, big)};
  });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto r = qmp->execute("query-qmp-schema", {}, 10s);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->get<std::string>().size(), big.size());
}

TEST(QmpClient, EndlessLineIsRefusedAndClosesTheConnection) {
  testing::TempDir dir;
  // One line longer than the cap with no newline before the limit is crossed.
  std::string endless(QmpClient::kMaxBufferedBytes + (1 << 20), 'x');
  FakeQmpServer server(dir.file("q"),
                       [&endless](const Json&) -> std::vector<std::string> { return {endless}; });
  auto qmp = QmpClient::connect(server.path(), deadline_after(2s));
  ASSERT_TRUE(qmp);
  auto r = qmp->execute("stop", {}, 10s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted) << r.error().to_string();
  EXPECT_NE(r.error().message.find("without a complete message"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(qmp->connected());
  // A broken connection stays broken: no half-line is ever parsed later.
  auto again = qmp->execute("cont", {}, 100ms);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
}

// attach() reads the guest RAM size from QEMU's reply: a reply of the wrong
// shape used to throw nlohmann's type_error out of the daemon.
TEST(QemuProcessAttach, UnusableBaseMemoryIsAClearError) {
  for (const Json& summary : {Json{{"base-memory", "512M"}}, Json{{"base-memory", -1}},
                              Json{{"plugged-memory", 0}}, Json::array()}) {
    testing::TempDir dir;
    FakeQmpServer server(dir.file("q"), [&summary](const Json& req) -> std::vector<std::string> {
      return {reply(req, summary), "CLOSE"};
    });
    // Our own pid passes attach()'s liveness check; the reply is refused before any mapping.
    auto q = QemuProcess::attach(server.path(), ::getpid(), 2s);
    ASSERT_FALSE(q) << summary.dump();
    EXPECT_EQ(q.error().code, ErrorCode::kCorrupt) << q.error().to_string();
    EXPECT_NE(q.error().message.find("base-memory"), std::string::npos) << q.error().message;
  }
}

}  // namespace
}  // namespace ftd
