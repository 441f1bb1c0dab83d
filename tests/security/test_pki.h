// A throwaway PKI for tests and benchmarks: a CA and one certificate per
// name, made by deploy/ftd-certs.sh (the operator's script, so it is tested too).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "security/tls_options.h"

namespace ftd::testing {

class TestPki {
 public:
  // Writes ca.pem and <name>.pem/.key for every name into `dir`.
  static Result<TestPki> create(const std::string& dir, const std::vector<std::string>& names);

  TlsFiles files(const std::string& name) const;
  // The daemon flags for host `name` that accept only `peer`.
  std::vector<std::string> flags(const std::string& name, const std::string& peer) const;

 private:
  std::string dir_;
};

}  // namespace ftd::testing
