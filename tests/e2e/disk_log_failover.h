// The disk half of a failover as the e2e tests check it (issue 9): the
// guest's durable record log (ftd-guest-disklog, disk_log_client.h) is read
// over a live TCP connection while the primary host is powered off and the
// secondary fails over; then the replica disk, with the standby QEMU
// stopped, is examined from the host (e2fsck, debugfs).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "ftd.pb.h"
#include "tests/e2e/disk_log_client.h"
#include "tests/e2e/protected_pair.h"

namespace ftd::testing {

// The guest's record log port (ftd.disklog=1).
inline constexpr int kDiskLogPort = 7001;

// Waits until the primary's disk is protected too (the mirror's first copy
// is ready and a checkpoint after it was acknowledged; the RAM is earlier).
Status wait_disk_protected(Daemon& primary);

// The record log inside an (unmounted) ext4 image, via debugfs: the number of
// records, after checking that record i is "ftd-rec <i>" for every i.
// `scratch` receives the dumped file.
Result<uint64_t> records_in_image(const std::string& image, const std::string& scratch);

// e2fsck -fn: forced read-only check; ok() means a clean filesystem.
Status fsck_clean(const std::string& image);

// xxh3 of a whole file (a disk image).
Result<uint64_t> file_hash(const std::string& path);

struct DiskLogFailover {
  v1::FailoverReply reply;
  uint64_t at_kill = 0;       // last record the client had read when the host died
  uint64_t final_record = 0;  // the guest's answer to stop() on the activated standby
  DiskLogProgress end;        // the connection's counters after stop()
  uint64_t on_replica = 0;    // records in the replica image afterwards
};

// With `log` connected and the pair protected (disk included): waits until
// record `storm_until` was read, powers the primary host off, `ftctl
// failover`s the secondary, waits for 50 more records on the same
// connection, stops the guest's writer, kills the activated QEMU and counts
// the records on the replica disk (after an e2fsck -fn that must pass).
// Callers check the numbers (no record lost: on_replica >= at_kill and ==
// final_record; end.breaks == 0).
Result<DiskLogFailover> kill_primary_host_fail_over_disk_log(ProtectedPair& pair,
                                                             DiskLogClient& log,
                                                             uint64_t storm_until);

}  // namespace ftd::testing
