// One NBD session of ftd's server (disk/nbd_session.h) on whatever a client
// might send: the input is the client's whole byte stream (handshake, then
// requests), written into a socketpair and closed for writing, then served on
// this thread. Oracle besides the sanitizers: the session ends (EOF, garbage
// or NBD_CMD_DISC) and only writes inside the export reach the log.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "disk/disk_write_log.h"
#include "disk/nbd_io.h"
#include "disk/nbd_protocol.h"
#include "disk/nbd_session.h"
#include "fuzz/fuzz_check.h"

namespace ftd::fuzz {
namespace {

constexpr uint64_t kExportSize = 1 << 20;
constexpr size_t kMaxInput = 64 * 1024;  // replies must fit the socket buffer (no reader thread)

struct Fixture {
  std::unique_ptr<DiskWriteLog> log;
  nbd::SessionCounters counters;
  Fixture() {
    spdlog::set_level(spdlog::level::off);  // a log line per bad input would dominate the run
    log = std::make_unique<DiskWriteLog>(
        DiskWriteLogOptions{.memory_limit = 8 << 20, .spill_dir = "/tmp"});
  }
};

}  // namespace
}  // namespace ftd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftd;
  static fuzz::Fixture f;
  if (size > fuzz::kMaxInput) return -1;
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  UniqueFd client(sv[0]), server(sv[1]);
  int buf = 1 << 20;
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  FUZZ_CHECK(nbd::send_all(client.get(), std::as_bytes(std::span(data, size))).has_value());
  ::shutdown(client.get(), SHUT_WR);
  const nbd::ExportInfo exp{
      "ftd-disk", fuzz::kExportSize,
      nbd::kFlagHasFlags | nbd::kFlagSendFlush | nbd::kFlagSendTrim | nbd::kFlagSendWriteZeroes,
      64 * 1024};
  nbd::serve_session(server.get(), 1, exp, std::chrono::milliseconds(1000), *f.log, f.counters);
  auto epoch = f.log->take_epoch();
  FUZZ_CHECK(epoch.has_value());
  for (const DiskWrite& w : *epoch) {
    FUZZ_CHECK(w.length > 0 && w.offset + w.length <= fuzz::kExportSize);
    FUZZ_CHECK(w.kind == DiskWrite::Kind::kZeroes || w.data.size() == w.length);
  }
  return 0;
}
