// The TLS flags shared by ftd and ftctl (--tls-cert/--tls-key/--tls-ca,
// --peer-identity, --insecure) and the gRPC credentials built from them.
// Mutual TLS: both ends present a certificate signed by the same CA.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/result.h"
#include "security/channel_security.h"

namespace ftd {

// This host's certificate, its key and the CA that signs the peers' (PEM files).
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;

  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
  void add_to(CLI::App& app);
  // All three or none.
  Status validate() const;
};

struct TlsOptions {
  TlsFiles files;
  // The name (certificate CN or SAN DNS) the replication peer must prove.
  std::string peer_identity;
  // Allows plaintext on addresses other hosts can reach. Never implied.
  bool insecure = false;

  bool enabled() const { return files.enabled(); }
  void add_to(CLI::App& app);
  // Consistent flags: TLS files complete, a peer identity with them, and
  // not both TLS and --insecure.
  Status validate() const;
};

// Server side: insecure without files; otherwise TLS that requires and
// verifies a client certificate signed by the CA.
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& files);

// Client side: plaintext without files; otherwise TLS with our certificate,
// accepting only a server whose certificate names `server_identity`.
Result<ChannelSecurity> channel_security(const TlsFiles& files, const std::string& server_identity);

}  // namespace ftd
