// A QMP (QEMU Machine Protocol) client over a unix socket. Synchronous and
// poll()-based: one command in flight at a time; asynchronous events that
// arrive meanwhile are queued (bounded) and can be awaited with wait_event().
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"
#include "qemu/qmp_message.h"
#include "qemu/unix_socket.h"

namespace ftd {

class QmpClient {
 public:
  using Json = nlohmann::json;
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};
  // QEMU 7.2's longest QMP line (query-qmp-schema) is ~200 KiB; a peer
  // that sends more than this without a newline is broken or hostile, and an
  // unbounded buffer would let it grow the daemon's memory without limit.
  static constexpr size_t kMaxBufferedBytes = size_t{16} << 20;

  QmpClient() = default;
  QmpClient(QmpClient&&) noexcept = default;
  QmpClient& operator=(QmpClient&&) noexcept = default;

  // Connects (retrying until `deadline` while `keep_trying()` holds: QEMU
  // creates the socket asynchronously), reads the greeting and negotiates
  // capabilities.
  static Result<QmpClient> connect(
      const std::string& socket_path, Deadline deadline,
      const std::function<bool()>& keep_trying = [] { return true; });

  // Runs one command. A QMP error reply becomes kFailedPrecondition with
  // QEMU's class and description; EOF (QEMU gone) kUnavailable; kTimeout;
  // more than kMaxBufferedBytes without a complete line kResourceExhausted
  // (the connection is then closed: the stream cannot be resynchronised).
  Result<Json> execute(const std::string& command, const Json& arguments = Json::object(),
                       std::chrono::milliseconds timeout = kDefaultTimeout);

  // Returns (and removes) the first queued or arriving event called `name`
  // for which `match(data)` holds. Non-matching events stay queued.
  Result<Json> wait_event(const std::string& name, std::chrono::milliseconds timeout,
                          const std::function<bool(const Json&)>& match = {});
  // Non-blocking: removes and returns a queued matching event, if any.
  std::optional<Json> take_event(const std::string& name,
                                 const std::function<bool(const Json&)>& match = {});
  // Non-blocking: reads what QEMU has sent so far and queues its events. For
  // callers that poll fd() together with other sockets. EOF is kUnavailable.
  Status read_available();
  int fd() const { return fd_.get(); }

  // Drops queued events called `name` (all events if empty).
  void discard_events(const std::string& name = {});
  size_t queued_events() const { return events_.size(); }

  bool connected() const { return fd_.valid(); }

 private:
  static constexpr size_t kMaxQueuedEvents = 256;

  Result<Json> next_message(Deadline deadline, std::string_view waiting_for);
  Status read_some(std::string_view waiting_for);
  void queue_event(Json event);
  Status send_line(const std::string& line, Deadline deadline);

  UniqueFd fd_;
  std::string socket_path_;
  std::string buffer_;  // bytes received but not yet parsed (partial line)
  std::deque<Json> events_;
  uint64_t next_id_ = 1;
};

}  // namespace ftd
