// How a client channel is secured: credentials plus the identity the
// server's certificate must carry. Default-constructed: plaintext.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace ftd {

struct ChannelSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string server_identity;                            // TLS only

  std::shared_ptr<grpc::ChannelCredentials> credentials_or_insecure() const {
    return credentials ? credentials : grpc::InsecureChannelCredentials();
  }
  // Pins the server: gRPC's TLS hostname check then compares the server
  // certificate's SAN DNS names (CN when it has none) with the configured
  // identity instead of the host part of the address we dial. That is the
  // stable 1.51 API for it (the TlsCredentials custom verifier is still
  // experimental), and peers are usually dialled by IP, which their
  // certificates need not list.
  void apply(grpc::ChannelArguments& args) const {
    if (credentials && !server_identity.empty()) args.SetSslTargetNameOverride(server_identity);
  }
};

}  // namespace ftd
