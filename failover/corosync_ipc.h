// RAII connection to the local corosync's quorum and votequorum services
// (libqb IPC under this mount namespace's /run and /dev/shm).
// Thread contract: not thread-safe; owned and used by one thread (the
// CorosyncArbiter's), callbacks run inside dispatch() on that thread.
#pragma once

#include <corosync/quorum.h>
#include <corosync/votequorum.h>

#include <memory>

#include "common/result.h"
#include "failover/quorum_rule.h"

namespace ftd {

class CorosyncIpc {
 public:
  CorosyncIpc(const CorosyncIpc&) = delete;
  CorosyncIpc& operator=(const CorosyncIpc&) = delete;
  ~CorosyncIpc();

  // Connects and starts tracking membership; kUnavailable when corosync is
  // not running (or not reachable from this mount namespace).
  static Result<std::unique_ptr<CorosyncIpc>> open();

  int fd() const { return fd_; }  // readable when dispatch() has work
  Status dispatch();              // runs pending membership callbacks

  // Asks corosync for quorum and votes now and merges the last membership
  // seen; fills every field of `out` except alone_since.
  Status refresh(QuorumSnapshot& out);

 private:
  CorosyncIpc() = default;
  static void on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring, uint32_t n,
                        const uint32_t* members);

  quorum_handle_t quorum_ = 0;
  votequorum_handle_t votequorum_ = 0;
  bool have_quorum_ = false;
  bool have_votequorum_ = false;
  int fd_ = -1;
  // Last membership from the quorum service's callback.
  bool seen_membership_ = false;
  struct quorum_ring_id ring_ {};
  std::vector<uint32_t> members_;
};

// "CS_ERR_LIBRARY" etc., for error messages.
std::string_view cs_error_name(cs_error_t e);

}  // namespace ftd
