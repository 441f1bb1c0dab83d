// ftd's NBD server: the target of the primary QEMU's write-blocking
// blockdev-mirror. Every write, TRIM and WRITE_ZEROES it receives is appended
// to a DiskWriteLog *before* the reply, so once QMP `stop` returns (QEMU has
// drained every in-flight request) the log holds every write of the epoch.
//
// Why hand-written: Debian's libnbd is a client only, and nbdkit is a
// separate server program whose plugins run inside nbdkit's process; the
// writes would then need a second IPC hop and a second process to keep in
// step with the checkpoint, where here they land directly in the log the
// pipeline takes from.
//
// READ is refused with EIO: QEMU's mirror only ever reads its source and
// writes the target (block/mirror.c: mirror_co_read reads
// mirror_top_bs->backing, the target only gets pwritev / pwrite_zeroes /
// pdiscard), so no shadow copy of the disk is kept; a reader that is not the
// mirror gets an error rather than wrong data.
//
// Threads: one accept thread and one thread per connection, never the thread
// that issues QMP `stop` (stop waits for this server's replies). Replies are
// never withheld (the log spills to a file instead of blocking).
// Listens on a unix socket created mode 0600: only this user may connect.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "disk/disk_write_log.h"
#include "disk/nbd_handshake.h"
#include "disk/nbd_session.h"

namespace ftd {

struct NbdServerOptions {
  std::string socket_path;
  std::string export_name = "ftd-disk";
  uint64_t export_size = 0;  // bytes: the guest disk's size
  // QEMU's mirror sends at most 1 MiB per request (MAX_IO_BYTES); anything
  // far beyond that is not our client.
  uint32_t max_request_bytes = 32u << 20;
  std::chrono::milliseconds handshake_timeout{10000};
  size_t max_connections = 8;
};

struct NbdServerStats {
  uint64_t connections = 0;      // accepted so far
  uint64_t writes = 0;           // WRITE/TRIM/WRITE_ZEROES recorded
  uint64_t rejected = 0;         // requests answered with an error
  uint64_t protocol_errors = 0;  // connections closed on garbage
};

class NbdServer {
 public:
  // Listens at once; `log` must outlive the server.
  static Result<std::unique_ptr<NbdServer>> start(NbdServerOptions options, DiskWriteLog& log);
  // Closes every connection and joins every thread.
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  const NbdServerOptions& options() const { return options_; }
  NbdServerStats stats() const;

 private:
  struct Connection {
    UniqueFd fd;  // closed only after its thread joined (no fd reuse race)
    std::thread thread;
    std::atomic<bool> done{false};
  };

  NbdServer(NbdServerOptions options, DiskWriteLog& log, UniqueFd listener, UniqueFd wake)
      : options_(std::move(options)),
        log_(log),
        listener_(std::move(listener)),
        wake_(std::move(wake)) {}
  void accept_loop();
  void reap_finished() FTD_REQUIRES(mu_);
  nbd::ExportInfo export_info() const;

  const NbdServerOptions options_;
  DiskWriteLog& log_;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: wakes the accept loop to stop
  Mutex mu_;
  bool stopping_ FTD_GUARDED_BY(mu_) = false;
  std::list<Connection> connections_ FTD_GUARDED_BY(mu_);
  std::atomic<uint64_t> n_connections_{0};
  nbd::SessionCounters counters_;
  std::thread accept_thread_;  // last: starts once the members above exist
};

}  // namespace ftd
