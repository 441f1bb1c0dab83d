// ftd-witness: the lease tie-breaker on a third host. Prints
// "listening on <port>" once serving (tests start it with port 0).
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "common/crash_report.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/version.h"
#include "security/grpc_listen.h"
#include "witness/witness_service.h"

int main(int argc, char** argv) {
  ftd::install_crash_report(argv[0]);
  CLI::App app{"ftd-witness: lease arbiter for ftd VM pairs"};
  app.set_version_flag("--version", std::string("ftd-witness ") + ftd::kVersion);
  std::string listen = "0.0.0.0:7500", state_dir, keys_path, log_level = "info";
  int lease_ms = 1000;
  app.add_option("--listen", listen, "address:port to serve on (port 0 picks one)");
  app.add_option("--state-dir", state_dir, "directory for leases.json")->required();
  app.add_option("--keys", keys_path, "file of 'holder hexkey' lines")->required();
  app.add_option("--lease-ms", lease_ms, "lease duration granted to holders")
      ->check(CLI::Range(100, 60000));
  app.add_option("--log-level", log_level);
  CLI11_PARSE(app, argc, argv);
  // Blocked before gRPC starts its threads (they inherit the mask), so the
  // signals reach only sigwait below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ftd::init_logging("witness", log_level);

  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  auto keys = ftd::witness::load_key_table(keys_path);
  if (!keys) {
    spdlog::error("witness_start_failed error='{}'", keys.error().to_string());
    return 1;
  }
  ftd::witness::LeaseStore store(state_dir);
  auto loaded = store.load();
  if (!loaded) {
    spdlog::error("witness_start_failed error='{}'", loaded.error().to_string());
    return 1;
  }
  // Constructed now: every loaded lease counts as renewed at this instant.
  ftd::witness::WitnessService service(store, *loaded, std::move(*keys),
                                       std::chrono::milliseconds(lease_ms));
  // Two witnesses on one port would split the clients between two tables:
  // start_grpc_server turns SO_REUSEPORT off. Plaintext: every request and
  // reply is HMAC-authenticated (see README).
  auto started = ftd::start_grpc_server({.address = listen, .services = {&service}});
  if (!started) {
    spdlog::error("witness_start_failed error='{}'", started.error().to_string());
    return 1;
  }
  auto server = std::move(started->server);
  const int port = started->port;
  spdlog::info("witness_started listen={} port={} lease_ms={} vms={}", listen, port, lease_ms,
               loaded->size());
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  ftd::notify_ready(fmt::format("serving {} leases on port {}", loaded->size(), port));

  // Serve until SIGTERM/SIGINT.
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("witness_stop signal={}", sig);
  ftd::notify_stopping();
  server->Shutdown();
  return 0;
}
