// QmpClient against a scripted fake QMP server (protocol edge cases that a
// real QEMU will not produce on demand). Real-QEMU cases are in the other suites.
#include "qemu/qmp_client.h"

#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

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
    auto send = [fd](const std::string& s) { (void)!::write(fd, s.data(), s.size()); };
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

}  // namespace
}  // namespace ftd
