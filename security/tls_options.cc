#include "security/tls_options.h"

#include "common/file_util.h"

namespace ftd {
namespace {

Result<std::string> read_pem(const std::string& path, std::string_view flag) {
  auto bytes = read_file(path);
  if (!bytes) return std::unexpected(bytes.error().with_context(flag));
  std::string text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  if (text.find("-----BEGIN ") == std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "{} {}: not a PEM file", flag, path);
  return text;
}

}  // namespace

void TlsFiles::add_to(CLI::App& app) {
  app.add_option("--tls-cert", cert, "this host's certificate (PEM)");
  app.add_option("--tls-key", key, "private key of --tls-cert (PEM)");
  app.add_option("--tls-ca", ca, "CA certificate that signs the peers' certificates (PEM)");
}

Status TlsFiles::validate() const {
  if (enabled() && (cert.empty() || key.empty() || ca.empty()))
    return make_error(ErrorCode::kInvalidArgument,
                      "TLS needs all of --tls-cert, --tls-key and --tls-ca");
  return ok();
}

void TlsOptions::add_to(CLI::App& app) {
  files.add_to(app);
  app.add_option("--peer-identity", peer_identity,
                 "replication peer's certificate name (CN or SAN DNS) that is accepted");
  app.add_flag("--insecure", insecure,
               "allow plaintext replication/control on addresses other hosts can reach");
}

Status TlsOptions::validate() const {
  FTD_TRY(files.validate());
  if (enabled() && insecure)
    return make_error(ErrorCode::kInvalidArgument, "--insecure contradicts the --tls-* flags");
  if (enabled() && peer_identity.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--peer-identity is required with TLS: it names the only peer accepted");
  if (!enabled() && !peer_identity.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--peer-identity needs --tls-cert/--tls-key/--tls-ca");
  return ok();
}

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  FTD_ASSIGN_OR_RETURN(o.pem_root_certs, read_pem(files.ca, "--tls-ca"));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  FTD_ASSIGN_OR_RETURN(pair.private_key, read_pem(files.key, "--tls-key"));
  FTD_ASSIGN_OR_RETURN(pair.cert_chain, read_pem(files.cert, "--tls-cert"));
  o.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(o);
}

Result<ChannelSecurity> channel_security(const TlsFiles& files,
                                         const std::string& server_identity) {
  if (!files.enabled()) return ChannelSecurity{};
  grpc::SslCredentialsOptions o;
  FTD_ASSIGN_OR_RETURN(o.pem_root_certs, read_pem(files.ca, "--tls-ca"));
  FTD_ASSIGN_OR_RETURN(o.pem_private_key, read_pem(files.key, "--tls-key"));
  FTD_ASSIGN_OR_RETURN(o.pem_cert_chain, read_pem(files.cert, "--tls-cert"));
  return ChannelSecurity{.credentials = grpc::SslCredentials(o),
                         .server_identity = server_identity};
}

}  // namespace ftd
