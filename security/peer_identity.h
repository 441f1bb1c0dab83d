// Who is on the other end of a server call: the names its TLS certificate
// proves (gRPC has verified the chain against our CA before the handler runs).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

namespace ftd {

// The certificate's CN and SAN entries; empty for a plaintext peer.
std::vector<std::string> certificate_names(const grpc::ServerContext& context);

// "hostA" or "hostA,hostA.example" for logs; "none" without a certificate.
std::string identity_for_log(const grpc::ServerContext& context);

// "peer=ipv4:10.0.0.1:51234 identity=hostA": who made a control call.
std::string describe_caller(const grpc::ServerContext& context);

// OK if the peer's certificate names `expected` (CN or SAN DNS, exact
// match); otherwise UNAUTHENTICATED saying why.
grpc::Status check_peer_identity(const grpc::ServerContext& context, const std::string& expected);

}  // namespace ftd
