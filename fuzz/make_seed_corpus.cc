// Writes the seed corpus (fuzz/corpus/<target>/) from the real encoders:
// checkpoints from encode_checkpoint(), frame streams from
// append_encoded_frame(), chunk scripts for honest and broken streams, and
// the QMP lines QEMU 7.2 sends. Rerun after a format change:
//   ninja -C build-fuzz fuzz_seed_corpus && build-fuzz/fuzz/fuzz_seed_corpus fuzz/corpus
// Deterministic: the same code writes the same files.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/codec.h"
#include "fuzz/checkpoint_memory.h"
#include "fuzz/chunk_script.h"
#include "net/frame_stream.h"

namespace ftd::fuzz {
namespace {

namespace fs = std::filesystem;

void write_seed(const fs::path& dir, const std::string& name, std::span<const std::byte> bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}
void write_seed(const fs::path& dir, const std::string& name, std::span<const uint8_t> bytes) {
  write_seed(dir, name, std::as_bytes(bytes));
}
void write_seed(const fs::path& dir, const std::string& name, std::string_view text) {
  write_seed(dir, name, std::as_bytes(std::span(text.data(), text.size())));
}

// Pages that compress (runs) with a little noise, so lz4 and zstd both win.
std::vector<std::byte> page_contents(size_t bytes, uint32_t seed) {
  std::vector<std::byte> v(bytes);
  for (size_t i = 0; i < bytes; ++i)
    v[i] = static_cast<std::byte>(i % 97 == 0 ? (i * seed) >> 3 : (i / 64) + seed);
  return v;
}

void checkpoint_seeds(const fs::path& dir) {
  const auto memory = checkpoint_memory();
  struct Case {
    std::string name;
    uint32_t page_size;
    std::vector<uint32_t> indices;
    bool xor_delta;
    uint8_t flags;
    CompressionPolicy policy;
    size_t device_bytes;
    uint32_t disk_writes = 0;  // > 0: a disk section with that many records
    unsigned segments = 1;     // > 1: kLz4Segments with that many blocks
  };
  const std::vector<Case> cases = {
      {"none-256", 256, {0, 3, 200}, false, 0, CompressionPolicy::kNone, 40},
      {"lz4-xor-256", 256, {1, 2, 5, 255}, true, 0, CompressionPolicy::kLz4, 64},
      {"zstd-xor-4k", 4096, {0, 7, 15}, true, 0, CompressionPolicy::kZstd, 300},
      {"lz4-4k", 4096, {2, 9}, false, 0, CompressionPolicy::kLz4, 0},
      {"sync-chunk-zstd",
       256,
       {10, 11, 12, 13},
       false,
       kFlagSyncChunk,
       CompressionPolicy::kZstd,
       0},
      {"device-only-auto", 4096, {}, false, 0, CompressionPolicy::kAuto, 500},
      {"empty", 4096, {}, false, 0, CompressionPolicy::kNone, 0},
      {"disk-lz4", 256, {4, 8}, false, 0, CompressionPolicy::kLz4, 32, 4},
      {"disk-none", 4096, {}, false, 0, CompressionPolicy::kNone, 16, 2},
      {"disk-zstd-xor", 256, {1, 100}, true, 0, CompressionPolicy::kZstd, 24, 3},
      {"lz4-segments-xor", 256, {1, 2, 5, 40, 41, 255}, true, 0, CompressionPolicy::kLz4, 64, 0, 3},
      {"lz4-segments-disk", 4096, {3, 4, 12}, false, 0, CompressionPolicy::kLz4, 100, 2, 2},
  };
  uint64_t epoch = 1;
  for (const auto& c : cases) {
    const auto pages =
        page_contents(c.indices.size() * c.page_size, c.page_size + c.indices.size());
    std::vector<std::byte> base;  // the delta's base: what the fuzzer's memory holds there
    for (uint32_t p : c.indices) {
      auto old = memory.subspan(size_t{p} * c.page_size, c.page_size);
      base.insert(base.end(), old.begin(), old.end());
    }
    const auto device = page_contents(c.device_bytes, 7);
    CheckpointInput in{
        .epoch = epoch + 1,
        .base_epoch = epoch,
        .flags = c.flags,
        .page_size = c.page_size,
        .page_indices = c.indices,
        .pages = pages,
        .base_pages = c.xor_delta ? std::span<const std::byte>(base) : std::span<const std::byte>{},
        .device_state = device};
    // Disk writes alternate data and zeroes, seqs contiguous from 10.
    DiskEpoch disk{.disk_size = 1 << 16, .complete = c.disk_writes % 2 == 0};
    for (uint32_t i = 0; i < c.disk_writes; ++i) {
      DiskWrite w{.seq = 10 + i, .offset = i * 4096ull, .length = 512 + i * 100};
      if (i % 2 == 1) {
        w.kind = DiskWrite::Kind::kZeroes;
      } else {
        const auto bytes = page_contents(w.length, 11 + i);
        w.data.resize(w.length);
        std::copy(bytes.begin(), bytes.end(), w.data.begin());
      }
      disk.writes.push_back(std::move(w));
    }
    if (c.disk_writes > 0) in.disk = &disk;
    // Segmented lz4 (kLz4Segments) only from a real multi-way encoder: these
    // seeds are far below kMinSegmentedBytes, so the threshold is lowered.
    RangeWorkers workers(c.segments);
    ByteBuffer encoded_buffer;
    EncodeScratch scratch;
    auto st = encode_checkpoint(in, c.policy, encoded_buffer, scratch, &workers, 0);
    const std::vector<std::byte> encoded(encoded_buffer.begin(), encoded_buffer.end());
    if (!st) {
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), st.error().to_string().c_str());
      std::exit(1);
    }
    if (auto d = decode_checkpoint(encoded, memory); !d) {  // a seed the decoder refuses is no seed
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), d.error().to_string().c_str());
      std::exit(1);
    }
    write_seed(dir, c.name, encoded);
    ++epoch;
  }
}

void chunk_seeds(const fs::path& dir) {
  write_seed(dir, "one-checkpoint",
             ChunkScriptWriter(4096).start(1, 700).next(255).next(255).next(190).bytes());
  write_seed(
      dir, "two-in-a-row",
      ChunkScriptWriter(4096).start(1, 300).next(200).next(100).start(2, 10).next(10).bytes());
  write_seed(dir, "empty-checkpoint", ChunkScriptWriter(4096).start(3, 0).next(0).bytes());
  write_seed(
      dir, "over-limit-then-ok",
      ChunkScriptWriter(512).start(4, 600).next(255).start(5, 500).next(250).next(250).bytes());
  write_seed(dir, "broken-then-restart",
             ChunkScriptWriter(4096)
                 .start(6, 400)
                 .next(100)
                 .forge(7, 100, 400, false, 50)  // another epoch mid-stream
                 .start(8, 100)
                 .next(60)
                 .reset()
                 .start(9, 100)
                 .next(100)
                 .bytes());
  write_seed(
      dir, "forged-overlap",
      ChunkScriptWriter(4096).forge(1, 0, 300, false, 200).forge(1, 150, 300, true, 150).bytes());
}

void qmp_seeds(const fs::path& dir) {
  write_seed(
      dir, "greeting",
      R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u5"}, "capabilities": ["oob"]}})"
      "\r\n");
  write_seed(dir, "return-empty", "{\"return\": {}, \"id\": 1}\r\n");
  write_seed(dir, "return-status",
             "{\"return\": {\"status\": \"paused\", \"singlestep\": false, \"running\": false}, "
             "\"id\": 1}\r\n");
  write_seed(dir, "return-migrate",
             "{\"return\": {\"status\": \"completed\", \"setup-time\": 0, \"downtime\": 5, "
             "\"total-time\": 12, \"ram\": {\"total\": 134217728, \"transferred\": 0}}, "
             "\"id\": 1}\r\n");
  write_seed(dir, "error",
             "{\"id\": 1, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command foo "
             "has not been found\"}}\r\n");
  write_seed(dir, "events",
             "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 1234}, \"event\": "
             "\"STOP\"}\r\n"
             "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 2345}, \"event\": "
             "\"MIGRATION\", \"data\": {\"status\": \"active\"}}\r\n"
             "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 3456}, \"event\": "
             "\"RESUME\"}\r\n");
  write_seed(dir, "event-then-reply-split",
             "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}, \"timestamp\": "
             "{\"seconds\": 1, \"microseconds\": 2}}\r\n{\"return\": {\"status\": \"running\"}, "
             "\"id\": 2}\r\n{\"return\": {}, \"id\": 1}\r\n{\"retu");
}

void frame_seeds(const fs::path& dir) {
  auto stream_of = [](std::initializer_list<size_t> sizes) {
    std::vector<uint8_t> out;
    uint8_t fill = 1;
    for (size_t n : sizes) {
      std::vector<uint8_t> frame(n);
      for (auto& b : frame) b = fill++;
      if (!net::append_encoded_frame(frame, out)) std::exit(1);
    }
    return out;
  };
  write_seed(dir, "one-arp", stream_of({42}));
  write_seed(dir, "mixed", stream_of({60, 1514, 1, 98}));
  write_seed(dir, "jumbo", stream_of({9014}));
  auto partial = stream_of({60, 200});
  partial.resize(partial.size() - 50);  // a frame still arriving
  write_seed(dir, "partial-tail", partial);
}

}  // namespace
}  // namespace ftd::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir, e.g. fuzz/corpus>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  ftd::fuzz::checkpoint_seeds(root / "checkpoint_decode");
  ftd::fuzz::chunk_seeds(root / "chunk_assembler");
  ftd::fuzz::qmp_seeds(root / "qmp_message");
  ftd::fuzz::frame_seeds(root / "frame_stream");
  return 0;
}
