// ftd's metrics flags and the rule for who may scrape:
//   --metrics-listen HOST:PORT   off by default
//   --metrics-token-file PATH    a bearer token (Authorization: Bearer <token>)
// A loopback address (127.0.0.0/8, ::1, localhost) needs no token: only local
// processes reach it, and they can read `ftctl status` anyway. Any other
// address needs the token; the daemon refuses to start without one
// (docs/security.md).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "observability/http_routes.h"
#include "observability/http_server.h"

namespace CLI {
class App;
}

namespace ftd {

struct MetricsOptions {
  std::string listen;
  std::string token_file;

  void add_to(CLI::App& app);
  bool enabled() const { return !listen.empty(); }
  // The refusal above, checked before anything starts.
  Status validate() const;
};

// The token in `path`: its first line, surrounding whitespace removed. The
// file must be private to its owner (mode 0600 or stricter) and the token at
// least 16 characters.
Result<std::string> read_bearer_token(const std::string& path);

// Starts the endpoint when `options` enable it (nullptr when they do not).
Result<std::unique_ptr<HttpServer>> start_metrics_endpoint(const MetricsOptions& options,
                                                           MetricsSources sources);

}  // namespace ftd
