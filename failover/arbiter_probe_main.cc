// ftd-arbiter-probe: prints the corosync arbiter's verdict as JSON lines, one
// every --interval-ms, until killed. Runs inside a host's mount+net
// namespaces (libqb IPC is local to them); tests and operators read it to see
// what ftd would decide there. Exit 3 when corosync cannot be reached.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "failover/corosync_arbiter.h"

namespace {

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Print the corosync arbiter's verdict as JSON lines"};
  uint32_t peer = 0;
  int settle_ms = 2000, stale_ms = 500, refresh_ms = 100, interval_ms = 10, count = 0;
  int claim_ms = 0;
  app.add_option("--peer-nodeid", peer, "corosync nodeid of the other host")->required();
  app.add_option("--settle-ms", settle_ms, "quorate-without-peer time before running alone");
  app.add_option("--stale-ms", stale_ms, "snapshot age that counts as doubt");
  app.add_option("--refresh-ms", refresh_ms, "corosync query period");
  app.add_option("--interval-ms", interval_ms, "output period");
  app.add_option("--count", count, "lines to print (0: until killed)");
  app.add_option("--claim-ms", claim_ms, "first print the result of claim(timeout)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  ftd::CorosyncArbiterOptions options;
  options.rule.peer_nodeid = peer;
  options.rule.settle = std::chrono::milliseconds(settle_ms);
  options.rule.stale_after = std::chrono::milliseconds(stale_ms);
  options.refresh = std::chrono::milliseconds(refresh_ms);
  auto arbiter = ftd::CorosyncArbiter::create(options);
  if (!arbiter) {
    std::printf("%s\n", nlohmann::json{{"t_ns", monotonic_ns()},
                                       {"error", arbiter.error().to_string()},
                                       {"may_run_alone", false}}
                            .dump()
                            .c_str());
    return 3;
  }
  if (claim_ms > 0) {
    auto c = (*arbiter)->claim(std::chrono::milliseconds(claim_ms));
    nlohmann::json line{{"t_ns", monotonic_ns()}, {"claim", true}};
    if (c) {
      line["may_run_alone"] = c->may_run_alone;
      line["term"] = c->term;
      line["evidence"] = c->evidence;
    } else {
      line["may_run_alone"] = false;
      line["error"] = c.error().to_string();
    }
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  for (int i = 0; count == 0 || i < count; ++i) {
    const ftd::ArbiterVerdict v = (*arbiter)->current();
    const ftd::QuorumSnapshot s = (*arbiter)->snapshot();
    nlohmann::json line{{"t_ns", monotonic_ns()}, {"may_run_alone", v.may_run_alone},
                        {"term", v.term},         {"connected", s.connected},
                        {"quorate", s.quorate},   {"node", s.local_nodeid},
                        {"members", s.members},   {"votes", s.total_votes},
                        {"evidence", v.evidence}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));  // output pacing only
  }
  return 0;
}
