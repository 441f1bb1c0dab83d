#include "net/network_proxy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "checkpoint/output_commit_buffer.h"
#include "common/hold_time_stats.h"
#include "common/log.h"
#include "common/mutex.h"
#include "net/frame_stream.h"

namespace ftd::net {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using UnixSocket = asio::local::stream_protocol::socket;

struct GuestFrame {
  FrameBytes bytes;
  Clock::time_point received;
  bool held = true;  // false when it went straight out (passthrough)
};

// One QEMU connection. Lives on the I/O thread only; handlers keep it alive.
struct GuestConnection : std::enable_shared_from_this<GuestConnection> {
  GuestConnection(UnixSocket s, uint64_t id) : socket(std::move(s)), id(id) {}
  UnixSocket socket;
  uint64_t id;
  std::array<uint8_t, 64 * 1024> read_buf{};
  FrameDecoder decoder;
  std::deque<std::vector<uint8_t>> write_queue;
  size_t queued_bytes = 0;
  bool writing = false;
  bool closed = false;
};

}  // namespace

struct NetworkProxy::Impl {
  Impl(NetworkProxyOptions opts, TapDevice t)
      : options(std::move(opts)),
        tap(std::move(t)),
        buffer([this](GuestFrame&& f) { write_to_tap(std::move(f)); }, options.first_epoch),
        acceptor(io),
        tap_reader(io),
        retry_timer(io),
        dial_timer(io) {}

  // ---- guest -> host: hold, then tap ----
  // The buffer's sink. Runs under the buffer's release lock only, so its
  // retries never delay advance_epoch() (called while the guest is paused).
  void write_to_tap(GuestFrame&& f) FTD_EXCLUDES(counters_mu);
  void push_from_guest(FrameBytes&& bytes) FTD_EXCLUDES(counters_mu);

  // ---- I/O thread ----
  Status listen();
  void accept_next();
  // Dial mode: connect to QEMU's listening NIC socket, again after every
  // disconnect (a restarted daemon finds the same QEMU there).
  void dial_next();
  void adopt_guest(UnixSocket socket);
  void read_guest(const std::shared_ptr<GuestConnection>& c);
  void close_guest(std::shared_ptr<GuestConnection> c,
                   std::string_view why);  // by value: may reset `current`
  void read_tap();
  void send_to_guest(std::span<const uint8_t> frame);
  void write_guest(const std::shared_ptr<GuestConnection>& c);

  NetworkProxyOptions options;
  TapDevice tap;

  OutputCommitBuffer<GuestFrame> buffer;  // thread-safe on its own
  // Counters of the held direction; never held across I/O.
  mutable Mutex counters_mu;
  bool passthrough FTD_GUARDED_BY(counters_mu) = false;
  uint64_t frames_from_guest FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t bytes_from_guest FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t frames_held FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t bytes_held FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t frames_released FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t bytes_released FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t frames_dropped FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t bytes_dropped FTD_GUARDED_BY(counters_mu) = 0;
  uint64_t tap_write_errors FTD_GUARDED_BY(counters_mu) = 0;
  HoldTimeStats hold_times FTD_GUARDED_BY(counters_mu);

  // Connection state shared with wait_for_guest()/stats().
  mutable Mutex conn_mu;
  mutable CondVar conn_cv;
  bool guest_connected FTD_GUARDED_BY(conn_mu) = false;
  uint64_t guest_connections FTD_GUARDED_BY(conn_mu) = 0;
  std::atomic<uint64_t> corrupt_streams{0};
  std::atomic<uint64_t> frames_to_guest{0}, bytes_to_guest{0}, frames_to_guest_dropped{0};

  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor;
  asio::posix::stream_descriptor tap_reader;
  asio::steady_timer retry_timer;
  asio::steady_timer dial_timer;
  bool dial_failing = false;  // I/O thread only: log the first failed dial of a series
  std::array<uint8_t, kMaxFrameBytes> tap_buf{};
  std::shared_ptr<GuestConnection> current;  // I/O thread only
  std::thread thread;
};

void NetworkProxy::Impl::write_to_tap(GuestFrame&& f) {
  // The tap fd is non-blocking (shared with the asio reader); a tap write only
  // fails with EAGAIN under memory pressure, so retry briefly then count it.
  ssize_t n = -1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    n = ::write(tap.fd(), f.bytes.data(), f.bytes.size());
    if (n >= 0 || (errno != EAGAIN && errno != EINTR)) break;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  const int write_errno = errno;
  MutexLock lock(counters_mu);
  if (n != static_cast<ssize_t>(f.bytes.size())) {
    if (tap_write_errors++ % 1000 == 0) {
      spdlog::warn("net.tap.write_error tap={} size={} error={}", tap.name(), f.bytes.size(),
                   n < 0 ? std::strerror(write_errno) : "short write");
    }
  }
  if (f.held) {
    --frames_held;
    bytes_held -= f.bytes.size();
    hold_times.add(std::chrono::duration<double, std::micro>(Clock::now() - f.received).count());
  }
  ++frames_released;
  bytes_released += f.bytes.size();
}

void NetworkProxy::Impl::push_from_guest(FrameBytes&& bytes) {
  GuestFrame f{std::move(bytes), Clock::now(), true};
  {
    MutexLock lock(counters_mu);
    ++frames_from_guest;
    bytes_from_guest += f.bytes.size();
    // A frame counted as held here that the buffer then passes straight out
    // (passthrough set in between) is un-counted by the sink; one that hold()
    // catches after this line is held but not counted: the counters are
    // statistics and may be off by the frames in flight at a switch.
    f.held = !passthrough;
    if (f.held) {
      ++frames_held;
      bytes_held += f.bytes.size();
    }
  }
  buffer.push(std::move(f));
}

// Both modes: asio would throw on a path that does not fit sockaddr_un.
Status check_socket_path(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path))
    return make_error(ErrorCode::kInvalidArgument, "bad unix socket path '{}'", path);
  return ok();
}

Status NetworkProxy::Impl::listen() {
  const std::string& path = options.socket_path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(ErrorCode::kInvalidArgument, "{} exists and is not a socket", path);
    }
    ::unlink(path.c_str());  // stale socket of an earlier run
  }
  boost::system::error_code ec;
  asio::local::stream_protocol::endpoint ep(path);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ErrorCode::kIo, "listen on {}: {}", path, ec.message());
  return ok();
}

void NetworkProxy::Impl::accept_next() {
  acceptor.async_accept([this](boost::system::error_code ec, UnixSocket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("net.guest.accept_error path={} error={}", options.socket_path, ec.message());
      accept_next();
      return;
    }
    adopt_guest(std::move(socket));
    accept_next();
  });
}

void NetworkProxy::Impl::dial_next() {
  auto socket = std::make_shared<UnixSocket>(io);
  socket->async_connect(asio::local::stream_protocol::endpoint(options.socket_path),
                        [this, socket](boost::system::error_code ec) {
                          if (ec == asio::error::operation_aborted) return;
                          if (ec) {
                            // QEMU not listening yet (starting, restarting) or gone: keep trying.
                            if (!dial_failing)
                              spdlog::info("net.guest.dial_waiting path={} error={}",
                                           options.socket_path, ec.message());
                            dial_failing = true;
                            dial_timer.expires_after(options.dial_retry);
                            dial_timer.async_wait([this](boost::system::error_code e) {
                              if (!e) dial_next();
                            });
                            return;
                          }
                          dial_failing = false;
                          adopt_guest(std::move(*socket));
                        });
}

void NetworkProxy::Impl::adopt_guest(UnixSocket socket) {
  if (current) close_guest(current, "replaced by a newer connection");
  uint64_t id;
  {
    MutexLock lock(conn_mu);
    id = ++guest_connections;
    guest_connected = true;
  }
  conn_cv.notify_all();
  current = std::make_shared<GuestConnection>(std::move(socket), id);
  spdlog::info("net.guest.connected path={} connection={} mode={}", options.socket_path, id,
               options.dial ? "dial" : "accept");
  read_guest(current);
}

void NetworkProxy::Impl::read_guest(const std::shared_ptr<GuestConnection>& c) {
  c->socket.async_read_some(
      asio::buffer(c->read_buf), [this, c](boost::system::error_code ec, size_t n) {
        if (c->closed) return;
        if (ec) {
          close_guest(c, ec == asio::error::eof ? "guest closed the stream" : ec.message());
          return;
        }
        std::vector<FrameBytes> frames;
        auto fed = c->decoder.feed(std::span(c->read_buf.data(), n), frames);
        for (auto& f : frames) push_from_guest(std::move(f));
        if (!fed) {
          ++corrupt_streams;
          spdlog::error("net.guest.corrupt connection={} error={}", c->id, fed.error().to_string());
          close_guest(c, "corrupt frame stream");
          return;
        }
        read_guest(c);
      });
}

void NetworkProxy::Impl::close_guest(std::shared_ptr<GuestConnection> c, std::string_view why) {
  if (c->closed) return;
  c->closed = true;
  const bool was_current = current == c;
  if (was_current) {  // before the close, so whoever sees EOF sees "disconnected"
    current.reset();
    MutexLock lock(conn_mu);
    guest_connected = false;
  }
  boost::system::error_code ignored;
  c->socket.shutdown(UnixSocket::shutdown_both, ignored);
  c->socket.close(ignored);
  if (c->decoder.pending_bytes() > 0) {
    spdlog::warn("net.guest.partial_frame_lost connection={} bytes={}", c->id,
                 c->decoder.pending_bytes());
  }
  spdlog::warn("net.guest.disconnected connection={} reason=\"{}\" tap_kept={}", c->id, why,
               tap.name());
  if (options.dial && was_current) dial_next();
}

void NetworkProxy::Impl::read_tap() {
  tap_reader.async_read_some(asio::buffer(tap_buf), [this](boost::system::error_code ec, size_t n) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // E.g. EIO/EBADFD while the link is being reconfigured: back off, keep serving.
      spdlog::warn("net.tap.read_error tap={} error={}", tap.name(), ec.message());
      retry_timer.expires_after(std::chrono::milliseconds(100));
      retry_timer.async_wait([this](boost::system::error_code e) {
        if (!e) read_tap();
      });
      return;
    }
    if (n > 0) send_to_guest(std::span(tap_buf.data(), n));
    read_tap();
  });
}

void NetworkProxy::Impl::send_to_guest(std::span<const uint8_t> frame) {
  if (!current || current->queued_bytes + frame.size() > options.max_guest_backlog_bytes) {
    ++frames_to_guest_dropped;
    return;
  }
  auto encoded = encode_frame(frame);
  if (!encoded) {  // a tap never yields an empty or 64 KiB+ frame, but do not trust it
    ++frames_to_guest_dropped;
    return;
  }
  ++frames_to_guest;
  bytes_to_guest += frame.size();
  current->queued_bytes += encoded->size();
  current->write_queue.push_back(std::move(*encoded));
  if (!current->writing) write_guest(current);
}

void NetworkProxy::Impl::write_guest(const std::shared_ptr<GuestConnection>& c) {
  c->writing = true;
  asio::async_write(c->socket, asio::buffer(c->write_queue.front()),
                    [this, c](boost::system::error_code ec, size_t) {
                      c->writing = false;
                      if (c->closed) return;
                      if (ec) {
                        close_guest(c, "write: " + ec.message());
                        return;
                      }
                      c->queued_bytes -= c->write_queue.front().size();
                      c->write_queue.pop_front();
                      if (!c->write_queue.empty()) write_guest(c);
                    });
}

// ---- public ----

NetworkProxy::NetworkProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<NetworkProxy>> NetworkProxy::start(NetworkProxyOptions options,
                                                          TapDevice tap) {
  if (!tap.valid()) return make_error(ErrorCode::kInvalidArgument, "network proxy needs a tap");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(tap));
  FTD_TRY(check_socket_path(impl->options.socket_path));
  if (!impl->options.dial) FTD_TRY(impl->listen());
  // The reader gets its own descriptor so asio may own and close it.
  int reader_fd = ::fcntl(impl->tap.fd(), F_DUPFD_CLOEXEC, 0);
  if (reader_fd < 0) return errno_error("dup tap fd");
  boost::system::error_code ec;
  impl->tap_reader.assign(reader_fd, ec);
  if (!ec) impl->tap_reader.non_blocking(true, ec);
  if (ec) return make_error(ErrorCode::kIo, "tap reader: {}", ec.message());
  if (impl->options.passthrough) {
    impl->buffer.set_passthrough();
    MutexLock lock(impl->counters_mu);
    impl->passthrough = true;
  }
  if (impl->options.dial)
    impl->dial_next();
  else
    impl->accept_next();
  impl->read_tap();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  spdlog::info("net.proxy.started socket={} mode={} tap={} passthrough={}",
               raw->options.socket_path, raw->options.dial ? "dial" : "accept", raw->tap.name(),
               raw->options.passthrough);
  return std::unique_ptr<NetworkProxy>(new NetworkProxy(std::move(impl)));
}

NetworkProxy::~NetworkProxy() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  // In dial mode the socket is QEMU's: a restarted daemon dials it again.
  if (!impl_->options.dial) ::unlink(impl_->options.socket_path.c_str());
  auto s = stats();
  if (s.frames_held > 0) {
    spdlog::warn("net.proxy.stopped_with_held frames={} bytes={}", s.frames_held, s.bytes_held);
  }
  spdlog::info(
      "net.proxy.stopped tap={} released={} dropped={} hold_p50_us={:.0f} hold_p99_us={:.0f}",
      impl_->tap.name(), s.frames_released, s.frames_dropped, s.hold_p50_us, s.hold_p99_us);
}

uint64_t NetworkProxy::advance_epoch() { return impl_->buffer.advance_epoch(); }

size_t NetworkProxy::commit(uint64_t epoch) { return impl_->buffer.commit(epoch); }

namespace {
// Accounting for a frame discarded instead of written to the tap.
auto count_dropped(NetworkProxy::Impl& m) {
  return [&m](GuestFrame&& f) {
    MutexLock lock(m.counters_mu);
    --m.frames_held;
    m.bytes_held -= f.bytes.size();
    ++m.frames_dropped;
    m.bytes_dropped += f.bytes.size();
  };
}
}  // namespace

size_t NetworkProxy::drop_all() {
  size_t n = impl_->buffer.drop_all(count_dropped(*impl_));
  spdlog::warn("net.proxy.drop_all frames={}", n);
  return n;
}

size_t NetworkProxy::fence() {
  size_t n = impl_->buffer.fence(count_dropped(*impl_));
  spdlog::warn("net.proxy.fenced tap={} dropped_frames={}", impl_->tap.name(), n);
  return n;
}

void NetworkProxy::set_output_listener(std::function<void()> listener) {
  impl_->buffer.set_on_held(std::move(listener));
}

void NetworkProxy::set_release_unacked(std::function<bool()> allowed) {
  const bool on = static_cast<bool>(allowed);
  impl_->buffer.set_release_unacked(std::move(allowed));
  spdlog::warn("net.proxy.release_unacked tap={} on={}", impl_->tap.name(), on);
}

void NetworkProxy::set_passthrough() {
  {
    MutexLock lock(impl_->counters_mu);
    impl_->passthrough = true;
  }
  impl_->buffer.set_passthrough();
  spdlog::info("net.proxy.passthrough tap={}", impl_->tap.name());
}

void NetworkProxy::hold() {
  bool was_passthrough = false;
  {
    MutexLock lock(impl_->counters_mu);
    was_passthrough = std::exchange(impl_->passthrough, false);
  }
  impl_->buffer.hold();
  if (was_passthrough) spdlog::info("net.proxy.hold tap={}", impl_->tap.name());
}

NetworkProxyStats NetworkProxy::stats() const {
  const Impl& m = *impl_;
  NetworkProxyStats s;
  auto b = m.buffer.stats();
  {
    MutexLock lock(m.counters_mu);
    s.open_epoch = b.open_epoch;
    s.committed_epoch = b.committed_epoch;
    s.passthrough = m.passthrough;
    s.frames_from_guest = m.frames_from_guest;
    s.bytes_from_guest = m.bytes_from_guest;
    s.frames_held = m.frames_held;
    s.bytes_held = m.bytes_held;
    s.frames_released = m.frames_released;
    s.bytes_released = m.bytes_released;
    s.frames_dropped = m.frames_dropped;
    s.bytes_dropped = m.bytes_dropped;
    s.tap_write_errors = m.tap_write_errors;
    auto h = m.hold_times.summary();
    s.hold_samples = h.count;
    s.hold_p50_us = h.p50_us;
    s.hold_p99_us = h.p99_us;
    s.hold_max_us = h.max_us;
  }
  {
    MutexLock lock(m.conn_mu);
    s.guest_connected = m.guest_connected;
    s.guest_connections = m.guest_connections;
  }
  s.corrupt_streams = m.corrupt_streams;
  s.frames_to_guest = m.frames_to_guest;
  s.bytes_to_guest = m.bytes_to_guest;
  s.frames_to_guest_dropped = m.frames_to_guest_dropped;
  return s;
}

Status NetworkProxy::wait_for_guest(std::chrono::milliseconds timeout, uint64_t connections) const {
  MutexLock lock(impl_->conn_mu);
  bool ok = impl_->conn_cv.wait_for(impl_->conn_mu, timeout, [&]() FTD_NO_THREAD_SAFETY_ANALYSIS {
    return impl_->guest_connected && impl_->guest_connections >= connections;
  });
  if (!ok) {
    return make_error(ErrorCode::kTimeout, "no guest connection #{} on {} within {} ms",
                      connections, impl_->options.socket_path, timeout.count());
  }
  return {};
}

const std::string& NetworkProxy::socket_path() const { return impl_->options.socket_path; }
const std::string& NetworkProxy::tap_name() const { return impl_->tap.name(); }

}  // namespace ftd::net
