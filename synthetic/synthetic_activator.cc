#include "synthetic/synthetic_activator.h"

#include <chrono>

#include "common/hash.h"

namespace ftd {

Result<ActivationReport> SyntheticActivator::activate(uint64_t epoch,
                                                      std::span<const std::byte> memory,
                                                      std::span<const std::byte> device_state) {
  auto t0 = std::chrono::steady_clock::now();
  FTD_ASSIGN_OR_RETURN(auto dev, SyntheticEngine::decode_device_state(device_state));
  std::string verdict = "not verified";
  if (verify_) {
    FTD_ASSIGN_OR_RETURN(MappedRegion oracle, SyntheticEngine::replay(config_, dev.writes_done));
    if (hash64(oracle.bytes()) != hash64(memory))
      return make_error(ErrorCode::kCorrupt,
                        "replica at epoch {} differs from the workload after {} writes", epoch,
                        dev.writes_done);
    verdict = "replica == replay";
  }
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  return ActivationReport{
      .epoch = epoch,
      .activation_us = static_cast<uint64_t>(us),
      .detail = fmt::format("synthetic workload resumes after write {} message {} ({})",
                            dev.writes_done, dev.messages_emitted, verdict)};
}

}  // namespace ftd
