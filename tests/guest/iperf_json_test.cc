// bench/iperf_client's reading of iperf3 -J output: rates by the client's
// (host's) clock, whichever side sent, and clear errors for output that is
// not a finished test.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/guest/iperf_client.h"

namespace ftd::testing {
namespace {

using Json = nlohmann::json;

// A finished test as iperf3 3.12 reports it; the guest's side measured
// `guest_s` seconds (its clock stops while a checkpoint pauses it).
Json finished(bool reverse, double client_s, double guest_s, int64_t bytes) {
  Json local{{"seconds", client_s}, {"bytes", bytes}, {"bits_per_second", bytes * 8 / client_s}};
  Json remote{{"seconds", guest_s}, {"bytes", bytes}, {"bits_per_second", bytes * 8 / guest_s}};
  Json sent = reverse ? remote : local;
  Json received = reverse ? local : remote;
  sent["retransmits"] = 7;
  return {
      {"start", {{"test_start", {{"reverse", reverse ? 1 : 0}}}}},
      {"end",
       {{"streams", Json::array({{{"sender", {{"max_snd_cwnd", 400000}, {"mean_rtt", 50000}}}}})},
        {"sum_sent", sent},
        {"sum_received", received}}}};
}

TEST(IperfJson, ClientToGuestUsesTheClientsClock) {
  auto r = parse_iperf_json(finished(false, 4.0, 2.0, 10'000'000).dump());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_DOUBLE_EQ(r->seconds, 4.0);
  EXPECT_DOUBLE_EQ(r->guest_seconds, 2.0);
  EXPECT_DOUBLE_EQ(r->received_mbit_per_sec, 20.0);  // not the guest's 40
  EXPECT_EQ(r->retransmits, 7);
  EXPECT_EQ(r->max_snd_cwnd_bytes, 400000);
  EXPECT_EQ(r->mean_rtt_us, 50000);
}

TEST(IperfJson, GuestToClientUsesTheClientsClock) {
  auto r = parse_iperf_json(finished(true, 5.0, 1.0, 5'000'000).dump());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_DOUBLE_EQ(r->seconds, 5.0);
  EXPECT_DOUBLE_EQ(r->received_mbit_per_sec, 8.0);
  EXPECT_DOUBLE_EQ(r->sent_mbit_per_sec, 8.0);
}

TEST(IperfJson, ErrorsAreClear) {
  auto garbage = parse_iperf_json("iperf3: error - unable to connect");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("not a JSON object"), std::string::npos);

  auto refused = parse_iperf_json(
      R"({"start": {}, "intervals": [], "end": {}, "error": "test authorization failed"})");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("test authorization failed"), std::string::npos);

  auto unfinished = parse_iperf_json(R"({"start": {}, "intervals": []})");
  ASSERT_FALSE(unfinished);
  EXPECT_NE(unfinished.error().message.find("end.sum_sent"), std::string::npos);

  Json no_time = finished(false, 0.0, 0.0, 0);
  auto zero = parse_iperf_json(no_time.dump());
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message.find("no duration"), std::string::npos);
}

}  // namespace
}  // namespace ftd::testing
