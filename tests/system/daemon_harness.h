// Runs real ftd daemons as child processes for system tests, on loopback
// ports picked free at start, and talks to them over the control API.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/subprocess.h"
#include "ftd.grpc.pb.h"

namespace ftd::testing {

// A loopback TCP port nobody listens on right now.
int free_port();

// Path of a built binary (FTD_BUILD_DIR is set by ctest).
std::string built_binary(const std::string& relative);

class Daemon {
 public:
  // Starts `ftd <args>` logging to `log_path`; waits until its control API answers.
  // With `netns`, ftd runs inside /run/netns/<netns>; its loopback is not ours,
  // so `control` must then be a `unix:/path` address (reachable from any namespace).
  // `prefix` (e.g. `nsenter -t PID -m -n --`, which execs ftd in place) runs
  // before ftd, for a daemon that must share namespaces beyond the network one;
  // it also needs a unix: control address.
  static Result<Daemon> start(std::vector<std::string> args, const std::string& control,
                              const std::string& log_path, const std::string& netns = "",
                              const std::vector<std::string>& prefix = {});
  Result<v1::VmStatus> status(const std::string& vm = "");
  Result<v1::FailoverReply> failover(const std::string& vm = "");
  // `ftctl protect [--peer PEER]`: the reply's message, or the daemon's error.
  Result<std::string> protect(const std::string& peer = "", const std::string& vm = "");
  // `ftctl migrate`: the reply, or the daemon's error.
  Result<v1::MigrateReply> migrate(unsigned sync_timeout_s = 60, const std::string& vm = "");
  // The Plan RPC (what `ftctl plan` asks): the cost model's inputs sampled
  // over `sample_ms` on the primary, or the daemon's error.
  Result<v1::PlanReply> plan(unsigned sample_ms, const std::string& vm = "");
  Subprocess& process() { return process_; }

 private:
  Subprocess process_;
  std::unique_ptr<v1::Control::Stub> stub_;
};

// The whole text of a file (a daemon's log), empty if it cannot be read.
std::string slurp(const std::filesystem::path& path);

// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// FTD_TEST_TIME_SCALE (set by tests/CMakeLists.txt in sanitizer builds), or 1.
int sanitizer_time_scale();

// Waits until a primary's secondary acknowledged `epoch` (well past the initial
// sync); `timeout` is multiplied by sanitizer_time_scale().
bool wait_for_acked_epoch(Daemon& primary, uint64_t epoch, std::chrono::milliseconds timeout);

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::filesystem::path& base = std::filesystem::temp_directory_path());
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ftd::testing
