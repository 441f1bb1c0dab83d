// Test doubles for the network proxy: a "QEMU" that speaks the stream netdev
// framing over the proxy's unix socket, a raw AF_PACKET socket on an
// interface, and a pump that makes a tap in another namespace the guest's NIC.
#pragma once

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/frame_stream.h"
#include "net/tap_device.h"

namespace ftd::net::testing {

using namespace std::chrono_literals;

inline constexpr uint16_t kTestEtherType = 0x88B5;  // IEEE local experimental

// Ethernet frame of our test ethertype carrying `seq` (big-endian) + padding.
inline FrameBytes make_test_frame(uint32_t seq, uint8_t src_last = 0x01, size_t size = 64) {
  FrameBytes f(size, 0);
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0xfe};
  const uint8_t src[6] = {0x02, 0, 0, 0, 0, src_last};
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, src, 6);
  f[12] = kTestEtherType >> 8;
  f[13] = kTestEtherType & 0xff;
  f[14] = static_cast<uint8_t>(seq >> 24);
  f[15] = static_cast<uint8_t>(seq >> 16);
  f[16] = static_cast<uint8_t>(seq >> 8);
  f[17] = static_cast<uint8_t>(seq);
  return f;
}

inline std::optional<uint32_t> test_frame_seq(const FrameBytes& f) {
  if (f.size() < 18 || f[12] != (kTestEtherType >> 8) || f[13] != (kTestEtherType & 0xff)) {
    return std::nullopt;
  }
  return (uint32_t{f[14]} << 24) | (uint32_t{f[15]} << 16) | (uint32_t{f[16]} << 8) | f[17];
}

inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

// Plays QEMU's `-netdev stream,server=off` end.
class FakeQemu {
 public:
  static Result<FakeQemu> connect(const std::string& path) {
    FakeQemu q;
    q.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!q.fd_) return errno_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(q.fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return errno_error("connect " + path);
    }
    return q;
  }
  Status send_raw(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) return errno_error("send");
      bytes = bytes.subspan(static_cast<size_t>(n));
    }
    return ok();
  }
  Status send_frame(std::span<const uint8_t> frame) {
    FTD_ASSIGN_OR_RETURN(auto encoded, encode_frame(frame));
    return send_raw(encoded);
  }
  // Next frame from the proxy, or nullopt on timeout / EOF (see eof()).
  std::optional<FrameBytes> recv_frame(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pending_.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(fd_.get(), left)) return std::nullopt;
      uint8_t buf[65536];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        return std::nullopt;
      }
      if (!decoder_.feed(std::span(buf, static_cast<size_t>(n)), pending_)) return std::nullopt;
    }
    FrameBytes f = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return f;
  }
  // Frames of the test ethertype only (the kernel may chatter on the link).
  std::optional<FrameBytes> recv_test_frame(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = recv_frame(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!f) return std::nullopt;
      if (test_frame_seq(*f)) return f;
    }
    return std::nullopt;
  }
  // Plays QEMU's `-netdev stream,server=on` end: the next connection on
  // `listen_fd` (see listen_unix), or an error after `timeout`.
  static Result<FakeQemu> accept(int listen_fd, std::chrono::milliseconds timeout) {
    if (!wait_readable(listen_fd, timeout))
      return make_error(ErrorCode::kTimeout, "nobody connected in {} ms", timeout.count());
    FakeQemu q;
    q.fd_.reset(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!q.fd_) return errno_error("accept");
    return q;
  }
  static Result<UniqueFd> listen_unix(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 4) != 0)
      return errno_error("listen " + path);
    return fd;
  }
  bool eof() const { return eof_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  FrameDecoder decoder_;
  std::vector<FrameBytes> pending_;
  bool eof_ = false;
};

// AF_PACKET socket on one interface for one ethertype (ETH_P_ALL: every frame).
// Create it inside the interface's namespace (NetNamespace::run).
class PacketSocket {
 public:
  static Result<PacketSocket> open(const std::string& ifname, uint16_t ethertype = kTestEtherType) {
    FTD_ASSIGN_OR_RETURN(int index, interface_index(ifname));
    PacketSocket p;
    p.index_ = index;
    p.fd_.reset(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ethertype)));
    if (!p.fd_) return errno_error("socket(AF_PACKET)");
    int rcvbuf = 16 << 20;  // bursts of released frames must not overflow it
    ::setsockopt(p.fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ethertype);
    sll.sll_ifindex = index;
    if (::bind(p.fd_.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      return errno_error("bind AF_PACKET");
    }
    return p;
  }
  // Next frame received on the interface (our own transmissions are skipped).
  std::optional<FrameBytes> recv(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() < 0 || !wait_readable(fd_.get(), left)) return std::nullopt;
      FrameBytes buf(65536);
      sockaddr_ll from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0,
                             reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return std::nullopt;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
  }
  Status send(std::span<const uint8_t> frame) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = index_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    if (::sendto(fd_.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to) < 0) {
      return errno_error("sendto AF_PACKET");
    }
    return ok();
  }

 private:
  UniqueFd fd_;
  int index_ = 0;
};

// Makes `guest_tap` (in some namespace) the guest NIC: frames the kernel sends
// on it go to the proxy framed like QEMU does, and frames from the proxy are
// written into it. A stand-in for QEMU + virtio-net with a real kernel stack.
class GuestPump {
 public:
  GuestPump(TapDevice guest_tap, FakeQemu link)
      : tap_(std::move(guest_tap)), link_(std::move(link)), stop_(::eventfd(0, EFD_CLOEXEC)) {
    thread_ = std::thread([this] { run(); });
  }
  ~GuestPump() {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }

 private:
  void run() {
    FrameDecoder decoder;
    std::vector<uint8_t> buf(65536);
    while (true) {
      pollfd p[3] = {{tap_.fd(), POLLIN, 0}, {link_.fd(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(p, 3, -1) < 0) continue;
      if (p[2].revents) return;
      if (p[0].revents & POLLIN) {
        ssize_t n = ::read(tap_.fd(), buf.data(), buf.size());
        if (n > 0) (void)link_.send_frame(std::span(buf.data(), static_cast<size_t>(n)));
      }
      if (p[1].revents & (POLLIN | POLLHUP)) {
        ssize_t n = ::recv(link_.fd(), buf.data(), buf.size(), 0);
        if (n <= 0) return;
        std::vector<FrameBytes> frames;
        if (!decoder.feed(std::span(buf.data(), static_cast<size_t>(n)), frames)) return;
        for (auto& f : frames) (void)!::write(tap_.fd(), f.data(), f.size());
      }
    }
  }
  TapDevice tap_;
  FakeQemu link_;
  UniqueFd stop_;
  std::thread thread_;
};

inline std::string unique_socket_path(std::string_view tag) {
  return fmt::format("/tmp/ftd-{}-{}-{}.sock", tag, ::getpid(),
                     std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace ftd::net::testing
