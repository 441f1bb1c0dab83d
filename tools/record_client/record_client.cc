#include "tools/record_client/record_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/result.h"
#include "common/unique_fd.h"
#include "deploy/guest/src/ftd_record.h"

namespace ftd::record {

namespace {

using std::chrono::milliseconds;

Result<UniqueFd> connect_once(const addrinfo& ai, milliseconds timeout) {
  UniqueFd fd(::socket(ai.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return errno_error("connect");
    pollfd p{fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0) return make_error(ErrorCode::kTimeout, "connect timed out");
    if (n < 0) return errno_error("poll");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return make_error(ErrorCode::kUnavailable, "connect: {}", std::strerror(err));
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// The guest may still be booting: retry refused/unreachable until the deadline.
Result<UniqueFd> connect_with_retry(const ClientOptions& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(o.port);
  if (int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return make_error(ErrorCode::kInvalidArgument, "cannot resolve '{}': {}", o.host,
                      gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  auto deadline = Clock::now() + o.connect_timeout;
  Error last{ErrorCode::kTimeout, "connect timed out"};
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto fd = connect_once(*res, std::min(left, milliseconds(1000)));
    if (fd) return fd;
    last = fd.error();
    std::this_thread::sleep_for(milliseconds(100));
  }
  return std::unexpected(last.with_context(fmt::format("connecting to {}:{}", o.host, o.port)));
}

class Session {
 public:
  Session(const ClientOptions& o, int stop_fd)
      : o_(o), stop_fd_(stop_fd), start_(Clock::now()), verifier_(start_) {}

  Summary run() {
    auto fd = connect_with_retry(o_);
    if (!fd) {
      verifier_.set_error(fd.error().message);
      return verifier_.summary(Clock::now());
    }
    fd_ = std::move(*fd);
    start_ = Clock::now();
    verifier_ = RecordVerifier(start_);
    spdlog::info("record.connected host={} port={} rate={}", o_.host, o_.port, o_.rate);
    loop();
    return verifier_.summary(Clock::now());
  }

 private:
  void loop() {
    bool sending = true;
    int stop_requests = 0;
    Clock::time_point waiting_since = start_;
    auto next_progress = start_ + o_.progress_interval;
    for (;;) {
      auto now = Clock::now();
      bool duration_over = o_.duration.count() > 0 && now - start_ >= o_.duration;
      if (sending && (duration_over || stop_requests > 0)) {
        sending = false;
        spdlog::info("record.draining outstanding={}", verifier_.outstanding());
      }
      if (sending) queue_due_records(now, waiting_since);
      if (!sending && (verifier_.outstanding() == 0 || stop_requests > 1)) return;
      if (verifier_.outstanding() > 0 && now - waiting_since > o_.recv_timeout) {
        verifier_.set_error(fmt::format("no reply for {} ms with {} outstanding",
                                        o_.recv_timeout.count(), verifier_.outstanding()));
        return;
      }
      if (o_.progress_interval.count() > 0 && now >= next_progress) {
        next_progress += o_.progress_interval;
        progress(now);
      }
      if (!flush()) return;

      pollfd p[2] = {{fd_.get(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0},
                     {stop_fd_, POLLIN, 0}};
      int n = ::poll(p, stop_fd_ >= 0 ? 2 : 1, poll_timeout_ms(sending));
      if (n < 0 && errno != EINTR) {
        verifier_.set_error(fmt::format("poll: {}", std::strerror(errno)));
        return;
      }
      if (n <= 0) continue;
      if (stop_fd_ >= 0 && (p[1].revents & POLLIN)) {
        char drain[256];
        (void)!::read(stop_fd_, drain, sizeof drain);
        ++stop_requests;
      }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!receive(waiting_since)) return;
      }
    }
  }

  void queue_due_records(Clock::time_point now, Clock::time_point& waiting_since) {
    double elapsed = std::chrono::duration<double>(now - start_).count();
    auto due = static_cast<uint64_t>(std::floor(elapsed * o_.rate)) + 1;
    // Bound a catch-up burst (e.g. after the process was descheduled).
    for (int i = 0; verifier_.sent() < due && i < 1000; ++i) {
      if (verifier_.outstanding() == 0) waiting_since = now;
      ftd_record r{};
      r.kind = FTD_RECORD_REQUEST;
      r.client_seq = verifier_.next_to_send();
      r.echo = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count());
      size_t at = out_.size();
      out_.resize(at + FTD_RECORD_SIZE);
      ftd_record_encode(&r, out_.data() + at);
    }
  }

  bool flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        verifier_.set_error(fmt::format("send: {}", std::strerror(errno)));
        return false;
      }
      out_.erase(out_.begin(), out_.begin() + n);
    }
    return true;
  }

  bool receive(Clock::time_point& waiting_since) {
    unsigned char buf[FTD_RECORD_SIZE * 256];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n == 0) {
      verifier_.set_error("server closed the connection");
      return false;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      verifier_.set_error(fmt::format("recv: {}", std::strerror(errno)));
      return false;
    }
    auto now = Clock::now();
    in_.insert(in_.end(), buf, buf + n);
    size_t off = 0;
    for (; in_.size() - off >= FTD_RECORD_SIZE; off += FTD_RECORD_SIZE) {
      ftd_record r{};
      const char* err = ftd_record_decode(in_.data() + off, &r);
      if (!err && r.kind != FTD_RECORD_REPLY) err = "not a reply";
      if (err) {
        verifier_.set_error(
            fmt::format("bad record from server after {} replies: {}", verifier_.received(), err));
        return false;
      }
      verifier_.on_reply(Reply{r.client_seq, r.server_seq, r.server_total, r.echo}, now);
      waiting_since = now;
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<long>(off));
    return true;
  }

  int poll_timeout_ms(bool sending) const {
    // Wake for the next record to send; otherwise at least every 100 ms to
    // check the stall/duration deadlines and print progress.
    if (!sending || o_.rate <= 0) return 100;
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    double next = (std::floor(elapsed * o_.rate) + 1) / o_.rate;
    return std::clamp(static_cast<int>(std::ceil((next - elapsed) * 1000)), 0, 100);
  }

  void progress(Clock::time_point now) {
    spdlog::info(
        "record.progress t={:.1f}s sent={} received={} outstanding={} longest_gap_ms={:.1f}",
        std::chrono::duration<double>(now - start_).count(), verifier_.sent(), verifier_.received(),
        verifier_.outstanding(), verifier_.longest_gap_ms());
  }

  const ClientOptions& o_;
  int stop_fd_;
  Clock::time_point start_;
  RecordVerifier verifier_;
  UniqueFd fd_;
  std::vector<unsigned char> out_;
  std::vector<unsigned char> in_;
};

}  // namespace

Summary run_session(const ClientOptions& options, int stop_fd) {
  return Session(options, stop_fd).run();
}

}  // namespace ftd::record
