// What the metrics endpoint answers, without sockets: routes, 404/405, the
// bearer token check, and the page's JSON.
#include "observability/http_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ftd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MetricsSources sources(std::shared_ptr<EventJournal> journal) {
  return {.status =
              [] {
                v1::StatusReply r;
                auto* vm = r.add_vms();
                vm->set_name("web1");
                vm->set_role("primary");
                vm->set_state(v1::VM_STATE_PROTECTED);
                vm->set_checkpoints_total(5);
                return r;
              },
          .events = std::move(journal)};
}

TEST(HttpRoutes, ServesMetricsPageAndJson) {
  auto journal = std::make_shared<EventJournal>();
  journal->log("vm.state vm=web1 from=syncing to=protected");
  HttpRoutes routes(sources(journal), "");
  auto metrics = routes.handle("GET", "/metrics", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.content_type, HasSubstr("version=0.0.4"));
  EXPECT_THAT(metrics.body, HasSubstr("ftd_checkpoints_total{vm=\"web1\"} 5\n"));
  auto page = routes.handle("GET", "/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("<title>ftd status</title>"));
  EXPECT_THAT(page.body, HasSubstr("api/status"));
  auto api = routes.handle("GET", "/api/status?t=1", "");
  ASSERT_EQ(api.status, 200);
  auto j = nlohmann::json::parse(api.body);
  EXPECT_EQ(j["status"]["vms"][0]["name"], "web1");
  EXPECT_EQ(j["status"]["vms"][0]["state"], "VM_STATE_PROTECTED");
  EXPECT_EQ(j["events"][0]["name"], "vm.state");
  EXPECT_EQ(j["events"][0]["vm"], "web1");
}

TEST(HttpRoutes, UnknownPathsAndMethods) {
  HttpRoutes routes(sources(std::make_shared<EventJournal>()), "");
  EXPECT_EQ(routes.handle("GET", "/etc/passwd", "").status, 404);
  EXPECT_EQ(routes.handle("GET", "/metricsx", "").status, 404);
  EXPECT_EQ(routes.handle("POST", "/metrics", "").status, 405);
  EXPECT_EQ(routes.handle("DELETE", "/", "").status, 405);
}

TEST(HttpRoutes, BearerTokenRequiredWhenConfigured) {
  const std::string token = "0123456789abcdef0123";
  HttpRoutes routes(sources(std::make_shared<EventJournal>()), token);
  for (std::string_view auth : {"", "Bearer", "Bearer wrong", "Basic 0123456789abcdef0123",
                                "Bearer 0123456789abcdef012", "Bearer 0123456789abcdef01234"}) {
    auto r = routes.handle("GET", "/metrics", auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_TRUE(r.bearer_challenge);
    EXPECT_THAT(r.body, Not(HasSubstr("ftd_")));
  }
  // Unauthenticated requests learn nothing, not even which paths exist.
  EXPECT_EQ(routes.handle("GET", "/nope", "").status, 401);
  EXPECT_EQ(routes.handle("GET", "/metrics", "Bearer " + token).status, 200);
}

}  // namespace
}  // namespace ftd
