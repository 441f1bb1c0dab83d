#include "tests/e2e/disk_log_failover.h"

#include "common/file_util.h"
#include "common/hash.h"
#include "common/subprocess.h"
#include "tests/e2e/process_tree.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

constexpr size_t kRecordBytes = 64;  // deploy/guest/src/ftd-guest-disklog.c

}  // namespace

Result<uint64_t> file_hash(const std::string& path) {
  FTD_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, read_file(path));
  return hash64(bytes);
}

Result<uint64_t> records_in_image(const std::string& image, const std::string& scratch) {
  FTD_TRY(run_command({"debugfs", "-R", fmt::format("dump /records.log {}", scratch), image}));
  FTD_ASSIGN_OR_RETURN(std::vector<std::byte> raw, read_file(scratch));
  const std::string log(reinterpret_cast<const char*>(raw.data()), raw.size());
  if (log.size() % kRecordBytes != 0)
    return make_error(ErrorCode::kCorrupt, "records.log has {} bytes: a torn record", log.size());
  const uint64_t n = log.size() / kRecordBytes;
  for (uint64_t i = 0; i < n; ++i) {
    const std::string want = fmt::format("ftd-rec {:020}", i + 1);
    if (log.compare(i * kRecordBytes, want.size(), want) != 0)
      return make_error(ErrorCode::kCorrupt, "record {} reads '{}'", i + 1,
                        log.substr(i * kRecordBytes, want.size()));
  }
  return n;
}

Status fsck_clean(const std::string& image) {
  auto out = run_command({"e2fsck", "-f", "-n", image}, 60s);
  if (!out) return std::unexpected(out.error().with_context("e2fsck -fn " + image));
  return ok();
}

Status wait_disk_protected(Daemon& primary) {
  std::string last;
  if (!wait_until(
          [&] {
            auto s = primary.status();
            if (s) last = s->disk_detail();
            return s && s->disk_protected();
          },
          120s))
    return make_error(ErrorCode::kTimeout, "disk never protected: {}", last);
  return ok();
}

Result<DiskLogFailover> kill_primary_host_fail_over_disk_log(ProtectedPair& pair,
                                                             DiskLogClient& log,
                                                             uint64_t storm_until) {
  if (!log.wait_for(storm_until, 120s))
    return make_error(ErrorCode::kTimeout, "record {} never read: {}", storm_until,
                      log.progress().error);
  Daemon& secondary = pair.secondary();
  FTD_TRY(secondary.status());  // a fresh control connection for the failover call
  FTD_TRY(pair.lan().kill_host(HostId::kPrimary));
  DiskLogFailover out;
  out.at_kill = log.progress().last;
  FTD_ASSIGN_OR_RETURN(out.reply, secondary.failover());
  // The same connection continues with the next numbers, written by the
  // activated guest onto the replica disk.
  if (!log.wait_for(out.at_kill + 50, 120s))
    return make_error(ErrorCode::kTimeout, "no records after the failover (last {}): {}",
                      log.progress().last, log.progress().error);
  FTD_ASSIGN_OR_RETURN(out.final_record, log.stop(60s));
  out.end = log.progress();
  // Stop the activated guest, then look at its disk from the host.
  for (pid_t q : qemu_children(secondary.process().pid()))
    if (!kill_if_qemu(q)) return make_error(ErrorCode::kInternal, "QEMU {} not killed", q);
  FTD_TRY(fsck_clean(pair.replica_disk()));
  FTD_ASSIGN_OR_RETURN(out.on_replica,
                       records_in_image(pair.replica_disk(), pair.path("final.log")));
  return out;
}

}  // namespace ftd::testing
