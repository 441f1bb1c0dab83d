// The client side of the guest's durable record log (deploy/guest,
// ftd-guest-disklog on port 7001): a TCP connection made from a host's
// namespace, a reader thread that follows the "fsynced N" lines, and stop(),
// which asks the guest to unmount its disk. Every N read was fsynced by the
// guest before it was sent, and output commit released it only once the
// checkpoint holding it was acknowledged: the replica must have record N.
// Thread contract: one thread drives it; the reader thread only updates the
// counters behind mu_.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "tests/e2e/host_lan.h"

namespace ftd::testing {

struct DiskLogProgress {
  uint64_t first = 0;      // first record number read on this connection
  uint64_t last = 0;       // highest record number read (0: none yet)
  uint64_t lines = 0;      // "fsynced" lines read
  uint64_t breaks = 0;     // lines that were not last + 1 (lost, repeated or reordered)
  uint64_t unmounted = 0;  // the "unmounted N" answer to stop() (0: not yet)
  std::string error;       // set when the stream ended otherwise
};

class DiskLogClient {
 public:
  // Connects from `from` to the guest at `host`:`port`, retrying (the guest
  // program restarts after a stop) until `timeout`.
  static Result<std::unique_ptr<DiskLogClient>> connect(const HostLan& lan, HostId from,
                                                        const std::string& host, int port,
                                                        std::chrono::milliseconds timeout);
  ~DiskLogClient();
  DiskLogClient(const DiskLogClient&) = delete;
  DiskLogClient& operator=(const DiskLogClient&) = delete;

  DiskLogProgress progress() const;
  // Waits until the last record read is >= `n`.
  bool wait_for(uint64_t n, std::chrono::milliseconds timeout) const;
  // Sends 'q' and waits for "unmounted N": the guest stopped writing and its
  // filesystem is clean. Returns N.
  Result<uint64_t> stop(std::chrono::milliseconds timeout);

 private:
  explicit DiskLogClient(UniqueFd fd);
  void read_loop();

  UniqueFd fd_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  DiskLogProgress progress_;  // guarded by mu_
  std::thread reader_;
};

}  // namespace ftd::testing
