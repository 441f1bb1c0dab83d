#include "observability/metrics_options.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <fstream>

#include "security/address_policy.h"

namespace ftd {
namespace {

constexpr size_t kMinTokenLength = 16;

std::string trimmed(std::string s) {
  const char* space = " \t\r\n";
  s.erase(s.find_last_not_of(space) + 1);
  s.erase(0, s.find_first_not_of(space));
  return s;
}

}  // namespace

void MetricsOptions::add_to(CLI::App& app) {
  app.add_option("--metrics-listen", listen,
                 "serve /metrics (Prometheus), the status page (/) and /api/status on "
                 "HOST:PORT; off by default. Non-loopback needs --metrics-token-file");
  app.add_option("--metrics-token-file", token_file,
                 "file holding the bearer token scrapers must send (mode 0600)");
}

Status MetricsOptions::validate() const {
  if (!enabled()) {
    if (!token_file.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "--metrics-token-file given without --metrics-listen");
    return ok();
  }
  if (listen.starts_with("unix"))
    return make_error(ErrorCode::kInvalidArgument,
                      "--metrics-listen {}: HOST:PORT only (Prometheus scrapes TCP)", listen);
  if (token_file.empty() && !is_host_local(listen))
    return make_error(ErrorCode::kInvalidArgument,
                      "--metrics-listen {} is reachable from other hosts: give "
                      "--metrics-token-file (scrapers then send Authorization: Bearer), or "
                      "listen on 127.0.0.1",
                      listen);
  if (!token_file.empty()) FTD_TRY(read_bearer_token(token_file));
  return ok();
}

Result<std::string> read_bearer_token(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error("--metrics-token-file " + path);
  if ((st.st_mode & 077) != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "--metrics-token-file {}: readable by group/others (mode {:o}); chmod 600",
                      path, st.st_mode & 0777);
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  token = trimmed(token);
  if (token.size() < kMinTokenLength)
    return make_error(ErrorCode::kInvalidArgument,
                      "--metrics-token-file {}: token must be at least {} characters (got {}); "
                      "e.g. openssl rand -hex 32 > {}",
                      path, kMinTokenLength, token.size(), path);
  return token;
}

Result<std::unique_ptr<HttpServer>> start_metrics_endpoint(const MetricsOptions& options,
                                                           MetricsSources sources) {
  if (!options.enabled()) return std::unique_ptr<HttpServer>();
  std::string token;
  if (!options.token_file.empty()) {
    FTD_ASSIGN_OR_RETURN(token, read_bearer_token(options.token_file));
  }
  const bool authenticated = !token.empty();
  auto routes = std::make_shared<const HttpRoutes>(std::move(sources), std::move(token));
  FTD_ASSIGN_OR_RETURN(auto server, HttpServer::start(options.listen, std::move(routes)));
  spdlog::info("listening metrics address={} auth={}", server->address(),
               authenticated ? "bearer-token" : "none(loopback)");
  return server;
}

}  // namespace ftd
