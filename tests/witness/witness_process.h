// A real ftd-witness process for tests: started on loopback with a key table
// and a state dir, stopped (SIGKILL) on destruction or by kill().
#pragma once

#include <signal.h>

#include <chrono>
#include <string>

#include "common/result.h"
#include "common/subprocess.h"
#include "failover/hmac.h"

namespace ftd::testing {

inline Key holder_key(char c) { return *parse_hex_key(std::string(64, c)); }

struct WitnessOptions {
  std::string dir;  // state dir (and where keys + log go)
  int port = 0;     // 0: any
  int lease_ms = 1000;
};

class WitnessProcess {
 public:
  static Result<WitnessProcess> start(const WitnessOptions& o);
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  void kill() { proc_.kill(SIGKILL), (void)proc_.wait(); }
  std::string log() const;

 private:
  Subprocess proc_;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace ftd::testing
