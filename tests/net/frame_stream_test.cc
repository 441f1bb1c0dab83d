#include "net/frame_stream.h"

#include <gtest/gtest.h>

#include <numeric>

namespace ftd::net {
namespace {

FrameBytes frame_of(size_t size, uint8_t seed) {
  FrameBytes f(size);
  std::iota(f.begin(), f.end(), seed);
  return f;
}

TEST(FrameStream, EncodesBigEndianLengthPrefix) {
  auto enc = encode_frame(frame_of(0x0102, 7));
  ASSERT_TRUE(enc);
  ASSERT_EQ(enc->size(), 0x0102u + 4);
  EXPECT_EQ((*enc)[0], 0);
  EXPECT_EQ((*enc)[1], 0);
  EXPECT_EQ((*enc)[2], 1);
  EXPECT_EQ((*enc)[3], 2);
  EXPECT_EQ((*enc)[4], 7);
}

TEST(FrameStream, RoundTripsWhateverTheChunking) {
  std::vector<FrameBytes> sent = {frame_of(60, 1), frame_of(1514, 2), frame_of(1, 3),
                                  frame_of(kMaxFrameBytes, 4), frame_of(9000, 5)};
  std::vector<uint8_t> stream;
  for (auto& f : sent) ASSERT_TRUE(append_encoded_frame(f, stream));
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{1000}, stream.size()}) {
    FrameDecoder dec;
    std::vector<FrameBytes> got;
    for (size_t off = 0; off < stream.size(); off += chunk) {
      size_t n = std::min(chunk, stream.size() - off);
      ASSERT_TRUE(dec.feed(std::span(stream).subspan(off, n), got)) << "chunk " << chunk;
    }
    EXPECT_EQ(got, sent) << "chunk " << chunk;
    EXPECT_EQ(dec.pending_bytes(), 0u);
  }
}

TEST(FrameStream, KeepsPartialFrameAcrossFeeds) {
  auto enc = *encode_frame(frame_of(100, 9));
  FrameDecoder dec;
  std::vector<FrameBytes> got;
  ASSERT_TRUE(dec.feed(std::span(enc).first(2), got));  // half the length prefix
  EXPECT_EQ(dec.pending_bytes(), 2u);
  ASSERT_TRUE(dec.feed(std::span(enc).subspan(2, 50), got));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(dec.pending_bytes(), 52u);
  ASSERT_TRUE(dec.feed(std::span(enc).subspan(52), got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], frame_of(100, 9));
}

TEST(FrameStream, ZeroLengthIsCorruptAndPoisonsTheDecoder) {
  std::vector<uint8_t> stream;
  ASSERT_TRUE(append_encoded_frame(frame_of(64, 1), stream));
  for (int i = 0; i < 4; ++i) stream.push_back(0);  // zero-length header
  ASSERT_TRUE(append_encoded_frame(frame_of(64, 2), stream));
  FrameDecoder dec;
  std::vector<FrameBytes> got;
  auto r = dec.feed(stream, got);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  ASSERT_EQ(got.size(), 1u);  // the good frame before the damage is kept
  EXPECT_EQ(got[0], frame_of(64, 1));
  EXPECT_TRUE(dec.corrupt());
  // Boundaries are lost: even valid input is refused until reset().
  auto more = *encode_frame(frame_of(10, 3));
  EXPECT_FALSE(dec.feed(more, got));
  EXPECT_EQ(got.size(), 1u);
  dec.reset();
  ASSERT_TRUE(dec.feed(more, got));
  EXPECT_EQ(got.size(), 2u);
}

TEST(FrameStream, OversizedLengthIsCorrupt) {
  const uint32_t len = kMaxFrameBytes + 1;
  std::vector<uint8_t> stream = {uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8),
                                 uint8_t(len)};
  FrameDecoder dec;
  std::vector<FrameBytes> got;
  auto r = dec.feed(stream, got);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(r.error().message.find("69633"), std::string::npos) << r.error().message;

  FrameDecoder dec2;  // a garbage (e.g. ASCII) stream yields a huge length
  std::string garbage = "GET / HTTP/1.1\r\n";
  EXPECT_FALSE(
      dec2.feed(std::span(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()), got));
  EXPECT_EQ(got.size(), 0u);
}

TEST(FrameStream, EncoderRejectsEmptyAndOversizedFrames) {
  std::vector<uint8_t> out = {42};
  EXPECT_EQ(append_encoded_frame({}, out).error().code, ErrorCode::kInvalidArgument);
  FrameBytes huge(kMaxFrameBytes + 1);
  EXPECT_EQ(append_encoded_frame(huge, out).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(out, std::vector<uint8_t>{42});  // untouched
  EXPECT_TRUE(encode_frame(FrameBytes(kMaxFrameBytes)));
}

}  // namespace
}  // namespace ftd::net
