// `ftctl plan` against real daemons (synthetic engine, real gRPC on
// loopback): the Plan RPC samples the live pipeline and ftctl runs the
// model; where nothing can be sampled the answer says why and changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

struct Pair {
  TempDir work;
  TempDir replica_dir{"/dev/shm"};
  int rep_port = free_port();
  std::string pri_ctl = "unix:" + (work.path() / "primary.ctl").string();
  std::string sec_ctl = "unix:" + (work.path() / "secondary.ctl").string();
  std::optional<Daemon> secondary, primary;

  void start() {
    auto sec_args = workload_flags(16);
    sec_args.insert(sec_args.end(),
                    {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", rep_port),
                     "--replica-dir", replica_dir.path().string()});
    auto s = Daemon::start(sec_args, sec_ctl, (work.path() / "secondary.log").string());
    ASSERT_TRUE(s) << s.error().to_string() << slurp(work.path() / "secondary.log");
    secondary = std::move(*s);
    auto pri_args = workload_flags(16);
    pri_args.insert(pri_args.end(), {"--role", "primary", "--peer",
                                     fmt::format("127.0.0.1:{}", rep_port), "--epoch-ms", "50"});
    auto p = Daemon::start(pri_args, pri_ctl, (work.path() / "primary.log").string());
    ASSERT_TRUE(p) << p.error().to_string() << slurp(work.path() / "primary.log");
    primary = std::move(*p);
    ASSERT_TRUE(wait_for_acked_epoch(*primary, 5, std::chrono::seconds(60)))
        << slurp(work.path() / "primary.log");
  }
};

Result<std::string> ftctl(const std::string& control, std::vector<std::string> args) {
  std::vector<std::string> argv = {built_binary("tools/ftctl/ftctl"), "-c", control};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, std::chrono::seconds(60));
}

TEST(Plan, SamplesTheProtectedGuestAndPredicts) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start());
  auto out = ftctl(pair.pri_ctl, {"plan", "--sample-s", "2", "--json"});
  ASSERT_TRUE(out) << out.error().to_string();
  const json plan = json::parse(*out);
  const json& in = plan["inputs"];
  EXPECT_EQ(in["ram_bytes"].get<uint64_t>(), 16u << 20);
  EXPECT_EQ(in["sampled_epoch_ms"].get<double>(), 50);
  // The synthetic writer dirties pages all the time; checkpoints every 50 ms.
  EXPECT_GT(in["dirty_pages_per_s"].get<double>(), 500) << *out;
  EXPECT_GT(in["checkpoints_per_sec"].get<double>(), 5) << *out;
  EXPECT_LE(in["checkpoints_per_sec"].get<double>(), 21) << *out;
  EXPECT_GT(in["commit_p50_ms"].get<double>(), 0) << *out;
  EXPECT_GT(in["compression_ratio"].get<double>(), 1) << *out;
  EXPECT_THAT(in["link_source"].get<std::string>(), HasSubstr("measured"));
  EXPECT_GT(plan["protection"]["pause_p50_ms"].get<double>(), 0);
  EXPECT_LE(plan["protection"]["checkpoints_per_sec"].get<double>(), 20 + 1e-9);
  EXPECT_GT(plan["ftd_migration"]["downtime_ms"].get<double>(), 0);
  EXPECT_TRUE(plan["qemu_precopy"].contains("converges"));
  EXPECT_THAT(slurp(pair.work.path() / "primary.log"), HasSubstr("plan.sampled vm=vm0"));

  // Another epoch and a configured link: the table names them.
  auto table =
      ftctl(pair.pri_ctl, {"plan", "--sample-s", "1", "--epoch-ms", "25", "--link-mbps", "1000"});
  ASSERT_TRUE(table) << table.error().to_string();
  EXPECT_THAT(*table, HasSubstr("protection at epoch 25 ms"));
  EXPECT_THAT(*table, HasSubstr("configured 1000 Mbit/s"));
  EXPECT_THAT(*table, HasSubstr("QEMU pre-copy"));
}

TEST(Plan, RefusesWhereNothingIsProtectedAndOnBadInput) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start());
  auto on_secondary = ftctl(pair.sec_ctl, {"plan", "--sample-s", "1"});
  ASSERT_FALSE(on_secondary);
  EXPECT_THAT(on_secondary.error().message, HasSubstr("run plan on the primary"));
  auto bad = ftctl(pair.pri_ctl, {"plan", "--sample-s", "600"});
  ASSERT_FALSE(bad) << "sample window out of range accepted";
  auto unknown = ftctl(pair.pri_ctl, {"plan", "--vm", "nope", "--sample-s", "1"});
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("no VM named 'nope'"));

  ASSERT_TRUE(ftctl(pair.pri_ctl, {"unprotect"}));
  auto unprotected = ftctl(pair.pri_ctl, {"plan", "--sample-s", "1"});
  ASSERT_FALSE(unprotected);
  EXPECT_THAT(unprotected.error().message, HasSubstr("runs unprotected"));
  // Planning changed nothing: the VM can be protected again.
  EXPECT_TRUE(ftctl(pair.pri_ctl, {"protect"})) << slurp(pair.work.path() / "primary.log");
}

}  // namespace
}  // namespace ftd::testing
