#include "checkpoint/page_digests.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftd {
namespace {

TEST(PageDigests, RoundTripAndDifferOnOneByte) {
  std::vector<std::byte> mem(4 * 4096, std::byte{0});
  mem[2 * 4096 + 17] = std::byte{1};
  const auto d = digest_pages(mem, 4096);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0], d[1]);
  EXPECT_NE(d[1], d[2]) << "one byte must change the digest";
  const std::string wire = encode_digests(d);
  EXPECT_EQ(wire.size(), 4 * kPageDigestBytes);
  std::vector<PageDigest> back;
  ASSERT_TRUE(decode_digests(wire, back));
  EXPECT_EQ(back, d);
}

TEST(PageDigests, TornListIsRefusedAndAppendsNothing) {
  std::vector<PageDigest> out{{1, 2}};
  auto st = decode_digests(std::string(kPageDigestBytes + 3, 'x'), out);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace ftd
