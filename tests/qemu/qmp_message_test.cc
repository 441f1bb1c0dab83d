// The QMP JSON layer without a socket: line splitting, greeting, events, replies.
#include "qemu/qmp_message.h"

#include <gtest/gtest.h>

namespace ftd {
namespace {

TEST(QmpMessage, PopsCompleteLinesAndKeepsThePartialOne) {
  std::string buf = "\r\n  \n{\"QMP\": {}}\r\n{\"event\": \"STOP\"}\n{\"ret";
  auto first = pop_qmp_message(buf);
  ASSERT_TRUE(first && *first);
  EXPECT_TRUE(check_qmp_greeting(**first, "q"));
  auto second = pop_qmp_message(buf);
  ASSERT_TRUE(second && *second);
  EXPECT_TRUE(is_qmp_event(**second));
  EXPECT_EQ(qmp_event_name(**second), "STOP");
  EXPECT_EQ(qmp_event_data(**second), QmpJson::object());
  EXPECT_FALSE(pop_qmp_message(buf));
  EXPECT_EQ(buf, "{\"ret");
}

TEST(QmpMessage, MalformedLineIsCorruptAndConsumed) {
  std::string buf = "{not json\n{}\n";
  auto bad = pop_qmp_message(buf);
  ASSERT_TRUE(bad);
  ASSERT_FALSE(*bad);
  EXPECT_EQ(bad->error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(buf, "{}\n");
}

TEST(QmpMessage, GreetingWithoutQmpMemberIsCorrupt) {
  auto st = check_qmp_greeting(QmpJson{{"hello", 1}}, "/run/q.sock");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(st.error().message.find("/run/q.sock"), std::string::npos);
}

TEST(QmpMessage, UintMemberOnlyWhenANonNegativeInteger) {
  auto obj = QmpJson::parse(
      R"({"n": 536870912, "s": "512", "neg": -1, "f": 1.5, "o": {}, "max": 18446744073709551615})");
  EXPECT_EQ(qmp_uint(obj, "n"), 536870912u);
  EXPECT_EQ(qmp_uint(obj, "max"), UINT64_MAX);
  for (auto key : {"s", "neg", "f", "o", "missing"}) EXPECT_FALSE(qmp_uint(obj, key)) << key;
  EXPECT_FALSE(qmp_uint(QmpJson::array({1}), "n"));
  EXPECT_FALSE(qmp_uint(QmpJson(7), "n"));
}

TEST(QmpMessage, EventDataAndName) {
  auto ev = QmpJson::parse(R"({"event": "MIGRATION", "data": {"status": "active"}})");
  EXPECT_EQ(qmp_event_name(ev), "MIGRATION");
  EXPECT_EQ(qmp_event_data(ev)["status"], "active");
  EXPECT_FALSE(is_qmp_event(QmpJson{{"return", 1}}));
}

TEST(QmpMessage, ReplyMatchesOnlyItsId) {
  auto reply = QmpJson::parse(R"({"return": {}, "id": 7})");
  EXPECT_TRUE(is_qmp_reply_to(reply, 7));
  EXPECT_FALSE(is_qmp_reply_to(reply, 6));
  EXPECT_FALSE(is_qmp_reply_to(QmpJson{{"return", 1}}, 7));
}

TEST(QmpMessage, ReplyResultReturnErrorOrCorrupt) {
  auto value = qmp_reply_result(QmpJson::parse(R"({"return": {"status": "paused"}, "id": 1})"),
                                "query-status");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ((*value)["status"], "paused");

  auto err = qmp_reply_result(
      QmpJson::parse(R"({"error": {"class": "GenericError", "desc": "nope"}, "id": 1})"), "stop");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(err.error().message.find("GenericError: nope"), std::string::npos);

  auto odd = qmp_reply_result(QmpJson::parse(R"({"id": 1})"), "stop");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, ErrorCode::kCorrupt);
}

// qmp_message_fuzzer's crash: an event whose name is an object made
// qmp_event_name() throw nlohmann's type_error, which nothing caught.
TEST(QmpMessage, FuzzerEventNamedByAnObject) {
  constexpr char kInput[] =
      "{\"timustamp\": {\"seconds\": 5}, \"e\": {\"seconds\": 5}, \"event\": {\"status\": "
      "\"active\"}}\r\n{\"timestamp\": {\"seconds\": 170000000\x01\0\0\0\0\0\0\x00"
      "0, \"microseconds\": 3456},] \"event\": \"RESUME\"}\r\n";
  std::string buf(kInput, sizeof kInput - 1);  // 173 bytes, NULs included
  auto ev = pop_qmp_message(buf);
  ASSERT_TRUE(ev && *ev);
  EXPECT_TRUE(is_qmp_event(**ev));
  EXPECT_EQ(qmp_event_name(**ev), "");  // matches no waiter
  EXPECT_EQ(qmp_event_data(**ev), QmpJson::object());
  auto bad = pop_qmp_message(buf);
  ASSERT_TRUE(bad);
  EXPECT_FALSE(*bad);
  EXPECT_FALSE(pop_qmp_message(buf));
}

// Every member QmpClient and QmpEngine read, with the wrong type: treated
// as missing, never an exception.
TEST(QmpMessage, WronglyTypedMembersAreMissingNotExceptions) {
  for (const char* text : {R"({"event": 1, "data": [1, 2]})", R"({"event": null, "data": "x"})",
                           R"({"event": ["STOP"], "data": {"status": 5}})"}) {
    auto ev = QmpJson::parse(text);
    EXPECT_NO_THROW({
      EXPECT_EQ(qmp_event_name(ev), "") << text;
      EXPECT_TRUE(qmp_event_data(ev).is_object()) << text;
      EXPECT_EQ(qmp_string(qmp_event_data(ev), "status"), "") << text;
    });
  }
  EXPECT_EQ(qmp_string(QmpJson::array({1}), "status", "?"), "?");
  EXPECT_EQ(qmp_string(QmpJson{{"status", "paused"}}, "status"), "paused");

  for (const char* text : {R"({"id": 1, "error": "boom"})", R"({"id": 1, "error": [1]})",
                           R"({"id": 1, "error": {"class": 7, "desc": null}})"}) {
    Result<QmpJson> r;
    EXPECT_NO_THROW(r = qmp_reply_result(QmpJson::parse(text), "stop")) << text;
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition) << text;
    EXPECT_NE(r.error().message.find("failed: ?: ?"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace ftd
