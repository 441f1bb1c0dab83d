#include "failover/corosync_ipc.h"

#include <poll.h>

namespace ftd {

std::string_view cs_error_name(cs_error_t e) {
  switch (e) {
    case CS_OK:
      return "CS_OK";
    case CS_ERR_LIBRARY:
      return "CS_ERR_LIBRARY";
    case CS_ERR_TRY_AGAIN:
      return "CS_ERR_TRY_AGAIN";
    case CS_ERR_BAD_HANDLE:
      return "CS_ERR_BAD_HANDLE";
    case CS_ERR_TIMEOUT:
      return "CS_ERR_TIMEOUT";
    case CS_ERR_ACCESS:
      return "CS_ERR_ACCESS";
    case CS_ERR_NOT_EXIST:
      return "CS_ERR_NOT_EXIST";
    case CS_ERR_NO_RESOURCES:
      return "CS_ERR_NO_RESOURCES";
    default:
      return "CS_ERR_OTHER";
  }
}

namespace {

std::unexpected<Error> cs_error(std::string_view what, cs_error_t e) {
  // CS_ERR_LIBRARY is what libqb reports when nobody listens on the socket.
  const auto code = (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE || e == CS_ERR_NOT_EXIST)
                        ? ErrorCode::kUnavailable
                        : ErrorCode::kIo;
  return make_error(code, "{}: {} ({})", what, cs_error_name(e), static_cast<int>(e));
}

}  // namespace

CorosyncIpc::~CorosyncIpc() {
  if (have_quorum_) {
    quorum_trackstop(quorum_);
    quorum_finalize(quorum_);
  }
  if (have_votequorum_) votequorum_finalize(votequorum_);
}

void CorosyncIpc::on_quorum(quorum_handle_t h, uint32_t /*quorate*/, struct quorum_ring_id ring,
                            uint32_t n, const uint32_t* members) {
  const void* ctx = nullptr;
  if (quorum_context_get(h, &ctx) != CS_OK || ctx == nullptr) return;
  auto* self = static_cast<CorosyncIpc*>(const_cast<void*>(ctx));
  self->ring_ = ring;
  self->members_.assign(members, members + n);
  self->seen_membership_ = true;
}

Result<std::unique_ptr<CorosyncIpc>> CorosyncIpc::open() {
  std::unique_ptr<CorosyncIpc> ipc(new CorosyncIpc());
  quorum_model_v1_data_t model{};
  model.model = QUORUM_MODEL_V1;
  model.quorum_notify_fn = &CorosyncIpc::on_quorum;
  uint32_t quorum_type = 0;
  cs_error_t e = quorum_model_initialize(&ipc->quorum_, QUORUM_MODEL_V1,
                                         reinterpret_cast<quorum_model_data_t*>(&model),
                                         &quorum_type, ipc.get());
  if (e != CS_OK) {
    return cs_error("corosync quorum_initialize (is corosync running in this mount namespace?)", e);
  }
  ipc->have_quorum_ = true;
  if (quorum_type != QUORUM_SET) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "corosync has no quorum provider configured (quorum {{ provider: "
                      "corosync_votequorum }} missing)");
  }
  if (e = votequorum_initialize(&ipc->votequorum_, nullptr); e != CS_OK) {
    return cs_error("corosync votequorum_initialize", e);
  }
  ipc->have_votequorum_ = true;
  if (e = quorum_fd_get(ipc->quorum_, &ipc->fd_); e != CS_OK) return cs_error("quorum_fd_get", e);
  // CURRENT delivers the present membership at once, CHANGES every later one.
  if (e = quorum_trackstart(ipc->quorum_, CS_TRACK_CURRENT | CS_TRACK_CHANGES); e != CS_OK) {
    return cs_error("quorum_trackstart", e);
  }
  return ipc;
}

Status CorosyncIpc::dispatch() {
  if (cs_error_t e = quorum_dispatch(quorum_, CS_DISPATCH_ALL); e != CS_OK) {
    return cs_error("quorum_dispatch", e);
  }
  return ok();
}

Status CorosyncIpc::refresh(QuorumSnapshot& out) {
  int quorate = 0;
  if (cs_error_t e = quorum_getquorate(quorum_, &quorate); e != CS_OK) {
    return cs_error("quorum_getquorate", e);
  }
  votequorum_info info{};
  // Node id 0 asks about the local node.
  if (cs_error_t e = votequorum_getinfo(votequorum_, 0, &info); e != CS_OK) {
    return cs_error("votequorum_getinfo", e);
  }
  if (!seen_membership_) {
    return make_error(ErrorCode::kUnavailable, "corosync has not delivered a membership yet");
  }
  out.connected = true;
  out.error.clear();
  out.quorate = quorate != 0;
  out.local_nodeid = info.node_id;
  out.ring_nodeid = ring_.nodeid;
  out.ring_seq = ring_.seq;
  out.members = members_;
  out.total_votes = info.total_votes;
  out.expected_votes = info.node_expected_votes;
  out.quorum = info.quorum;
  out.qdevice_votes = info.qdevice_votes;
  out.qdevice_alive = (info.flags & VOTEQUORUM_INFO_QDEVICE_ALIVE) != 0;
  out.qdevice_cast_vote = (info.flags & VOTEQUORUM_INFO_QDEVICE_CAST_VOTE) != 0;
  return ok();
}

}  // namespace ftd
