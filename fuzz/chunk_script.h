// The input format of chunk_assembler_fuzzer: a script of steps that turns
// into a sequence of ChunkViews. Most steps continue an honest checkpoint (so
// the fuzzer reaches completion), others start a new one, forge a chunk
// field by field or reset. The seed generator writes scripts with the same
// helpers, so the format lives here once.
//
//   u16 le  the assembler's limit (max checkpoint bytes)
//   steps   op byte, then its operands:
//     kNext   u8 n         next n bytes of the current checkpoint
//     kStart  u8 epoch, u16 le total   begins an honest checkpoint (no chunk)
//     kForge  u8 epoch, u16 le offset, u16 le total, u8 last, u8 n   any chunk
//     kReset               ChunkAssembler::reset()
// A truncated step ends the script. Chunk payloads are not in the input:
// byte i of everything fed is mix(i), so a misplaced byte shows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ftd::fuzz {

enum class ChunkOp : uint8_t { kNext = 0, kStart = 1, kForge = 2, kReset = 3 };

struct ChunkStep {
  ChunkOp op = ChunkOp::kNext;
  uint64_t epoch = 0;
  uint64_t offset = 0;
  uint64_t total = 0;
  bool last = false;
  size_t length = 0;
};

inline std::byte chunk_payload_byte(uint64_t i) {
  return static_cast<std::byte>((i * 0x9E3779B97F4A7C15ull) >> 56);
}

// Reads a script. Op bytes are taken modulo the number of ops, so every byte
// string is a script.
class ChunkScriptReader {
 public:
  explicit ChunkScriptReader(std::span<const uint8_t> in) : in_(in) {}

  std::optional<uint16_t> u16() {
    if (in_.size() < 2) return std::nullopt;
    uint16_t v = static_cast<uint16_t>(in_[0] | (in_[1] << 8));
    in_ = in_.subspan(2);
    return v;
  }
  std::optional<uint8_t> u8() {
    if (in_.empty()) return std::nullopt;
    uint8_t v = in_[0];
    in_ = in_.subspan(1);
    return v;
  }

  std::optional<ChunkStep> next() {
    auto op = u8();
    if (!op) return std::nullopt;
    ChunkStep s{.op = static_cast<ChunkOp>(*op % 4)};
    switch (s.op) {
      case ChunkOp::kNext: {
        auto n = u8();
        if (!n) return std::nullopt;
        s.length = *n;
        return s;
      }
      case ChunkOp::kStart: {
        auto epoch = u8();
        auto total = u16();
        if (!total) return std::nullopt;
        s.epoch = *epoch;
        s.total = *total;
        return s;
      }
      case ChunkOp::kForge: {
        auto epoch = u8();
        auto offset = u16();
        auto total = u16();
        auto last = u8();
        auto n = u8();
        if (!n) return std::nullopt;
        s.epoch = *epoch;
        s.offset = *offset;
        s.total = *total;
        s.last = *last & 1;
        s.length = *n;
        return s;
      }
      case ChunkOp::kReset:
        return s;
    }
    return std::nullopt;
  }

 private:
  std::span<const uint8_t> in_;
};

// Writes a script (seed generator, regression tests).
class ChunkScriptWriter {
 public:
  explicit ChunkScriptWriter(uint16_t limit) { u16(limit); }

  ChunkScriptWriter& next(uint8_t n) {
    out_.push_back(static_cast<uint8_t>(ChunkOp::kNext));
    out_.push_back(n);
    return *this;
  }
  ChunkScriptWriter& start(uint8_t epoch, uint16_t total) {
    out_.push_back(static_cast<uint8_t>(ChunkOp::kStart));
    out_.push_back(epoch);
    u16(total);
    return *this;
  }
  ChunkScriptWriter& forge(uint8_t epoch, uint16_t offset, uint16_t total, bool last, uint8_t n) {
    out_.push_back(static_cast<uint8_t>(ChunkOp::kForge));
    out_.push_back(epoch);
    u16(offset);
    u16(total);
    out_.push_back(last ? 1 : 0);
    out_.push_back(n);
    return *this;
  }
  ChunkScriptWriter& reset() {
    out_.push_back(static_cast<uint8_t>(ChunkOp::kReset));
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return out_; }

 private:
  void u16(uint16_t v) {
    out_.push_back(static_cast<uint8_t>(v));
    out_.push_back(static_cast<uint8_t>(v >> 8));
  }
  std::vector<uint8_t> out_;
};

}  // namespace ftd::fuzz
