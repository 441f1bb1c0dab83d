// The guest NIC's frame decoder (net/frame_stream.h FrameDecoder: QEMU's
// `-netdev stream` be32 length + frame) on an untrusted byte stream. The
// input is the stream; it is fed once whole and once in pieces of varying
// size (a frame or its length prefix may be split anywhere). Oracle: both
// ways yield the same frames and the same verdict, and re-encoding the frames
// gives back exactly the bytes they came from.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "net/frame_stream.h"

namespace ftd::fuzz {
namespace {

struct Outcome {
  std::vector<net::FrameBytes> frames;
  bool corrupt = false;
  size_t pending = 0;
};

// Feeds `in` whole (max_piece 0) or in pieces of 1..`max_piece` bytes, sizes
// from a small LCG seeded by the input size.
Outcome decode(std::span<const uint8_t> in, size_t max_piece) {
  net::FrameDecoder decoder;
  Outcome out;
  uint32_t lcg = static_cast<uint32_t>(in.size());
  while (!in.empty()) {
    lcg = lcg * 1664525u + 1013904223u;
    const size_t n = max_piece == 0 ? in.size() : std::min(in.size(), 1 + (lcg >> 8) % max_piece);
    if (!decoder.feed(in.first(n), out.frames)) {
      FUZZ_CHECK(decoder.corrupt());
      FUZZ_CHECK(!decoder.feed(in.first(n), out.frames));  // stays refused until reset()
      break;
    }
    in = in.subspan(n);
  }
  out.corrupt = decoder.corrupt();
  out.pending = decoder.pending_bytes();
  return out;
}

}  // namespace
}  // namespace ftd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftd;
  const std::span<const uint8_t> in(data, size);
  const auto whole = fuzz::decode(in, 0);
  const auto pieces = fuzz::decode(in, 7);
  FUZZ_CHECK(whole.frames == pieces.frames);
  FUZZ_CHECK(whole.corrupt == pieces.corrupt);

  std::vector<uint8_t> encoded;
  for (const auto& f : whole.frames) {
    FUZZ_CHECK(!f.empty() && f.size() <= net::kMaxFrameBytes);
    FUZZ_CHECK(net::append_encoded_frame(f, encoded).has_value());
  }
  FUZZ_CHECK(encoded.size() <= size);
  FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), data));
  if (!whole.corrupt) {
    FUZZ_CHECK(whole.pending == pieces.pending);
    FUZZ_CHECK(encoded.size() + whole.pending == size);
  }
  return 0;
}
