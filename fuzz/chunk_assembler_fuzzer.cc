// The secondary's stream assembly (checkpoint/chunking.h ChunkAssembler) fed
// a chunk sequence written by the input (chunk_script.h). Oracle: whatever it
// hands on is exactly the chunks it accepted since it last started afresh,
// contiguous from offset 0, of one epoch and one total size, `last` only on
// the final one, within the limit; while incomplete it reports what it holds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "checkpoint/chunking.h"
#include "fuzz/chunk_script.h"
#include "fuzz/fuzz_check.h"

namespace ftd::fuzz {
namespace {

struct Honest {  // the checkpoint kNext continues
  uint64_t epoch = 0;
  uint64_t offset = 0;
  uint64_t total = 0;
};

void check_complete(std::span<const std::byte> out, const std::vector<ChunkView>& run,
                    const std::vector<std::byte>& expected, uint64_t limit) {
  FUZZ_CHECK(!run.empty());
  FUZZ_CHECK(std::equal(out.begin(), out.end(), expected.begin(), expected.end()));
  FUZZ_CHECK(out.size() == run.front().total_size && out.size() <= limit);
  uint64_t offset = 0;
  for (size_t i = 0; i < run.size(); ++i) {
    FUZZ_CHECK(run[i].epoch == run.front().epoch);
    FUZZ_CHECK(run[i].total_size == run.front().total_size);
    FUZZ_CHECK(run[i].offset == offset);
    FUZZ_CHECK(run[i].last == (i + 1 == run.size()));
    offset += run[i].data.size();
  }
}

}  // namespace
}  // namespace ftd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftd;
  using namespace ftd::fuzz;
  ChunkScriptReader script({data, size});
  const auto limit = script.u16();
  if (!limit) return 0;
  ChunkAssembler assembler(*limit);
  Honest honest;
  uint64_t fed = 0;  // payload bytes generated so far (chunk_payload_byte's index)
  // Chunks accepted since the assembler last started afresh; their payloads are
  // kept alive in `payloads` because ChunkView only points at them.
  std::vector<ChunkView> run;
  std::vector<std::vector<std::byte>> payloads;
  std::vector<std::byte> expected;
  auto start_afresh = [&] {
    run.clear();
    payloads.clear();
    expected.clear();
  };

  while (auto step = script.next()) {
    ChunkView c;
    size_t n = step->length;
    switch (step->op) {
      case ChunkOp::kStart:
        honest = {.epoch = step->epoch, .offset = 0, .total = step->total};
        continue;
      case ChunkOp::kReset:
        assembler.reset();
        start_afresh();
        FUZZ_CHECK(!assembler.partial());
        continue;
      case ChunkOp::kNext:
        n = std::min<uint64_t>(n, honest.total - std::min(honest.offset, honest.total));
        c = {.epoch = honest.epoch,
             .offset = honest.offset,
             .total_size = honest.total,
             .last = honest.offset + n == honest.total};
        honest.offset += n;
        break;
      case ChunkOp::kForge:
        c = {.epoch = step->epoch,
             .offset = step->offset,
             .total_size = step->total,
             .last = step->last};
        break;
    }
    auto& payload = payloads.emplace_back(n);
    for (auto& b : payload) b = chunk_payload_byte(fed++);
    c.data = payload;

    auto r = assembler.add(c);
    if (!r) {
      start_afresh();
      FUZZ_CHECK(!assembler.partial());
      continue;
    }
    run.push_back(c);
    expected.insert(expected.end(), payload.begin(), payload.end());
    if (!*r) {
      FUZZ_CHECK(assembler.partial());
      FUZZ_CHECK(assembler.received_bytes() == expected.size());
      FUZZ_CHECK(assembler.epoch() == run.front().epoch);
      continue;
    }
    check_complete(**r, run, expected, *limit);
    FUZZ_CHECK(!assembler.partial());
    start_afresh();
  }
  return 0;
}
