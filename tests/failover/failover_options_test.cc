#include "failover/failover_options.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/failover/udp_ports.h"

namespace ftd {
namespace {
using testing::free_udp_port;
using testing::loopback;

std::string key_file() {
  const std::string path = ::testing::TempDir() + "/hb.key";
  std::ofstream(path) << std::string(64, 'd') << "\n";
  return path;
}

TEST(FailoverOptions, ParsesFlagsAndBuildsTheParts) {
  CLI::App app;
  FailoverOptions o;
  o.add_to(app);
  const std::string link = loopback(free_udp_port()) + "=" + loopback(free_udp_port());
  const std::string key = key_file();
  std::vector<std::string> args = {"ftd", "--heartbeat-link",        link, "--heartbeat-key",
                                   key,   "--heartbeat-interval-ms", "40", "--arbiter",
                                   "none"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ASSERT_NO_THROW(app.parse(static_cast<int>(argv.size()), argv.data()));
  EXPECT_EQ(o.heartbeat_interval_ms, 40);
  auto parts = build_failover(o, Side::kSecondary, "web1", {});
  ASSERT_TRUE(parts) << parts.error().to_string();
  ASSERT_TRUE(parts->monitor);
  EXPECT_EQ(parts->arbiter->name(), "none");
  EXPECT_EQ(parts->heartbeat->config().interval.count(), 40);
  EXPECT_EQ(parts->monitor->status().arbiter, "none");
}

TEST(FailoverOptions, BadInputIsAClearError) {
  FailoverOptions o;
  EXPECT_FALSE(build_failover(o, Side::kPrimary, "web1", {})->monitor) << "no links: off";
  o.heartbeat_links = {"127.0.0.1:1"};
  auto r = build_failover(o, Side::kPrimary, "web1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("want local=peer"), std::string::npos);
  o.heartbeat_links = {loopback(free_udp_port()) + "=" + loopback(free_udp_port())};
  o.heartbeat_key_file = "/nonexistent/key";
  r = build_failover(o, Side::kPrimary, "web1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/key"), std::string::npos);
  o.heartbeat_key_file = key_file();
  o.arbiter = "witness";
  o.witness_key_file = "/nonexistent/wkey";
  r = build_failover(o, Side::kPrimary, "web1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("wkey"), std::string::npos);
  o.arbiter = "corosync";  // no peer nodeid
  r = build_failover(o, Side::kPrimary, "web1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("peer nodeid"), std::string::npos);
  o.corosync_peer_nodeid = 2;  // no corosync running in this (test) namespace
  r = build_failover(o, Side::kPrimary, "web1", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace ftd
