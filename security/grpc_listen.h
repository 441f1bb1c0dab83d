// Starting a gRPC server the way every ftd binary must: one process per
// address (no SO_REUSEPORT, no stolen unix socket), a unix socket only its
// owner can use, and an error that names the address when it cannot listen.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

struct ListenSpec {
  std::string address;  // host:port (port 0 picks one) or unix:/path
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null: plaintext
  std::vector<grpc::Service*> services;
  std::function<void(grpc::ServerBuilder&)> configure;  // extra builder settings
};

struct Listening {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound TCP port (for port 0); meaningless for unix:
};

Result<Listening> start_grpc_server(const ListenSpec& spec);

}  // namespace ftd
