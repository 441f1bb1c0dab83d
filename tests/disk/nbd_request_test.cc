#include "disk/nbd_request.h"

#include <gtest/gtest.h>

#include <array>

#include "disk/nbd_protocol.h"

namespace ftd::nbd {
namespace {

std::array<std::byte, kRequestHeaderSize> header(uint32_t magic, uint16_t type, uint64_t offset,
                                                 uint32_t length) {
  std::array<std::byte, kRequestHeaderSize> h{};
  store_be(h, magic, 4);
  store_be(std::span(h).subspan(6), type, 2);
  store_be(std::span(h).subspan(8), 0x1122334455667788, 8);
  store_be(std::span(h).subspan(16), offset, 8);
  store_be(std::span(h).subspan(24), length, 4);
  return h;
}

TEST(NbdRequest, ParsesAHeader) {
  auto r = parse_request(header(kRequestMagic, 1, 4096, 512));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, 1);
  EXPECT_EQ(r->handle, 0x1122334455667788u);
  EXPECT_EQ(r->offset, 4096u);
  EXPECT_EQ(r->length, 512u);
}

TEST(NbdRequest, WrongMagicIsCorrupt) {
  auto r = parse_request(header(0xdeadbeef, 1, 0, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
}

TEST(NbdRequest, Validation) {
  constexpr uint64_t size = 1 << 20;
  constexpr uint32_t max = 1 << 16;
  auto v = [&](uint16_t type, uint64_t off, uint32_t len) {
    return validate_request(*parse_request(header(kRequestMagic, type, off, len)), size, max);
  };
  EXPECT_EQ(v(1, 0, 512), 0u);
  EXPECT_EQ(v(1, size - 512, 512), 0u);
  EXPECT_EQ(v(1, size - 511, 512), kEnospc);
  EXPECT_EQ(v(1, UINT64_MAX - 10, 512), kEnospc);  // offset + length overflows
  EXPECT_EQ(v(1, 0, 0), kEinval);
  EXPECT_EQ(v(1, 0, max + 1), kEinval);
  EXPECT_EQ(v(0, size, 1), kEinval);
  EXPECT_EQ(v(4, 0, static_cast<uint32_t>(size)), 0u);  // trim: no request-size cap
  EXPECT_EQ(v(6, size, 1), kEnospc);
  EXPECT_EQ(v(3, 0, 0), 0u);
  EXPECT_EQ(v(3, 0, 1), kEinval);
  EXPECT_EQ(v(9, 0, 1), kEinval);  // unknown command
  EXPECT_EQ(command_name(9), "cmd-9");
}

}  // namespace
}  // namespace ftd::nbd
