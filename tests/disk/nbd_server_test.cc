// ftd's NBD server against libnbd (an independent client) and against a raw
// socket that sends what no well-behaved client would.
#include "disk/nbd_server.h"

#include <libnbd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <thread>

#include "common/file_util.h"
#include "common/unique_fd.h"
#include "disk/nbd_io.h"
#include "disk/nbd_protocol.h"
#include "tests/disk/disk_test_util.h"

namespace ftd {
namespace {

using testing::pattern;
using testing::TempDir;

constexpr uint64_t kExportSize = 16 << 20;

struct NbdHandle {
  nbd_handle* h = nbd_create();
  ~NbdHandle() { nbd_close(h); }
};

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(1 << 30); }
  void start(size_t memory_limit) {
    server_.reset();
    log_ = std::make_unique<DiskWriteLog>(
        DiskWriteLogOptions{.memory_limit = memory_limit, .spill_dir = dir_.path()});
    auto s = NbdServer::start({.socket_path = dir_.file("nbd.sock"),
                               .export_size = kExportSize,
                               .max_request_bytes = 1 << 20},
                              *log_);
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
  }
  void connect(NbdHandle& c) {
    ASSERT_EQ(nbd_set_export_name(c.h, "ftd-disk"), 0);
    ASSERT_EQ(nbd_connect_unix(c.h, dir_.file("nbd.sock").c_str()), 0) << nbd_get_error();
  }
  std::vector<DiskWrite> take() {
    auto e = log_->take_epoch();
    EXPECT_TRUE(e);
    return e ? std::move(*e) : std::vector<DiskWrite>{};
  }

  TempDir dir_;
  std::unique_ptr<DiskWriteLog> log_;
  std::unique_ptr<NbdServer> server_;
};

std::vector<std::byte> bytes_of(const DiskWrite& w) { return {w.data.begin(), w.data.end()}; }

TEST_F(NbdServerTest, HandshakeAdvertisesSizeAndCommands) {
  NbdHandle c;
  connect(c);
  EXPECT_EQ(nbd_get_size(c.h), static_cast<int64_t>(kExportSize));
  EXPECT_EQ(nbd_can_flush(c.h), 1);
  EXPECT_EQ(nbd_can_trim(c.h), 1);
  EXPECT_EQ(nbd_can_zero(c.h), 1);
  EXPECT_EQ(nbd_is_read_only(c.h), 0);
  EXPECT_EQ(nbd_get_structured_replies_negotiated(c.h), 0);  // refused: simple replies
  EXPECT_EQ(nbd_shutdown(c.h, 0), 0);
}

TEST_F(NbdServerTest, ListShowsTheOneExport) {
  NbdHandle c;
  ASSERT_EQ(nbd_set_opt_mode(c.h, true), 0);
  ASSERT_EQ(nbd_connect_unix(c.h, dir_.file("nbd.sock").c_str()), 0) << nbd_get_error();
  std::vector<std::string> names;
  nbd_list_callback cb{.callback =
                           [](void* user, const char* name, const char*) {
                             static_cast<std::vector<std::string>*>(user)->push_back(name);
                             return 0;
                           },
                       .user_data = &names};
  ASSERT_EQ(nbd_opt_list(c.h, cb), 1) << nbd_get_error();
  EXPECT_EQ(names, std::vector<std::string>{"ftd-disk"});
  ASSERT_EQ(nbd_set_export_name(c.h, "other"), 0);
  EXPECT_EQ(nbd_opt_go(c.h), -1);  // unknown export: refused, session stays usable
  ASSERT_EQ(nbd_opt_abort(c.h), 0);
}

TEST_F(NbdServerTest, WritesTrimsAndZeroesLandInOrderWithExactBytes) {
  NbdHandle c;
  connect(c);
  auto a = pattern(1, 4096), b = pattern(2, 1000);
  ASSERT_EQ(nbd_pwrite(c.h, a.data(), a.size(), 8192, 0), 0) << nbd_get_error();
  ASSERT_EQ(nbd_trim(c.h, 65536, 1 << 20, 0), 0) << nbd_get_error();
  ASSERT_EQ(nbd_pwrite(c.h, b.data(), b.size(), 12345, 0), 0) << nbd_get_error();
  ASSERT_EQ(nbd_zero(c.h, 4096, kExportSize - 4096, 0), 0) << nbd_get_error();
  ASSERT_EQ(nbd_flush(c.h, 0), 0) << nbd_get_error();
  auto w = take();
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].offset, 8192u);
  EXPECT_EQ(bytes_of(w[0]), a);
  EXPECT_EQ(w[1].kind, DiskWrite::Kind::kZeroes);
  EXPECT_EQ(w[1].offset, 1u << 20);
  EXPECT_EQ(w[1].length, 65536u);
  EXPECT_EQ(w[2].offset, 12345u);
  EXPECT_EQ(bytes_of(w[2]), b);
  EXPECT_EQ(w[3].kind, DiskWrite::Kind::kZeroes);
  EXPECT_EQ(w[3].offset, kExportSize - 4096);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i].seq, i + 1);
  EXPECT_EQ(server_->stats().writes, 4u);
}

TEST_F(NbdServerTest, ReadsAreRefusedAndChangeNothing) {
  NbdHandle c;
  connect(c);
  std::array<char, 512> buf{};
  EXPECT_EQ(nbd_pread(c.h, buf.data(), buf.size(), 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO);
  auto a = pattern(3, 512);  // the connection still works
  ASSERT_EQ(nbd_pwrite(c.h, a.data(), a.size(), 0, 0), 0) << nbd_get_error();
  EXPECT_EQ(take().size(), 1u);
}

TEST_F(NbdServerTest, OutOfRangeRequestsAreRejectedWithTheLogUnchanged) {
  NbdHandle c;
  ASSERT_EQ(nbd_set_strict_mode(c.h, 0), 0);  // let libnbd send what it would refuse
  connect(c);
  auto a = pattern(4, 4096);
  EXPECT_EQ(nbd_pwrite(c.h, a.data(), a.size(), kExportSize - 2048, 0), -1);
  EXPECT_EQ(nbd_get_errno(), ENOSPC);
  EXPECT_EQ(nbd_trim(c.h, 4096, kExportSize, 0), -1);
  EXPECT_EQ(nbd_zero(c.h, 1, kExportSize, 0), -1);
  EXPECT_EQ(log_->stats().pending_records, 0u);
  EXPECT_EQ(server_->stats().rejected, 3u);
  ASSERT_EQ(nbd_pwrite(c.h, a.data(), a.size(), 0, 0), 0) << nbd_get_error();
  EXPECT_EQ(take().size(), 1u);
}

// A raw client: the handshake by hand, then whatever the test writes.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    (void)nbd::set_receive_timeout(fd_.get(), std::chrono::milliseconds(5000));
  }
  bool connected() const { return connected_; }
  void send(std::span<const std::byte> b) { ASSERT_TRUE(write_all(fd_.get(), b, "raw")); }
  template <size_t N>
  Status recv(std::array<std::byte, N>& b) {
    return nbd::read_exact(fd_.get(), b);
  }
  // Greeting, flags, NBD_OPT_EXPORT_NAME "ftd-disk" → size + flags.
  void open_export() {
    std::array<std::byte, 18> hello;
    ASSERT_TRUE(recv(hello));
    std::array<std::byte, 4> flags{};
    nbd::store_be(flags, nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes, 4);
    send(flags);
    std::string name = "ftd-disk";
    std::vector<std::byte> opt(16 + name.size());
    nbd::store_be(opt, nbd::kOptMagic, 8);
    nbd::store_be(std::span(opt).subspan(8), nbd::kOptExportName, 4);
    nbd::store_be(std::span(opt).subspan(12), name.size(), 4);
    std::memcpy(opt.data() + 16, name.data(), name.size());
    send(opt);
    std::array<std::byte, 10> info;
    ASSERT_TRUE(recv(info));
    ASSERT_EQ(nbd::load_be(info, 8), kExportSize);
  }
  void request(uint32_t magic, uint16_t type, uint64_t offset, uint32_t length) {
    std::array<std::byte, nbd::kRequestHeaderSize> h{};
    nbd::store_be(h, magic, 4);
    nbd::store_be(std::span(h).subspan(6), type, 2);
    nbd::store_be(std::span(h).subspan(8), 42, 8);
    nbd::store_be(std::span(h).subspan(16), offset, 8);
    nbd::store_be(std::span(h).subspan(24), length, 4);
    send(h);
  }
  // The error field of the next simple reply.
  Result<uint32_t> reply() {
    std::array<std::byte, nbd::kSimpleReplySize> r;
    FTD_TRY(recv(r));
    EXPECT_EQ(nbd::load_be(r, 4), nbd::kSimpleReplyMagic);
    EXPECT_EQ(nbd::load_be(std::span(r).subspan(8), 8), 42u);
    return static_cast<uint32_t>(nbd::load_be(std::span(r).subspan(4), 4));
  }
  // True once the server closed the connection.
  bool closed_by_server() {
    std::array<std::byte, 1> b;
    auto r = recv(b);
    return !r && r.error().code == ErrorCode::kUnavailable;
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
};

TEST_F(NbdServerTest, UnknownCommandGetsEinvalAndTheSessionContinues) {
  RawClient raw(dir_.file("nbd.sock"));
  ASSERT_TRUE(raw.connected());
  raw.open_export();
  raw.request(nbd::kRequestMagic, 9, 0, 512);
  EXPECT_EQ(raw.reply(), nbd::kEinval);
  auto a = pattern(5, 512);
  raw.request(nbd::kRequestMagic, 1, 512, 512);
  raw.send(a);
  EXPECT_EQ(raw.reply(), 0u);
  auto w = take();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(bytes_of(w[0]), a);
}

TEST_F(NbdServerTest, GarbageHandshakeIsClosedAndLogsNothing) {
  for (std::string garbage : {std::string("GET / HTTP/1.1\r\n\r\n"), std::string(4, '\xff')}) {
    RawClient raw(dir_.file("nbd.sock"));
    ASSERT_TRUE(raw.connected());
    std::array<std::byte, 18> hello;
    ASSERT_TRUE(raw.recv(hello));
    EXPECT_EQ(nbd::load_be(hello, 8), nbd::kMagic);
    raw.send(std::as_bytes(std::span(garbage)));
    EXPECT_TRUE(raw.closed_by_server());
  }
  EXPECT_EQ(log_->stats().pending_records, 0u);
  EXPECT_GE(server_->stats().protocol_errors, 2u);
  NbdHandle c;  // the server still serves
  connect(c);
}

TEST_F(NbdServerTest, GarbageRequestClosesTheConnectionAndKeepsAcceptedWrites) {
  RawClient raw(dir_.file("nbd.sock"));
  ASSERT_TRUE(raw.connected());
  raw.open_export();
  auto a = pattern(6, 512);
  raw.request(nbd::kRequestMagic, 1, 0, 512);
  raw.send(a);
  EXPECT_EQ(raw.reply(), 0u);
  raw.request(0x12345678, 1, 0, 512);  // bad magic: the stream is lost
  EXPECT_TRUE(raw.closed_by_server());
  RawClient big(dir_.file("nbd.sock"));
  big.open_export();
  big.request(nbd::kRequestMagic, 1, 0, 64u << 20);  // beyond max_request_bytes
  EXPECT_TRUE(big.closed_by_server());
  auto w = take();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(bytes_of(w[0]), a);
}

TEST_F(NbdServerTest, StalledHandshakeTimesOut) {
  server_.reset();
  auto s = NbdServer::start({.socket_path = dir_.file("nbd2.sock"),
                             .export_size = kExportSize,
                             .handshake_timeout = std::chrono::milliseconds(200)},
                            *log_);
  ASSERT_TRUE(s);
  RawClient raw(dir_.file("nbd2.sock"));
  std::array<std::byte, 18> hello;
  ASSERT_TRUE(raw.recv(hello));
  EXPECT_TRUE(raw.closed_by_server());  // we never sent our flags
}

TEST_F(NbdServerTest, SpillsToAFileWhenThePipelineIsBehind) {
  start(256 * 1024);
  NbdHandle c;
  connect(c);
  std::vector<std::vector<std::byte>> sent;
  for (uint64_t i = 0; i < 64; ++i) {  // 4 MiB against a 256 KiB limit
    sent.push_back(pattern(100 + i, 64 * 1024));
    ASSERT_EQ(nbd_pwrite(c.h, sent.back().data(), sent.back().size(), i * 65536, 0), 0)
        << nbd_get_error();
  }
  EXPECT_GT(log_->stats().spilled_bytes, 0u);
  auto w = take();
  ASSERT_EQ(w.size(), 64u);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(bytes_of(w[i]), sent[i]) << i;
}

// QEMU keeps up to 16 requests in flight on one connection; here 16 in
// flight on each of 4 connections at once.
TEST_F(NbdServerTest, ConcurrentRequestsAreAllRecordedExactly) {
  constexpr int kClients = 4, kPerClient = 256, kInFlight = 16;
  constexpr uint32_t kLen = 4096;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      NbdHandle c;
      nbd_set_export_name(c.h, "ftd-disk");
      if (nbd_connect_unix(c.h, dir_.file("nbd.sock").c_str()) != 0) {
        ++failures;
        return;
      }
      std::vector<std::vector<std::byte>> bufs;
      for (int i = 0; i < kPerClient; ++i) bufs.push_back(pattern(t * kPerClient + i, kLen));
      int next = 0;
      while (next < kPerClient || nbd_aio_in_flight(c.h) > 0) {
        while (next < kPerClient && nbd_aio_in_flight(c.h) < kInFlight) {
          uint64_t slot = static_cast<uint64_t>(t * kPerClient + next);
          if (nbd_aio_pwrite(c.h, bufs[next].data(), kLen, slot * kLen, NBD_NULL_COMPLETION, 0) < 0)
            ++failures;
          ++next;
        }
        if (nbd_poll(c.h, -1) < 0) ++failures;
        int64_t cookie;
        while ((cookie = nbd_aio_peek_command_completed(c.h)) > 0)
          if (nbd_aio_command_completed(c.h, cookie) != 1) ++failures;
      }
      nbd_shutdown(c.h, 0);
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto w = take();
  ASSERT_EQ(w.size(), size_t{kClients * kPerClient});
  std::vector<bool> seen(kClients * kPerClient);
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(w[i].seq, i + 1);
    uint64_t slot = w[i].offset / kLen;
    ASSERT_LT(slot, seen.size());
    EXPECT_FALSE(seen[slot]);
    seen[slot] = true;
    EXPECT_EQ(bytes_of(w[i]), pattern(slot, kLen)) << "slot " << slot;
  }
}

}  // namespace
}  // namespace ftd
