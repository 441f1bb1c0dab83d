#include "tools/record_client/record_verifier.h"

#include <gtest/gtest.h>

namespace ftd::record {
namespace {

using std::chrono::milliseconds;

class VerifierTest : public ::testing::Test {
 protected:
  Clock::time_point t0 = Clock::now();
  RecordVerifier v{t0};
  uint64_t server_seq = 0;

  void send(int n) {
    for (int i = 0; i < n; ++i) v.next_to_send();
  }
  void reply(uint64_t client_seq, int at_ms) {
    v.on_reply(Reply{client_seq, ++server_seq, 100 + server_seq, 0}, t0 + milliseconds(at_ms));
  }
};

TEST_F(VerifierTest, InOrderStreamIsOk) {
  send(3);
  reply(1, 10);
  reply(2, 20);
  reply(3, 130);
  auto s = v.summary(t0 + milliseconds(200));
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(s.sent, 3u);
  EXPECT_EQ(s.received, 3u);
  EXPECT_EQ(s.lost, 0u);
  EXPECT_DOUBLE_EQ(s.longest_gap_ms, 110.0);
  EXPECT_EQ(s.longest_gap_before_seq, 3u);
  EXPECT_NEAR(s.longest_gap_at_s, 0.130, 1e-9);
  EXPECT_EQ(s.first_server_total, 101u);
  EXPECT_EQ(s.last_server_total, 103u);
}

TEST_F(VerifierTest, UnansweredRecordIsLost) {
  send(3);
  reply(1, 10);
  reply(2, 20);
  auto s = v.summary(t0 + milliseconds(30));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.lost, 1u);
}

TEST_F(VerifierTest, DuplicateIsCounted) {
  send(2);
  reply(1, 10);
  reply(1, 11);
  reply(2, 12);
  auto s = v.summary(t0 + milliseconds(30));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.duplicated, 1u);
  EXPECT_EQ(s.received, 2u);
  EXPECT_EQ(s.lost, 0u);
}

TEST_F(VerifierTest, ReorderIsCounted) {
  send(3);
  reply(2, 10);
  reply(1, 11);
  reply(3, 12);
  auto s = v.summary(t0 + milliseconds(30));
  EXPECT_FALSE(s.ok);
  EXPECT_GE(s.reordered, 1u);
  EXPECT_EQ(s.lost, 0u);
}

TEST_F(VerifierTest, ServerSequenceJumpIsABreak) {
  send(2);
  reply(1, 10);
  v.on_reply(Reply{2, 5, 0, 0}, t0 + milliseconds(20));  // server counter skipped 2..4
  auto s = v.summary(t0 + milliseconds(30));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.server_seq_breaks, 1u);
}

TEST_F(VerifierTest, ServerSequenceMustStartAtOne) {
  send(1);
  v.on_reply(Reply{1, 7, 0, 0}, t0 + milliseconds(10));
  EXPECT_EQ(v.summary(t0).server_seq_breaks, 1u);
}

TEST_F(VerifierTest, ReplyToUnsentNumberFails) {
  send(1);
  reply(1, 1);
  reply(9, 2);
  auto s = v.summary(t0);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.unknown, 1u);
}

TEST_F(VerifierTest, NothingReceivedIsNotOk) { EXPECT_FALSE(v.summary(t0).ok); }

TEST_F(VerifierTest, ErrorFailsAnOtherwiseCleanRun) {
  send(1);
  reply(1, 1);
  v.set_error("server closed the connection");
  auto s = v.summary(t0);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.to_json()["error"], "server closed the connection");
}

TEST_F(VerifierTest, JsonHasTheDocumentedFields) {
  send(1);
  reply(1, 1);
  auto j = v.summary(t0 + milliseconds(5)).to_json();
  for (const char* key : {"ok", "sent", "received", "lost", "duplicated", "reordered",
                          "server_seq_breaks", "longest_gap_ms", "longest_gap_at_s"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["ok"], true);
}

}  // namespace
}  // namespace ftd::record
