#include "qemu/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace ftd {

Result<QmpClient> QmpClient::connect(const std::string& socket_path, Deadline deadline,
                                     const std::function<bool()>& keep_trying) {
  QmpClient c;
  c.socket_path_ = socket_path;
  FTD_ASSIGN_OR_RETURN(c.fd_, connect_unix_retry(socket_path, deadline, keep_trying));
  FTD_ASSIGN_OR_RETURN(Json greeting, c.next_message(deadline, "QMP greeting"));
  FTD_TRY(check_qmp_greeting(greeting, socket_path));
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  FTD_TRY(c.execute("qmp_capabilities", Json::object(),
                    std::max(remaining, std::chrono::milliseconds(100))));
  return c;
}

Status QmpClient::send_line(const std::string& line, Deadline deadline) {
  if (!fd_) {
    return make_error(ErrorCode::kUnavailable, "QMP {} is disconnected (QEMU exited?)",
                      socket_path_);
  }
  auto bytes = std::as_bytes(std::span(line.data(), line.size()));
  if (auto s = write_all(fd_.get(), bytes, deadline); !s) {
    fd_.reset();
    return make_error(ErrorCode::kUnavailable, "QMP {} (QEMU gone?): {}", socket_path_,
                      s.error().message);
  }
  return ok();
}

Status QmpClient::read_some(std::string_view waiting_for) {
  if (!fd_) return make_error(ErrorCode::kUnavailable, "QMP {} is not connected", socket_path_);
  char buf[16 * 1024];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return ok();
  if (n <= 0) {
    int err = errno;
    fd_.reset();
    return make_error(ErrorCode::kUnavailable,
                      "QMP connection {} closed while waiting for {} (QEMU exited?){}",
                      socket_path_, waiting_for, n < 0 ? std::string(": ") + strerror(err) : "");
  }
  if (buffer_.size() + static_cast<size_t>(n) > kMaxBufferedBytes) {
    size_t unparsed = buffer_.size() + static_cast<size_t>(n);
    fd_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();
    return make_error(ErrorCode::kResourceExhausted,
                      "QMP {} sent {} bytes without a complete message while waiting for {} "
                      "(limit {}); connection closed",
                      socket_path_, unparsed, waiting_for, kMaxBufferedBytes);
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return ok();
}

Result<QmpClient::Json> QmpClient::next_message(Deadline deadline, std::string_view waiting_for) {
  while (true) {
    if (auto msg = pop_qmp_message(buffer_)) return std::move(*msg);
    if (!fd_) return make_error(ErrorCode::kUnavailable, "QMP {} is not connected", socket_path_);
    FTD_TRY(wait_fd(fd_.get(), POLLIN, deadline, fmt::format("QMP reply to {}", waiting_for)));
    FTD_TRY(read_some(waiting_for));
  }
}

Status QmpClient::read_available() {
  FTD_TRY(read_some("events"));
  while (auto msg = pop_qmp_message(buffer_)) {
    if (!*msg) return std::unexpected(std::move(*msg).error());
    if (is_qmp_event(**msg)) queue_event(std::move(**msg));  // replies here are stale
  }
  return ok();
}

std::optional<QmpClient::Json> QmpClient::take_event(
    const std::string& name, const std::function<bool(const Json&)>& match) {
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (qmp_event_name(*it) != name) continue;
    if (match && !match(qmp_event_data(*it))) continue;
    Json ev = std::move(*it);
    events_.erase(it);
    return ev;
  }
  return std::nullopt;
}

void QmpClient::queue_event(Json event) {
  if (events_.size() >= kMaxQueuedEvents) {
    // Nobody waits for old STOP/RESUME events; keep the newest.
    events_.pop_front();
  }
  events_.push_back(std::move(event));
}

Result<QmpClient::Json> QmpClient::execute(const std::string& command, const Json& arguments,
                                           std::chrono::milliseconds timeout) {
  Deadline deadline = deadline_after(timeout);
  uint64_t id = next_id_++;
  Json request{{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  FTD_TRY(send_line(request.dump() + "\n", deadline));
  while (true) {
    FTD_ASSIGN_OR_RETURN(Json msg, next_message(deadline, command));
    if (is_qmp_event(msg)) {
      queue_event(std::move(msg));
      continue;
    }
    if (!is_qmp_reply_to(msg, id)) continue;  // stale: a timed-out command's reply
    return qmp_reply_result(std::move(msg), command);
  }
}

Result<QmpClient::Json> QmpClient::wait_event(const std::string& name,
                                              std::chrono::milliseconds timeout,
                                              const std::function<bool(const Json&)>& match) {
  if (auto ev = take_event(name, match)) return std::move(*ev);
  Deadline deadline = deadline_after(timeout);
  while (true) {
    FTD_ASSIGN_OR_RETURN(Json msg, next_message(deadline, "event " + name));
    if (!is_qmp_event(msg)) continue;  // a stale reply
    queue_event(std::move(msg));
    if (auto ev = take_event(name, match)) return std::move(*ev);
  }
}

void QmpClient::discard_events(const std::string& name) {
  std::erase_if(events_,
                [&](const Json& ev) { return name.empty() || qmp_event_name(ev) == name; });
}

}  // namespace ftd
