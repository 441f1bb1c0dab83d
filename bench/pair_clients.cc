#include "bench/pair_clients.h"

namespace ftd::bench {

using namespace std::chrono_literals;
using testing::HostId;

Result<PairClients> start_pair_clients(testing::ProtectedPair& pair, double ping_interval_s) {
  auto& lan = pair.lan();
  FTD_ASSIGN_OR_RETURN(auto ping,
                       testing::PingProbe::start(lan.ns(HostId::kClient), testing::kGuestIp,
                                                 pair.path("ping.log"), ping_interval_s));
  FTD_ASSIGN_OR_RETURN(
      auto records,
      testing::RecordStream::start(lan.ns(HostId::kClient), testing::kGuestIp,
                                   pair.path("record.log"), pair.path("record.json"), 50, 60));
  if (!testing::wait_until([&] { return records.progress_received().value_or(0) > 0; }, 60s))
    return make_error(ErrorCode::kTimeout, "no record reply while protected:\n{}",
                      pair.tail("record.log"));
  return PairClients{std::move(ping), std::move(records)};
}

}  // namespace ftd::bench
