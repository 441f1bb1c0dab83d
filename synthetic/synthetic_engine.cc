#include "synthetic/synthetic_engine.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "common/hash.h"
#include "synthetic/mix.h"

namespace ftd {
namespace {

constexpr uint32_t kStateMagic = 0x53445446;  // "FTDS" little-endian
constexpr uint32_t kStateVersion = 1;
// magic, version, seed, writes_done, messages_emitted, xxh3 of the preceding bytes.
constexpr size_t kStateBodySize = 4 + 4 + 8 + 8 + 8;
constexpr size_t kStateSize = kStateBodySize + 8;

constexpr uint64_t mix(uint64_t x) { return synthetic_mix(x); }

uint64_t write_key(uint64_t seed, uint64_t i) { return mix(seed ^ mix(i + 0x9e3779b97f4a7c15ull)); }

uint64_t page_count(const SyntheticEngine::Config& c) { return c.memory_bytes / c.page_size; }

// The hot set: 10% of the pages (at least one), contiguous, placed by the seed.
struct HotSet {
  uint64_t first;
  uint64_t count;
};
HotSet hot_set(const SyntheticEngine::Config& c) {
  const uint64_t pages = page_count(c);
  const uint64_t count = std::max<uint64_t>(1, pages / 10);
  return {mix(c.seed ^ 0x686f74ull) % (pages - count + 1), count};
}

template <typename T>
void put_le(std::byte*& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) *out++ = static_cast<std::byte>(v >> (8 * i));
}
template <typename T>
T get_le(const std::byte*& in) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<T>(std::to_integer<uint8_t>(*in++)) << (8 * i);
  return v;
}

}  // namespace

Status SyntheticEngine::validate(const Config& c) {
  if (c.page_size < 8 || !std::has_single_bit(c.page_size))
    return make_error(ErrorCode::kInvalidArgument, "page_size {} must be a power of two >= 8",
                      c.page_size);
  if (c.memory_bytes == 0 || c.memory_bytes % c.page_size != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "memory_bytes {} must be a non-zero multiple of page_size {}", c.memory_bytes,
                      c.page_size);
  if (page_count(c) > (uint64_t{1} << 32))
    return make_error(ErrorCode::kInvalidArgument, "{} pages exceed 2^32 page indices",
                      page_count(c));
  if (c.bytes_per_write == 0 || c.bytes_per_write > c.page_size)
    return make_error(ErrorCode::kInvalidArgument, "bytes_per_write {} must be in 1..{}",
                      c.bytes_per_write, c.page_size);
  if (c.disk_bytes % SyntheticDisk::kSector != 0)
    return make_error(ErrorCode::kInvalidArgument, "disk_bytes {} must be a multiple of {}",
                      c.disk_bytes, SyntheticDisk::kSector);
  if (!(c.locality >= 0.0 && c.locality <= 1.0))
    return make_error(ErrorCode::kInvalidArgument, "locality {} must be in 0..1", c.locality);
  if (c.messages_per_sec > 0 && c.dirty_pages_per_sec == 0)
    return make_error(
        ErrorCode::kInvalidArgument,
        "messages_per_sec needs a finite dirty_pages_per_sec (messages follow writes)");
  if (c.messages_per_sec > c.dirty_pages_per_sec)
    return make_error(ErrorCode::kInvalidArgument,
                      "messages_per_sec {} exceeds dirty_pages_per_sec {} (one message per write "
                      "at most)",
                      c.messages_per_sec, c.dirty_pages_per_sec);
  return ok();
}

uint64_t SyntheticEngine::writes_per_message(const Config& c) {
  if (c.messages_per_sec == 0) return 0;
  // Rounded, so the emitted rate is as close as possible to the asked one.
  return std::max<uint64_t>(1,
                            (c.dirty_pages_per_sec + c.messages_per_sec / 2) / c.messages_per_sec);
}

uint64_t SyntheticEngine::messages_after(const Config& c, uint64_t writes) {
  const uint64_t k = writes_per_message(c);
  return k == 0 ? 0 : writes / k;
}

SyntheticEngine::WriteSpec SyntheticEngine::describe_write(const Config& c, uint64_t i) {
  const uint64_t key = write_key(c.seed, i);
  const uint64_t pages = page_count(c);
  const double u = static_cast<double>(mix(key + 1) >> 11) * 0x1.0p-53;  // [0, 1)
  const uint64_t r = mix(key + 2);
  uint64_t page;
  if (u < c.locality) {
    const HotSet hot = hot_set(c);
    page = hot.first + r % hot.count;
  } else {
    page = r % pages;
  }
  const size_t slots = (c.page_size - c.bytes_per_write) / 8 + 1;
  const size_t offset = static_cast<size_t>(mix(key + 3) % slots) * 8;
  return {static_cast<uint32_t>(page), offset, c.bytes_per_write};
}

void SyntheticEngine::apply_write(std::span<std::byte> memory, const Config& c, uint64_t i) {
  const WriteSpec w = describe_write(c, i);
  std::byte* dst = memory.data() + static_cast<size_t>(w.page) * c.page_size + w.offset;
  const uint64_t key = write_key(c.seed, i) + 16;
  size_t done = 0;
  for (uint64_t j = 0; done < w.length; ++j) {
    const uint64_t word = mix(key + j);
    const size_t n = std::min<size_t>(8, w.length - done);
    std::memcpy(dst + done, &word, n);
    done += n;
  }
}

Result<MappedRegion> SyntheticEngine::replay(const Config& config, uint64_t writes) {
  FTD_TRY(validate(config));
  FTD_ASSIGN_OR_RETURN(MappedRegion region, MappedRegion::anonymous(config.memory_bytes));
  for (uint64_t i = 0; i < writes; ++i) apply_write(region.bytes(), config, i);
  return region;
}

std::vector<std::byte> SyntheticEngine::encode_device_state(const DeviceState& s) {
  std::vector<std::byte> blob(kStateSize);
  std::byte* out = blob.data();
  put_le<uint32_t>(out, kStateMagic);
  put_le<uint32_t>(out, kStateVersion);
  put_le<uint64_t>(out, s.seed);
  put_le<uint64_t>(out, s.writes_done);
  put_le<uint64_t>(out, s.messages_emitted);
  put_le<uint64_t>(out, hash64({blob.data(), kStateBodySize}));
  return blob;
}

Result<SyntheticEngine::DeviceState> SyntheticEngine::decode_device_state(
    std::span<const std::byte> blob) {
  if (blob.size() != kStateSize)
    return make_error(ErrorCode::kCorrupt, "synthetic device state: {} bytes, expected {}",
                      blob.size(), kStateSize);
  const std::byte* in = blob.data();
  const auto magic = get_le<uint32_t>(in);
  const auto version = get_le<uint32_t>(in);
  DeviceState s;
  s.seed = get_le<uint64_t>(in);
  s.writes_done = get_le<uint64_t>(in);
  s.messages_emitted = get_le<uint64_t>(in);
  const auto checksum = get_le<uint64_t>(in);
  if (magic != kStateMagic)
    return make_error(ErrorCode::kCorrupt, "synthetic device state: bad magic {:#010x}", magic);
  if (version != kStateVersion)
    return make_error(ErrorCode::kCorrupt, "synthetic device state: unsupported version {}",
                      version);
  if (checksum != hash64(blob.first(kStateBodySize)))
    return make_error(ErrorCode::kCorrupt, "synthetic device state: checksum mismatch");
  if (s.messages_emitted > s.writes_done)
    return make_error(ErrorCode::kCorrupt,
                      "synthetic device state: {} messages after only {} writes",
                      s.messages_emitted, s.writes_done);
  return s;
}

Result<std::unique_ptr<SyntheticEngine>> SyntheticEngine::create(const Config& config,
                                                                 MessageSink sink) {
  FTD_TRY(validate(config));
  FTD_ASSIGN_OR_RETURN(MappedRegion region, MappedRegion::anonymous(config.memory_bytes));
  if (config.prefault) {
    // Zeros keep the content (and so determinism) unchanged. A user-space
    // store rather than MADV_POPULATE_WRITE: on shadow-paging hypervisors
    // (this sandbox) the first user access per page still exits after populate.
    std::memset(region.data(), 0, region.size());
  }
  auto engine =
      std::make_unique<SyntheticEngine>(PrivateTag{}, config, std::move(region), std::move(sink));
  if (engine->disk_.size() != config.disk_bytes)
    return make_error(ErrorCode::kResourceExhausted, "cannot map a {}-byte synthetic disk",
                      config.disk_bytes);
  return engine;
}

SyntheticEngine::SyntheticEngine(PrivateTag, const Config& config, MappedRegion region,
                                 MessageSink sink)
    : config_(config),
      writes_per_message_(writes_per_message(config)),
      region_(std::move(region)),
      sink_(std::move(sink)),
      dirty_bits_((page_count(config) + 63) / 64) {
  // Before the writer starts; a failed mapping leaves the engine diskless and
  // create() reports it.
  if (config.disk_bytes > 0)
    if (auto disk = MappedRegion::anonymous(config.disk_bytes)) disk_ = std::move(*disk);
  writer_ = std::thread([this] { writer_loop(); });
}

SyntheticEngine::~SyntheticEngine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

bool SyntheticEngine::paused() const {
  std::lock_guard lock(mu_);
  // resume() returns before the writer thread wakes and clears parked_: a
  // resumed guest is no longer paused even if its writer has not run yet.
  return parked_ && pause_requested_;
}

Status SyntheticEngine::pause() {
  std::unique_lock lock(mu_);
  pause_requested_ = true;
  cv_.notify_all();  // the writer may be sleeping between batches
  cv_.wait(lock, [this] { return parked_; });
  return ok();
}

Status SyntheticEngine::resume() {
  {
    std::lock_guard lock(mu_);
    pause_requested_ = false;
  }
  cv_.notify_all();
  return ok();
}

bool SyntheticEngine::park_if_paused() {
  if (!pause_requested_.load(std::memory_order_acquire)) return !stopping_.load();
  std::unique_lock lock(mu_);
  parked_ = true;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !pause_requested_ || stopping_; });
  parked_ = false;
  return !stopping_;
}

void SyntheticEngine::do_write(uint64_t i) {
  apply_write(region_.bytes(), config_, i);
  const uint32_t page = describe_write(config_, i).page;
  dirty_bits_[page / 64].fetch_or(uint64_t{1} << (page % 64), std::memory_order_relaxed);
  if (config_.disk_bytes > 0 && (i + 1) % SyntheticDisk::kWritesPerDiskWrite == 0) {
    DiskWrite w = SyntheticDisk::describe(config_.seed, config_.disk_bytes,
                                          SyntheticDisk::writes_after(i + 1) - 1);
    SyntheticDisk::apply(disk_.bytes(), w);
    disk_writes_.push_back(std::move(w));
  }
  writes_done_.store(i + 1, std::memory_order_release);
  if (writes_per_message_ != 0 && (i + 1) % writes_per_message_ == 0 && sink_)
    sink_((i + 1) / writes_per_message_ - 1);
}

void SyntheticEngine::writer_loop() {
  using Clock = std::chrono::steady_clock;
  const uint64_t rate = config_.dirty_pages_per_sec;
  // Backlog kept after a stall (CPU contention): 10 ms worth. Beyond that the
  // writer drops the debt rather than bursting, like a guest that ran slower.
  const uint64_t max_backlog = std::max<uint64_t>(1, rate / 100);
  uint64_t next = writes_done();
  Clock::time_point base_time = Clock::now();
  uint64_t base_writes = next;
  bool was_parked = false;

  for (;;) {
    if (pause_requested_.load(std::memory_order_acquire)) was_parked = true;
    if (!park_if_paused()) return;
    if (was_parked) {  // time spent paused does not count towards the rate
      base_time = Clock::now();
      base_writes = next;
      was_parked = false;
    }
    uint64_t target;
    if (rate == 0) {
      target = next + 256;
    } else {
      const double elapsed = std::chrono::duration<double>(Clock::now() - base_time).count();
      target = base_writes + static_cast<uint64_t>(elapsed * static_cast<double>(rate));
      if (target > next + max_backlog) {
        target = next + max_backlog;
        base_time = Clock::now();
        base_writes = target;
      }
    }
    while (next < target && !pause_requested_.load(std::memory_order_acquire)) do_write(next++);
    if (rate != 0 && next >= target) {
      // Batches per millisecond; a pause request or shutdown cuts the sleep short.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(1),
                   [this] { return pause_requested_.load() || stopping_.load(); });
    }
  }
}

Result<std::vector<std::byte>> SyntheticEngine::capture_device_state() {
  {
    std::lock_guard lock(mu_);
    if (!parked_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "synthetic engine: capture_device_state while running");
  }
  const uint64_t writes = writes_done();
  return encode_device_state({config_.seed, writes, messages_after(config_, writes)});
}

Result<DiskEpoch> SyntheticEngine::take_disk_writes() {
  {
    std::lock_guard lock(mu_);  // parked_: the writer no longer touches disk_writes_
    if (!parked_)
      return make_error(ErrorCode::kFailedPrecondition,
                        "synthetic engine: take_disk_writes while running");
  }
  DiskEpoch epoch{.disk_size = config_.disk_bytes, .complete = true};
  if (config_.disk_bytes > 0) epoch.writes = std::exchange(disk_writes_, {});
  return epoch;
}

std::optional<std::vector<uint32_t>> SyntheticEngine::take_dirty_log() {
  std::vector<uint32_t> pages;
  for (size_t w = 0; w < dirty_bits_.size(); ++w) {
    uint64_t bits = dirty_bits_[w].exchange(0, std::memory_order_acq_rel);
    while (bits != 0) {
      pages.push_back(static_cast<uint32_t>(w * 64 + std::countr_zero(bits)));
      bits &= bits - 1;
    }
  }
  return pages;
}

}  // namespace ftd
