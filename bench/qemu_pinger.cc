#include "bench/qemu_pinger.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>

namespace ftd::bench {
namespace {

uint16_t inet_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

Result<Pinger> Pinger::open(const net::NetNamespace& ns, const std::string& target_ipv4) {
  Pinger p;
  in_addr addr{};
  if (::inet_pton(AF_INET, target_ipv4.c_str(), &addr) != 1)
    return make_error(ErrorCode::kInvalidArgument, "not an IPv4 address: '{}'", target_ipv4);
  p.target_ = addr.s_addr;
  FTD_ASSIGN_OR_RETURN(p.fd_, ns.run([]() -> Result<UniqueFd> {
    UniqueFd fd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
    if (!fd) return errno_error("socket(AF_INET, SOCK_RAW, ICMP)");
    return fd;
  }));
  p.id_ = static_cast<uint16_t>(std::random_device{}());
  return p;
}

Status Pinger::send_echo(uint16_t seq) {
  uint8_t pkt[64] = {};
  pkt[0] = ICMP_ECHO;
  pkt[4] = static_cast<uint8_t>(id_ >> 8);
  pkt[5] = static_cast<uint8_t>(id_);
  pkt[6] = static_cast<uint8_t>(seq >> 8);
  pkt[7] = static_cast<uint8_t>(seq);
  const uint16_t sum = inet_checksum(pkt, sizeof pkt);
  pkt[2] = static_cast<uint8_t>(sum >> 8);
  pkt[3] = static_cast<uint8_t>(sum);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = target_;
  if (::sendto(fd_.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    return errno_error("sendto ICMP echo");
  return ok();
}

std::optional<uint16_t> Pinger::recv_reply(Clock::time_point until) {
  uint8_t buf[2048];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd_.get(), POLLIN, 0};
    if (left < 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 20) continue;
    const size_t ihl = (buf[0] & 0x0f) * 4u;  // raw sockets deliver the IP header
    if (static_cast<size_t>(n) < ihl + 8 || from.sin_addr.s_addr != target_) continue;
    const uint8_t* icmp = buf + ihl;
    if (icmp[0] != ICMP_ECHOREPLY || ((icmp[4] << 8) | icmp[5]) != id_) continue;
    return static_cast<uint16_t>((icmp[6] << 8) | icmp[7]);
  }
}

PingResult Pinger::run(std::chrono::milliseconds interval, std::chrono::milliseconds duration,
                       std::chrono::milliseconds reply_timeout) {
  PingResult r;
  std::map<uint16_t, Clock::time_point> outstanding;
  const auto start = Clock::now();
  const auto end_sending = start + duration;
  auto next_send = start;
  while (true) {
    const auto now = Clock::now();
    if (now >= end_sending && (outstanding.empty() || now >= end_sending + reply_timeout)) break;
    if (now >= next_send && now < end_sending) {
      const uint16_t seq = next_seq_++;
      if (send_echo(seq)) {
        outstanding[seq] = Clock::now();
        ++r.sent;
      }
      next_send += interval;
      continue;
    }
    const auto until = now < end_sending ? next_send : end_sending + reply_timeout;
    if (auto seq = recv_reply(until)) {
      const auto at = Clock::now();
      if (auto it = outstanding.find(*seq); it != outstanding.end()) {
        r.rtt_us.push_back(std::chrono::duration<double, std::micro>(at - it->second).count());
        ++r.received;
        outstanding.erase(it);
      }
    }
  }
  return r;
}

Result<Pinger::Clock::time_point> Pinger::wait_answer(std::chrono::milliseconds interval,
                                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const uint16_t first = next_seq_;
  while (Clock::now() < deadline) {
    FTD_TRY(send_echo(next_seq_++));
    const auto until = std::min(deadline, Clock::now() + interval);
    while (auto seq = recv_reply(until)) {
      // Any reply to a request of this wait (not a late one from an earlier run).
      if (static_cast<uint16_t>(*seq - first) < static_cast<uint16_t>(next_seq_ - first))
        return Clock::now();
    }
  }
  return make_error(ErrorCode::kTimeout, "no ICMP echo reply within {} ms", timeout.count());
}

}  // namespace ftd::bench
