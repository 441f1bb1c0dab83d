// The guest's wire with output commit. QEMU's `-netdev stream,server=off,
// addr.type=unix,addr.path=<socket_path>` connects to us; frames the guest
// sends are held per checkpoint epoch (OutputCommitBuffer) and written to the
// host tap only once that epoch is committed; frames arriving on the tap go to
// the guest at once (input needs no protection: a lost input is a lost packet).
//
// The daemon calls advance_epoch() while the guest is paused for a checkpoint,
// commit(epoch) when the secondary acknowledges it, drop_all() when this host
// is abandoned, set_passthrough() when running unprotected (e.g. the secondary
// after failover). All of these are thread-safe: one I/O thread (asio) owns
// the sockets; commit() writes released frames to the tap on the caller's
// thread, outside every lock advance_epoch() needs, so an ack never stretches
// a checkpoint pause.
//
// Or, in dial mode (`dial`), the proxy connects to QEMU's `-netdev
// stream,server=on` socket and re-dials whenever the connection ends.
//
// QEMU disconnecting is logged and survived: the tap stays, held frames stay
// held, and the next connection (a restarted or standby QEMU) takes over. A
// newer connection replaces an older one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "net/tap_device.h"

namespace ftd::net {

struct NetworkProxyOptions {
  // Accept mode: the unix socket QEMU connects to (a stale socket file is
  // replaced). Dial mode: the socket QEMU listens on (-netdev stream,server=on).
  std::string socket_path;
  // Dial QEMU instead of accepting it, and dial again after every disconnect
  // (every `dial_retry` while nobody listens): QEMU 7.2's stream netdev as a
  // server accepts again after its peer closed, so a restarted daemon can
  // re-attach to a guest that kept running (as a client it never reconnects).
  bool dial = false;
  std::chrono::milliseconds dial_retry{50};
  uint64_t first_epoch = 1;
  bool passthrough = false;  // start without holding (unprotected VM)
  // Host->guest backlog when QEMU reads slowly; beyond it frames are dropped like a full NIC ring.
  size_t max_guest_backlog_bytes = 4u << 20;
};

struct NetworkProxyStats {
  uint64_t open_epoch = 0;
  uint64_t committed_epoch = 0;
  bool passthrough = false;
  // guest -> host (the held direction)
  uint64_t frames_from_guest = 0, bytes_from_guest = 0;
  uint64_t frames_held = 0, bytes_held = 0;  // currently waiting for a commit
  uint64_t frames_released = 0, bytes_released = 0;
  uint64_t frames_dropped = 0, bytes_dropped = 0;  // by drop_all()
  uint64_t tap_write_errors = 0;
  // Hold time of released frames = added output latency (recent window, max over all time).
  uint64_t hold_samples = 0;
  double hold_p50_us = 0, hold_p99_us = 0, hold_max_us = 0;
  // host -> guest (never held)
  uint64_t frames_to_guest = 0, bytes_to_guest = 0;
  uint64_t frames_to_guest_dropped = 0;  // no guest connected, or backlog full
  // QEMU connections
  bool guest_connected = false;
  uint64_t guest_connections = 0;  // accepted so far
  uint64_t corrupt_streams = 0;    // connections closed because of bad framing
};

class NetworkProxy {
 public:
  // Listens on options.socket_path (before QEMU starts) and serves `tap`.
  static Result<std::unique_ptr<NetworkProxy>> start(NetworkProxyOptions options, TapDevice tap);
  ~NetworkProxy();  // stops the I/O thread, drops held frames, removes the socket file
  NetworkProxy(const NetworkProxy&) = delete;
  NetworkProxy& operator=(const NetworkProxy&) = delete;

  // Closes the open epoch; frames read from now on belong to the returned epoch.
  uint64_t advance_epoch();
  // Releases, in order, every held frame of epochs <= `epoch`. Returns how many.
  size_t commit(uint64_t epoch);
  // Discards every held frame (never sent). Returns how many.
  size_t drop_all();
  // Releases everything held and stops holding.
  void set_passthrough();
  // Holds again after set_passthrough() (re-protection); no-op if holding.
  void hold();
  // Failover: release without acks while `allowed()` (OutputCommitBuffer);
  // nullptr holds again. fence(): drop held frames, never release again.
  void set_release_unacked(std::function<bool()> allowed);
  size_t fence();
  // Runs after every frame the proxy holds (OutputCommitBuffer::set_on_held).
  void set_output_listener(std::function<void()> listener);

  NetworkProxyStats stats() const;
  // Waits until at least `connections` QEMU connections were accepted and one is live.
  Status wait_for_guest(std::chrono::milliseconds timeout, uint64_t connections = 1) const;

  const std::string& socket_path() const;
  const std::string& tap_name() const;

  struct Impl;

 private:
  explicit NetworkProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ftd::net
