// What the metrics endpoint answers, independent of sockets: GET /metrics
// (Prometheus text), GET / (the status page), GET /api/status (the page's
// JSON: status snapshot + recent events); anything else 404, other methods
// 405, and 401 without the bearer token when one is configured.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ftd.pb.h"
#include "observability/event_journal.h"

namespace ftd {

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool bearer_challenge = false;  // 401: add "WWW-Authenticate: Bearer"
};

// Where the answers come from. `status` is the same snapshot `ftctl status`
// prints (ControlService::snapshot); it runs on the endpoint's thread.
struct MetricsSources {
  std::function<v1::StatusReply()> status;
  std::shared_ptr<const EventJournal> events;
};

class HttpRoutes {
 public:
  // `token` empty: no authentication (only allowed on host-local addresses).
  HttpRoutes(MetricsSources sources, std::string token)
      : sources_(std::move(sources)), token_(std::move(token)) {}

  // `authorization`: the request's Authorization header ("" when absent).
  HttpReply handle(std::string_view method, std::string_view target,
                   std::string_view authorization) const;

 private:
  bool authorized(std::string_view authorization) const;
  std::string status_json() const;

  MetricsSources sources_;
  std::string token_;
};

// How many recent events /api/status carries.
inline constexpr size_t kPageEvents = 50;

}  // namespace ftd
