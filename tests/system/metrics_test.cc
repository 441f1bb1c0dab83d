// The observability endpoint of real daemons: a protected pair (synthetic
// engine, real gRPC on loopback) with --metrics-listen on each side.
//  - /metrics is parsed by prometheus_client's parser (scrape_metrics.py) and
//    its numbers move (checkpoints_total grows between scrapes);
//  - the status page, loaded in a real headless Chromium, shows the VM's
//    role and state; its screenshot is kept under build/Testing/artifacts/;
//  - `ftctl events` streams a state change as it happens;
//  - a non-loopback --metrics-listen without a token is refused at start-up,
//    and with one, a scrape without the token gets 401 (inside a namespace
//    of the test's own, where 0.0.0.0 reaches nobody else).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "net/netns.h"
#include "tests/system/daemon_harness.h"
#include "tests/system/synthetic_workload.h"

namespace ftd::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path artifacts_dir() {
  auto dir = std::filesystem::path(built_binary("")) / "Testing" / "artifacts";
  std::filesystem::create_directories(dir);
  return dir;
}

// Debian's interpreter: python3-prometheus-client lives in its dist-packages.
Result<json> scrape(const std::string& url, const std::string& token_file = "") {
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      std::string(std::getenv("FTD_SOURCE_DIR")) + "/tests/system/scrape_metrics.py", url};
  if (!token_file.empty()) argv.push_back(token_file);
  FTD_ASSIGN_OR_RETURN(std::string out, run_command(argv));
  return json::parse(out);
}

// The value of `sample` (full sample name) with `labels` ⊆ its labels.
std::optional<double> sample(const json& scraped, const std::string& family,
                             const std::string& name, const json& labels) {
  if (!scraped["families"].contains(family)) return std::nullopt;
  for (const auto& s : scraped["families"][family]["samples"]) {
    if (s["name"] != name) continue;
    bool match = true;
    for (auto& [k, v] : labels.items()) match = match && s["labels"].value(k, "") == v;
    if (match) return s["value"].get<double>();
  }
  return std::nullopt;
}

std::vector<std::string> chromium(std::vector<std::string> args) {
  // Root in a container: Chromium's sandbox needs user namespaces it may not
  // get, hence --no-sandbox (the page is our own, served from loopback).
  std::vector<std::string> argv = {"chromium",
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--disable-dev-shm-usage",
                                   "--hide-scrollbars",
                                   "--window-size=1200,1000",
                                   "--virtual-time-budget=4000"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

struct Pair {
  TempDir work;
  TempDir replica_dir{"/dev/shm"};
  int rep_port = free_port();
  int pri_metrics = free_port();
  int sec_metrics = free_port();
  std::string pri_ctl = "unix:" + (work.path() / "primary.ctl").string();
  std::optional<Daemon> secondary, primary;

  std::string metrics_url(int port, const std::string& path = "/metrics") const {
    return fmt::format("http://127.0.0.1:{}{}", port, path);
  }

  void start() {
    auto sec_args = workload_flags(16);
    sec_args.insert(sec_args.end(),
                    {"--role", "secondary", "--listen", fmt::format("127.0.0.1:{}", rep_port),
                     "--replica-dir", replica_dir.path().string(), "--metrics-listen",
                     fmt::format("127.0.0.1:{}", sec_metrics)});
    auto s = Daemon::start(sec_args, "unix:" + (work.path() / "secondary.ctl").string(),
                           (work.path() / "secondary.log").string());
    ASSERT_TRUE(s) << s.error().to_string() << slurp(work.path() / "secondary.log");
    secondary = std::move(*s);
    auto pri_args = workload_flags(16);
    pri_args.insert(pri_args.end(), {"--role", "primary", "--peer",
                                     fmt::format("127.0.0.1:{}", rep_port), "--epoch-ms", "50",
                                     "--metrics-listen", fmt::format("127.0.0.1:{}", pri_metrics)});
    auto p = Daemon::start(pri_args, pri_ctl, (work.path() / "primary.log").string());
    ASSERT_TRUE(p) << p.error().to_string() << slurp(work.path() / "primary.log");
    primary = std::move(*p);
    ASSERT_TRUE(wait_for_acked_epoch(*primary, 5, std::chrono::seconds(60)))
        << slurp(work.path() / "primary.log");
  }
};

TEST(Metrics, PrometheusParserReadsMovingNumbersFromBothDaemons) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start());
  auto first = scrape(pair.metrics_url(pair.pri_metrics));
  ASSERT_TRUE(first) << first.error().to_string();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto second = scrape(pair.metrics_url(pair.pri_metrics));
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_THAT((*first)["content_type"].get<std::string>(), HasSubstr("version=0.0.4"));

  const json vm = {{"vm", "vm0"}};
  // prometheus_client names a counter family without "_total".
  EXPECT_EQ((*second)["families"]["ftd_checkpoints"]["type"], "counter");
  EXPECT_EQ((*second)["families"]["ftd_pause_seconds"]["type"], "histogram");
  auto c1 = sample(*first, "ftd_checkpoints", "ftd_checkpoints_total", vm);
  auto c2 = sample(*second, "ftd_checkpoints", "ftd_checkpoints_total", vm);
  ASSERT_TRUE(c1 && c2);
  EXPECT_GT(*c2, *c1 + 5) << "50 ms epochs for 1.5 s";
  RecordProperty("checkpoints_total_delta_1500ms", std::to_string(*c2 - *c1));
  auto count = sample(*second, "ftd_pause_seconds", "ftd_pause_seconds_count", vm);
  auto inf = sample(*second, "ftd_pause_seconds", "ftd_pause_seconds_bucket",
                    {{"vm", "vm0"}, {"le", "+Inf"}});
  ASSERT_TRUE(count && inf);
  EXPECT_GT(*count, 0);
  EXPECT_EQ(*count, *inf);
  EXPECT_EQ(
      sample(*second, "ftd_vm_state", "ftd_vm_state", {{"vm", "vm0"}, {"state", "protected"}}),
      1.0);
  EXPECT_GT(sample(*second, "ftd_wire_bytes", "ftd_wire_bytes_total", vm).value_or(0), 0);
  EXPECT_TRUE(sample(*second, "ftd_lag_seconds", "ftd_lag_seconds", vm));
  EXPECT_TRUE(sample(*second, "ftd_output_held", "ftd_output_held", vm));
  EXPECT_EQ(sample(*second, "ftd_sync_progress_ratio", "ftd_sync_progress_ratio", vm), 1.0);
  EXPECT_GE(sample(*second, "ftd_events", "ftd_events_total", {{"event", "vm.state"}}).value_or(0),
            1);

  auto sec = scrape(pair.metrics_url(pair.sec_metrics));
  ASSERT_TRUE(sec) << sec.error().to_string();
  EXPECT_EQ(sample(*sec, "ftd_vm_info", "ftd_vm_info", {{"vm", "vm0"}, {"role", "secondary"}}),
            1.0);
  EXPECT_GT(sample(*sec, "ftd_checkpoints", "ftd_checkpoints_total", vm).value_or(0), 0);
  EXPECT_FALSE(sample(*sec, "ftd_lag_seconds", "ftd_lag_seconds", vm)) << "primary-only";

  // Anything but the three routes is 404.
  auto missing = run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              pair.metrics_url(pair.pri_metrics, "/admin")});
  ASSERT_TRUE(missing) << missing.error().to_string();
  EXPECT_EQ(*missing, "404");
}

TEST(Metrics, StatusPageInHeadlessChromiumShowsTheVmState) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start());
  const std::string url = pair.metrics_url(pair.pri_metrics, "/");
  // --dump-dom prints the DOM after the page's scripts ran (virtual time
  // lets its 1 s poll fire a few times).
  auto dom = run_command(chromium({"--dump-dom", url}), std::chrono::seconds(90));
  ASSERT_TRUE(dom) << dom.error().to_string();
  EXPECT_THAT(*dom, HasSubstr("id=\"vm-vm0\""));
  EXPECT_THAT(*dom, HasSubstr("data-state=\"protected\""));
  EXPECT_THAT(*dom, HasSubstr("data-role=\"primary\""));
  EXPECT_THAT(*dom, HasSubstr("primary · protected"));
  EXPECT_THAT(*dom, HasSubstr("127.0.0.1:" + std::to_string(pair.rep_port)));  // the peer
  EXPECT_THAT(*dom, HasSubstr("data-name=\"vm.state\""));                      // the events table
  // The script's own status line: it reached /api/status (not "cannot reach").
  EXPECT_THAT(*dom, HasSubstr("<div id=\"updated\" class=\"\">updated "));

  const auto shot = artifacts_dir() / "status-page-primary.png";
  std::filesystem::remove(shot);
  auto taken =
      run_command(chromium({"--screenshot=" + shot.string(), url}), std::chrono::seconds(90));
  ASSERT_TRUE(taken) << taken.error().to_string();
  ASSERT_TRUE(std::filesystem::exists(shot));
  EXPECT_GT(std::filesystem::file_size(shot), 10'000u);
  EXPECT_EQ(slurp(shot).substr(1, 3), "PNG");
  RecordProperty("screenshot", shot.string());
}

TEST(Metrics, FtctlEventsStreamsAStateChangeAsItHappens) {
  Pair pair;
  ASSERT_NO_FATAL_FAILURE(pair.start());
  const auto out = pair.work.path() / "events.jsonl";
  auto events = Subprocess::spawn({.argv = {built_binary("tools/ftctl/ftctl"), "-c", pair.pri_ctl,
                                            "events", "--json", "--no-replay"},
                                   .log_path = out.string()});
  ASSERT_TRUE(events) << events.error().to_string();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // stream open
  EXPECT_EQ(slurp(out), "") << "--no-replay printed old events";
  auto st = run_command({built_binary("tools/ftctl/ftctl"), "-c", pair.pri_ctl, "unprotect"});
  ASSERT_TRUE(st) << st.error().to_string();
  ASSERT_TRUE(wait_until([&] { return slurp(out).find("\"vm.role\"") != std::string::npos; },
                         std::chrono::seconds(10)))
      << slurp(out);
  EXPECT_TRUE(events->running()) << "the stream must last until Ctrl-C";
  events->kill(SIGINT);
  ASSERT_TRUE(events->wait(std::chrono::seconds(5)));
  std::istringstream lines(slurp(out));
  std::string line;
  bool role_change = false;
  while (std::getline(lines, line)) {
    auto e = json::parse(line);  // every line is one JSON object
    if (e["name"] == "vm.role") {
      role_change = true;
      EXPECT_EQ(e["vm"], "vm0");
      EXPECT_THAT(e["fields"].get<std::string>(), HasSubstr("from=primary to=active"));
    }
  }
  EXPECT_TRUE(role_change);
  // The replayed ring (no --no-replay) starts with what happened before.
  auto replay = run_command({"timeout", "-s", "INT", "2", built_binary("tools/ftctl/ftctl"), "-c",
                             pair.pri_ctl, "events"});
  ASSERT_FALSE(replay) << "timeout ends it with status 124";
  EXPECT_THAT(replay.error().message, HasSubstr("vm.state"));
  EXPECT_THAT(replay.error().message, HasSubstr("to=protected"));
}

TEST(Metrics, NonLoopbackNeedsATokenAndRefusesScrapesWithoutIt) {
  TempDir work;
  auto sec_args = [&](const std::string& listen, const std::string& token_file) {
    std::vector<std::string> a = workload_flags(16);
    a.insert(a.end(), {"--role", "secondary", "--listen", "127.0.0.1:7400", "--replica-dir",
                       (work.path() / "replica").string(), "--metrics-listen", listen});
    if (!token_file.empty()) a.insert(a.end(), {"--metrics-token-file", token_file});
    return a;
  };
  // Without a token: refused before anything listens, saying what to do.
  const auto refused_log = work.path() / "refused.log";
  auto refused =
      Daemon::start(sec_args("0.0.0.0:9464", ""), "unix:" + (work.path() / "refused.ctl").string(),
                    refused_log.string());
  EXPECT_FALSE(refused);
  EXPECT_THAT(slurp(refused_log), HasSubstr("--metrics-token-file"));

  // With one, in a namespace of our own (0.0.0.0 there reaches nobody else).
  auto ns = net::NetNamespace::create(net::unique_ifname("met"));
  ASSERT_TRUE(ns) << ns.error().to_string();
  const auto token_file = work.path() / "token";
  std::ofstream(token_file) << "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5\n";
  ::chmod(token_file.c_str(), 0600);
  auto daemon = Daemon::start(sec_args("0.0.0.0:9464", token_file.string()),
                              "unix:" + (work.path() / "d.ctl").string(),
                              (work.path() / "d.log").string(), ns->name());
  ASSERT_TRUE(daemon) << daemon.error().to_string() << slurp(work.path() / "d.log");
  auto curl = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {"ip", "netns", "exec",      ns->name(), "curl",
                                     "-s", "-o",    "/dev/null", "-w",       "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("http://127.0.0.1:9464/metrics");
    return run_command(argv);
  };
  EXPECT_EQ(curl({}).value_or("error"), "401");
  EXPECT_EQ(curl({"-H", "Authorization: Bearer wrong-token-wrong-token"}).value_or("error"), "401");
  EXPECT_EQ(
      curl({"-H", "Authorization: Bearer 5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"}).value_or("error"),
      "200");
}

}  // namespace
}  // namespace ftd::testing
