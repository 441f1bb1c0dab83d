#include "tests/e2e/manual_failover.h"

#include <signal.h>

#include "tests/e2e/client_probes.h"
#include "tests/e2e/process_tree.h"

namespace ftd::testing {

using namespace std::chrono_literals;

Result<ManualFailover> ping_kill_primary_host_fail_over(ProtectedPair& p) {
  auto pri_qemus = qemu_children(p.primary().process().pid());
  if (pri_qemus.size() != 1)
    return make_error(ErrorCode::kInternal, "expected one QEMU under the primary ftd, found {}",
                      pri_qemus.size());
  FTD_ASSIGN_OR_RETURN(auto ping,
                       PingProbe::start(p.lan().ns(HostId::kClient), kGuestIp, p.path("ping.log")));
  if (!wait_until([&] { return !ping.report().replies.empty(); }, 60s))
    return make_error(ErrorCode::kTimeout, "the protected guest never answered a ping\n{}",
                      p.logs());
  p.primary().process().kill(SIGKILL);
  for (pid_t q : pri_qemus)
    if (!kill_if_qemu(q)) return make_error(ErrorCode::kInternal, "QEMU {} not killed", q);
  if (!p.primary().process().wait(5s))
    return make_error(ErrorCode::kTimeout, "the primary ftd did not die");
  const double t_before = unix_now_s();
  ManualFailover out;
  FTD_ASSIGN_OR_RETURN(out.reply, p.secondary().failover());
  auto after = [&] { return replies_between(ping.report(), t_before, unix_now_s() + 1); };
  if (!wait_until([&] { return after() >= 3; }, 30s))
    return make_error(ErrorCode::kTimeout, "no ping reply from the activated standby\n{}",
                      p.tail("secondary.log"));
  out.pings_after = after();
  return out;
}

}  // namespace ftd::testing
