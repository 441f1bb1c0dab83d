#include "security/peer_identity.h"

#include <fmt/format.h>
#include <grpc/grpc_security_constants.h>

#include <algorithm>

namespace ftd {

std::vector<std::string> certificate_names(const grpc::ServerContext& context) {
  std::vector<std::string> names;
  auto auth = context.auth_context();
  if (!auth) return names;
  // CN first: it is what operators put in the subject and read in logs.
  for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const auto& value : auth->FindPropertyValues(property)) {
      std::string name(value.data(), value.size());
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

std::string identity_for_log(const grpc::ServerContext& context) {
  auto names = certificate_names(context);
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ","));
}

std::string describe_caller(const grpc::ServerContext& context) {
  return fmt::format("peer={} identity={}", context.peer(), identity_for_log(context));
}

grpc::Status check_peer_identity(const grpc::ServerContext& context, const std::string& expected) {
  auto names = certificate_names(context);
  if (names.empty())
    return {grpc::StatusCode::UNAUTHENTICATED, "no client certificate (plaintext peer)"};
  if (std::find(names.begin(), names.end(), expected) != names.end()) return grpc::Status::OK;
  return {grpc::StatusCode::UNAUTHENTICATED,
          fmt::format("certificate names {}, this daemon accepts only '{}'", fmt::join(names, ","),
                      expected)};
}

}  // namespace ftd
