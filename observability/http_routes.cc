#include "observability/http_routes.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/crypto.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "observability/prometheus_text.h"
#include "observability/status_page.h"
#include "observability/vm_metrics.h"

namespace ftd {
namespace {

nlohmann::json proto_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return nlohmann::json::parse(out);
}

}  // namespace

bool HttpRoutes::authorized(std::string_view authorization) const {
  if (token_.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (!authorization.starts_with(kScheme)) return false;
  std::string_view given = authorization.substr(kScheme.size());
  // Constant time: the comparison must not tell a prober how much matched.
  return given.size() == token_.size() &&
         CRYPTO_memcmp(given.data(), token_.data(), token_.size()) == 0;
}

std::string HttpRoutes::status_json() const {
  nlohmann::json j;
  j["unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  j["status"] = proto_json(sources_.status());
  nlohmann::json events = nlohmann::json::array();
  auto recent = sources_.events->since(0);
  const size_t skip = recent.size() > kPageEvents ? recent.size() - kPageEvents : 0;
  for (size_t i = skip; i < recent.size(); ++i) events.push_back(proto_json(recent[i]));
  j["events"] = std::move(events);
  return j.dump();
}

HttpReply HttpRoutes::handle(std::string_view method, std::string_view target,
                             std::string_view authorization) const {
  if (!authorized(authorization))
    return {.status = 401, .body = "bearer token required\n", .bearer_challenge = true};
  if (method != "GET") return {.status = 405, .body = "only GET\n"};
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics")
    return {.content_type = kPrometheusContentType,
            .body = render_prometheus(
                vm_metric_families(sources_.status(), sources_.events->counts()))};
  if (path == "/" || path == "/index.html")
    return {.content_type = "text/html; charset=utf-8", .body = std::string(status_page_html())};
  if (path == "/api/status") return {.content_type = "application/json", .body = status_json()};
  return {.status = 404, .body = "not found: /metrics, / (status page), /api/status\n"};
}

}  // namespace ftd
