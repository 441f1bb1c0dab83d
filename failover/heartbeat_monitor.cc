#include "failover/heartbeat_monitor.h"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <thread>

#include "common/mutex.h"
#include "failover/replay_window.h"

namespace ftd {
namespace asio = boost::asio;
using udp = asio::ip::udp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

Result<udp::endpoint> parse_endpoint(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "'{}': need ip:port", s);
  std::string host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "'{}': {}", s, ec.message());
  int port = 0;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return make_error(ErrorCode::kInvalidArgument, "'{}': bad port", s);
  return udp::endpoint(addr, static_cast<uint16_t>(port));
}

// Primary-side roles must hear from secondary-side roles and vice versa.
bool primary_side(PeerRole r) {
  return r == PeerRole::kPrimary || r == PeerRole::kDegraded || r == PeerRole::kFenced;
}

milliseconds age(Clock::time_point now, Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(now - t);
}

}  // namespace

class HeartbeatMonitor::Impl {
 public:
  struct Link {
    HeartbeatLink cfg;
    udp::endpoint peer;
    udp::socket socket;
    udp::endpoint from;
    std::array<uint8_t, 512> buf{};
    std::optional<Clock::time_point> last_heard;
    explicit Link(asio::io_context& io) : socket(io) {}
  };

  Impl(HeartbeatConfig config, PeerRole role, uint64_t epoch, uint64_t boot_id)
      : config_(std::move(config)), timer_(io_), role_(role), epoch_(epoch), boot_id_(boot_id) {}

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status open() {
    for (const auto& l : config_.links) {
      auto link = std::make_unique<Link>(io_);
      FTD_ASSIGN_OR_RETURN(udp::endpoint local, parse_endpoint(l.local));
      FTD_ASSIGN_OR_RETURN(link->peer, parse_endpoint(l.peer));
      link->cfg = l;
      boost::system::error_code ec;
      link->socket.open(local.protocol(), ec);
      if (!ec) link->socket.bind(local, ec);
      if (ec) return make_error(ErrorCode::kIo, "heartbeat bind {}: {}", l.local, ec.message());
      links_.push_back(std::move(link));
    }
    if (links_.empty()) return make_error(ErrorCode::kInvalidArgument, "heartbeat: no links");
    for (size_t i = 0; i < links_.size(); ++i) receive(i);
    timer_.expires_after(milliseconds(0));
    timer_.async_wait([this](auto ec) { tick(ec); });
    thread_ = std::thread([this] {
      if (config_.realtime_priority > 0) {
        sched_param sp{.sched_priority = config_.realtime_priority};
        if (int err = pthread_setschedparam(pthread_self(), SCHED_RR, &sp); err != 0)
          spdlog::warn(
              "heartbeat_realtime_unavailable vm={} error='{}' (false positives under load "
              "are more likely)",
              config_.vm, std::strerror(err));
      }
      io_.run();
    });
    return ok();
  }

  void tick(const boost::system::error_code& ec) {
    if (ec) return;
    const auto now = Clock::now();
    for (auto& link : links_) {
      std::vector<uint8_t> bytes;
      {
        MutexLock lock(mu_);
        HeartbeatPacket p{.vm = config_.vm,
                          .role = role_,
                          .epoch = epoch_,
                          .boot_id = boot_id_,
                          .seq = ++seq_,
                          .echo_boot_id = echo_boot_id_,
                          .echo_seq = echo_seq_};
        sent_.emplace_back(p.seq, now);
        while (sent_.size() > 1024) sent_.pop_front();
        ++counters_.sent;
        bytes = encode_heartbeat(p, config_.key);
      }
      boost::system::error_code send_ec;
      // Non-blocking in practice (UDP); a down link only logs at debug.
      link->socket.send_to(asio::buffer(bytes), link->peer, 0, send_ec);
      if (send_ec)
        spdlog::debug("heartbeat_send_failed link={} error={}", link->cfg.peer, send_ec.message());
    }
    // Fixed-rate schedule; after a stall (loaded host) restart from now
    // instead of sending a burst.
    auto next = timer_.expiry() + config_.interval;
    if (next < Clock::now()) next = Clock::now() + config_.interval;
    timer_.expires_at(next);
    timer_.async_wait([this](auto e) { tick(e); });
    cv_.notify_all();
  }

  void receive(size_t i) {
    Link& link = *links_[i];
    link.socket.async_receive_from(asio::buffer(link.buf), link.from, [this, i](auto ec, size_t n) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) on_packet(*links_[i], n);
      receive(i);
    });
  }

  void on_packet(Link& link, size_t n) {
    const auto now = Clock::now();
    MutexLock lock(mu_);
    if (link.from != link.peer) {
      ++counters_.wrong_peer;  // only the configured peer address speaks on a link
      return;
    }
    auto p = decode_heartbeat(std::span<const uint8_t>(link.buf.data(), n), config_.key);
    if (!p) {
      ++(p.error().code == ErrorCode::kFailedPrecondition ? counters_.bad_mac
                                                          : counters_.malformed);
      return;
    }
    if (p->vm != config_.vm || p->boot_id == boot_id_ ||
        primary_side(p->role) == primary_side(role_)) {
      ++counters_.wrong_peer;
      return;
    }
    for (uint64_t retired : retired_)
      if (retired == p->boot_id) {
        ++counters_.stale;
        return;
      }
    const bool fresh = echo_fresh(*p, now);
    if (p->boot_id != peer_boot_id_) {
      // A new generation (peer restarted) is adopted only with proof that it
      // was made now; the old generation is retired so its recordings die.
      if (!fresh) {
        // Echo it anyway while the current generation is silent, so a
        // restarted peer and we can prove freshness to each other.
        const bool current_silent = !last_heartbeat_ || now - *last_heartbeat_ > config_.timeout();
        if (current_silent && (p->boot_id != echo_boot_id_ || p->seq > echo_seq_)) {
          echo_boot_id_ = p->boot_id;
          echo_seq_ = p->seq;
        }
        ++counters_.stale;
        return;
      }
      if (peer_boot_id_ != 0) {
        retired_.push_back(peer_boot_id_);
        if (retired_.size() > 16) retired_.pop_front();
      }
      peer_boot_id_ = p->boot_id;
      window_ = ReplayWindow{};
    }
    if (!window_.accept(p->seq)) {
      ++counters_.replayed;
      return;
    }
    echo_boot_id_ = p->boot_id;
    echo_seq_ = window_.highest();
    if (!fresh) {
      // Authentic and new, but does not prove the peer heard us recently
      // (e.g. its first packets, or a one-way link): not life.
      ++counters_.stale;
      return;
    }
    ++counters_.accepted;
    link.last_heard = now;
    last_heartbeat_ = now;
    peer_role_ = p->role;
    peer_epoch_ = p->epoch;
    cv_.notify_all();
  }

  // The echoed sequence is ours and was sent no longer ago than the timeout.
  bool echo_fresh(const HeartbeatPacket& p, Clock::time_point now) FTD_REQUIRES(mu_) {
    if (p.echo_boot_id != boot_id_ || p.echo_seq == 0) return false;
    for (auto it = sent_.rbegin(); it != sent_.rend(); ++it)
      if (it->first == p.echo_seq) return now - it->second <= config_.timeout();
    return false;
  }

  HeartbeatSnapshot snapshot() const {
    const auto now = Clock::now();
    MutexLock lock(mu_);
    return snapshot_locked(now);
  }

  HeartbeatSnapshot snapshot_locked(Clock::time_point now) const FTD_REQUIRES(mu_) {
    HeartbeatSnapshot s;
    if (last_heartbeat_) s.heartbeat_age = age(now, *last_heartbeat_);
    if (last_ack_) s.ack_age = age(now, *last_ack_);
    s.peer_role = peer_role_;
    s.peer_epoch = peer_epoch_;
    s.peer_boot_id = peer_boot_id_;
    s.last_acked_epoch = last_acked_epoch_;
    const auto t = config_.timeout();
    s.peer_alive = (s.heartbeat_age && *s.heartbeat_age < t) || (s.ack_age && *s.ack_age < t);
    for (const auto& l : links_) {
      HeartbeatLinkState ls{.local = l->cfg.local, .peer = l->cfg.peer};
      if (l->last_heard) ls.age = age(now, *l->last_heard);
      ls.up = ls.age && *ls.age < t;
      s.links.push_back(ls);
    }
    s.counters = counters_;
    return s;
  }

  bool wait_peer_alive(bool alive, milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    MutexLock lock(mu_);
    // Ages change with time, not only with packets: wake at least each interval.
    while (snapshot_locked(Clock::now()).peer_alive != alive) {
      if (Clock::now() >= deadline) return false;
      cv_.wait_until(mu_, std::min(deadline, Clock::now() + config_.interval / 5));
    }
    return true;
  }

  void set_role(PeerRole role) {
    MutexLock lock(mu_);
    role_ = role;
  }
  void set_epoch(uint64_t epoch) {
    MutexLock lock(mu_);
    epoch_ = epoch;
  }

  void note_peer_ack(uint64_t epoch) {
    MutexLock lock(mu_);
    last_ack_ = Clock::now();
    last_acked_epoch_ = std::max(last_acked_epoch_, epoch);
    cv_.notify_all();
  }

  const HeartbeatConfig config_;

 private:
  asio::io_context io_;
  asio::steady_timer timer_;
  std::vector<std::unique_ptr<Link>> links_;  // fixed after open(); sockets used on io thread only
  std::thread thread_;

  mutable Mutex mu_;
  mutable CondVar cv_;
  PeerRole role_ FTD_GUARDED_BY(mu_);
  uint64_t epoch_ FTD_GUARDED_BY(mu_);
  const uint64_t boot_id_;
  uint64_t seq_ FTD_GUARDED_BY(mu_) = 0;
  std::deque<std::pair<uint64_t, Clock::time_point>> sent_ FTD_GUARDED_BY(mu_);
  uint64_t peer_boot_id_ FTD_GUARDED_BY(mu_) = 0;
  std::deque<uint64_t> retired_ FTD_GUARDED_BY(mu_);
  uint64_t echo_boot_id_ FTD_GUARDED_BY(mu_) = 0;  // what our packets echo back
  uint64_t echo_seq_ FTD_GUARDED_BY(mu_) = 0;
  ReplayWindow window_ FTD_GUARDED_BY(mu_);
  std::optional<Clock::time_point> last_heartbeat_ FTD_GUARDED_BY(mu_);
  std::optional<Clock::time_point> last_ack_ FTD_GUARDED_BY(mu_);
  std::optional<PeerRole> peer_role_ FTD_GUARDED_BY(mu_);
  uint64_t peer_epoch_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t last_acked_epoch_ FTD_GUARDED_BY(mu_) = 0;
  HeartbeatCounters counters_ FTD_GUARDED_BY(mu_);
};

Result<std::unique_ptr<HeartbeatMonitor>> HeartbeatMonitor::start(HeartbeatConfig config,
                                                                  PeerRole role, uint64_t epoch) {
  if (config.interval.count() <= 0 || config.miss_count < 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "heartbeat: interval and miss count must be > 0");
  if (config.key.size() < 16) return make_error(ErrorCode::kInvalidArgument, "heartbeat: no key");
  if (config.vm.empty() || config.vm.size() > kMaxVmName)
    return make_error(ErrorCode::kInvalidArgument, "heartbeat: bad VM name");
  FTD_ASSIGN_OR_RETURN(uint64_t boot_id, random_u64());
  if (boot_id == 0) boot_id = 1;
  auto impl = std::make_unique<Impl>(std::move(config), role, epoch, boot_id);
  FTD_TRY(impl->open());
  return std::unique_ptr<HeartbeatMonitor>(new HeartbeatMonitor(std::move(impl)));
}

HeartbeatMonitor::HeartbeatMonitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HeartbeatMonitor::~HeartbeatMonitor() = default;
void HeartbeatMonitor::set_role(PeerRole role) { impl_->set_role(role); }
void HeartbeatMonitor::set_epoch(uint64_t epoch) { impl_->set_epoch(epoch); }
void HeartbeatMonitor::note_peer_ack(uint64_t epoch) { impl_->note_peer_ack(epoch); }
HeartbeatSnapshot HeartbeatMonitor::snapshot() const { return impl_->snapshot(); }
bool HeartbeatMonitor::wait_peer_alive(bool alive, milliseconds timeout) const {
  return impl_->wait_peer_alive(alive, timeout);
}
const HeartbeatConfig& HeartbeatMonitor::config() const { return impl_->config_; }

}  // namespace ftd
