#include "tests/witness/witness_process.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace ftd::testing {

std::string WitnessProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<WitnessProcess> WitnessProcess::start(const WitnessOptions& o) {
  std::filesystem::create_directories(o.dir);
  const std::string keys = o.dir + "/keys";
  {
    std::ofstream k(keys);
    k << "# test holders\nweb1/A " << std::string(64, 'a') << "\nweb1/B " << std::string(64, 'b')
      << "\n";
  }
  const char* build = std::getenv("FTD_BUILD_DIR");
  const std::string bin = std::string(build ? build : ".") + "/witness/ftd-witness";
  WitnessProcess w;
  w.log_path_ = o.dir + "/witness.log";
  std::ofstream(w.log_path_, std::ios::app) << "--- start\n";
  const size_t skip = std::filesystem::file_size(w.log_path_);
  FTD_ASSIGN_OR_RETURN(
      w.proc_, Subprocess::spawn(
                   {.argv = {bin, "--listen", "127.0.0.1:" + std::to_string(o.port), "--state-dir",
                             o.dir, "--keys", keys, "--lease-ms", std::to_string(o.lease_ms)},
                    .log_path = w.log_path_}));
  // Ready once it printed its port (or failed).
  const std::regex ready("listening on (\\d+)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = w.log().substr(skip);
    if (std::regex_search(text, m, ready)) {
      w.port_ = std::stoi(m[1]);
      return w;
    }
    if (!w.proc_.running()) return make_error(ErrorCode::kIo, "ftd-witness exited: {}", text);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return make_error(ErrorCode::kTimeout, "ftd-witness did not start");
}

}  // namespace ftd::testing
