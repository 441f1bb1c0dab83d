#include "tests/security/test_pki.h"

#include <cstdlib>

#include "common/subprocess.h"

namespace ftd::testing {

Result<TestPki> TestPki::create(const std::string& dir, const std::vector<std::string>& names) {
  const char* source = std::getenv("FTD_SOURCE_DIR");
  std::vector<std::string> argv{
      std::string(source ? source : FTD_SOURCE_ROOT) + "/deploy/ftd-certs.sh", dir};
  argv.insert(argv.end(), names.begin(), names.end());
  FTD_TRY(run_command(argv, std::chrono::seconds(60)));
  TestPki pki;
  pki.dir_ = dir;
  return pki;
}

TlsFiles TestPki::files(const std::string& name) const {
  return {.cert = dir_ + "/" + name + ".pem",
          .key = dir_ + "/" + name + ".key",
          .ca = dir_ + "/ca.pem"};
}

std::vector<std::string> TestPki::flags(const std::string& name, const std::string& peer) const {
  TlsFiles f = files(name);
  return {"--tls-cert", f.cert, "--tls-key", f.key, "--tls-ca", f.ca, "--peer-identity", peer};
}

}  // namespace ftd::testing
