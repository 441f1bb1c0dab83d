// ftd-record-client: streams numbered records to the guest record service and
// verifies the replies (nothing lost, duplicated or reordered; server counter
// consecutive). Prints a JSON summary on stdout; exit 0 only if all checks pass.
#include <signal.h>
#include <sys/signalfd.h>

#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/log.h"
#include "common/unique_fd.h"
#include "tools/record_client/record_client.h"

namespace {
constexpr int kExitFailed = 1;  // verification failed or connection error
constexpr int kExitUsage = 2;
}  // namespace

int main(int argc, char** argv) {
  ftd::record::ClientOptions o;
  double duration_s = 0, recv_timeout_s = 30, connect_timeout_s = 10, progress_s = 1;
  std::string json_out;
  CLI::App app{"Streams records to the ftd guest record service and verifies the replies."};
  app.add_option("host", o.host, "Guest address (IPv4/IPv6/name)")->required();
  app.add_option("-p,--port", o.port, "Service port")->default_val(7000);
  app.add_option("-r,--rate", o.rate, "Records per second")
      ->default_val(100)
      ->check(CLI::Range(0.001, 1e6));
  app.add_option("-d,--duration", duration_s, "Seconds to send; 0 = until SIGINT/SIGTERM")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--recv-timeout", recv_timeout_s,
                 "Seconds to wait for a reply before declaring the run failed")
      ->default_val(30)
      ->check(CLI::PositiveNumber);
  app.add_option("--connect-timeout", connect_timeout_s, "Seconds to keep retrying the connect")
      ->default_val(10)
      ->check(CLI::PositiveNumber);
  app.add_option("--progress", progress_s, "Seconds between progress lines on stderr; 0 = none")
      ->default_val(1)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json-out", json_out, "Also write the JSON summary to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  o.duration = ms(duration_s);
  o.recv_timeout = ms(recv_timeout_s);
  o.connect_timeout = ms(connect_timeout_s);
  o.progress_interval = ms(progress_s);
  // SIGINT/SIGTERM arrive through a signalfd the session polls: stop sending,
  // drain the replies still owed, then print the verdict.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // Blocked before any thread exists (the logger starts one): threads inherit
  // the mask, so no thread can take the default action and kill the process.
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  ftd::UniqueFd stop_fd(::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!stop_fd) {
    std::cerr << "signalfd failed\n";
    return kExitUsage;
  }
  ftd::init_logging("record-client");

  ftd::record::Summary summary = ftd::record::run_session(o, stop_fd.get());
  std::string json = summary.to_json().dump();
  std::cout << json << std::endl;
  if (!json_out.empty()) {
    std::ofstream f(json_out, std::ios::trunc);
    f << json << '\n';
    if (!f) {
      std::cerr << "cannot write " << json_out << '\n';
      return kExitFailed;
    }
  }
  if (!summary.error.empty()) spdlog::error("record.failed error=\"{}\"", summary.error);
  return summary.ok ? 0 : kExitFailed;
}
