#include "secondary/disk_undo_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "checkpoint/codec.h"
#include "common/file_util.h"
#include "common/hash.h"

namespace ftd {
namespace {

constexpr char kMagic[8] = {'F', 'T', 'D', 'U', 'N', 'D', 'O', '1'};

constexpr uint64_t kKeepBytes = 64ull << 20;

struct Header {
  char magic[8];
  uint64_t base_epoch;
  uint64_t epoch;
  uint64_t base_last_seq;
  uint32_t base_complete;
  uint32_t reserved;
  uint64_t generation;
  uint64_t checksum;  // xxh3 of the fields above
};
static_assert(sizeof(Header) == 56);

struct RecordHead {
  uint64_t offset;
  uint32_t length;
  uint32_t zeros;     // 1: the range held zeros, no bytes follow
  uint64_t checksum;  // of offset, length, zeros and the bytes, seeded with the generation
};
static_assert(sizeof(RecordHead) == 24);

uint64_t header_checksum(const Header& h) {
  return hash64(
      std::as_bytes(std::span(reinterpret_cast<const char*>(&h), offsetof(Header, checksum))));
}

uint64_t record_checksum(uint64_t generation, const RecordHead& r,
                         std::span<const std::byte> data) {
  const uint64_t seed = generation * 0x9e3779b97f4a7c15ull ^ r.offset ^ (uint64_t{r.length} << 32) ^
                        (uint64_t{r.zeros} << 63);
  return XXH3_64bits_withSeed_dispatch(data.data(), data.size(), seed);
}

bool all_zero(std::span<const std::byte> b) {
  return std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{0}; });
}

}  // namespace

Result<DiskUndoLog> DiskUndoLog::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + path);
  DiskUndoLog log(std::move(fd), path);
  std::random_device random;  // unique across processes too
  log.generation_ = (uint64_t{random()} << 32) ^ random();
  return log;
}

Status DiskUndoLog::begin(uint64_t base_epoch, uint64_t epoch, DiskReplicaState base) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.base_epoch = base_epoch;
  h.epoch = epoch;
  h.base_last_seq = base.last_seq;
  h.base_complete = base.complete ? 1 : 0;
  h.generation = ++generation_;
  h.checksum = header_checksum(h);
  FTD_TRY(pwrite_all(fd_.get(), std::as_bytes(std::span(&h, 1)), 0, path_));
  size_ = sizeof h;
  return ok();
}

Status DiskUndoLog::save(std::span<const DiskWrite> writes, const ReplicaDisk& disk) {
  if (size_ == 0) return make_error(ErrorCode::kInternal, "disk undo log {} not begun", path_);
  std::vector<std::byte> old;
  for (const DiskWrite& w : writes) {
    old.resize(w.length);
    FTD_TRY(disk.read(w.offset, old));
    RecordHead r{.offset = w.offset, .length = w.length, .zeros = all_zero(old) ? 1u : 0u};
    const std::span<const std::byte> data =
        r.zeros ? std::span<const std::byte>{} : std::span<const std::byte>(old);
    r.checksum = record_checksum(generation_, r, data);
    buffer_.clear();
    const auto* head = reinterpret_cast<const std::byte*>(&r);
    buffer_.insert(buffer_.end(), head, head + sizeof r);
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    FTD_TRY(pwrite_all(fd_.get(), buffer_, size_, path_));
    size_ += buffer_.size();
  }
  return ok();
}

Status DiskUndoLog::clear() {
  if (size_ == 0) return ok();
  // Zero the magic (one small write): the file can never be played back again.
  const std::byte none[sizeof kMagic] = {};
  FTD_TRY(pwrite_all(fd_.get(), none, 0, path_));
  // A small log keeps its tmpfs pages for the next checkpoint; a big one
  // gives its memory back.
  const bool big = size_ > kKeepBytes;
  size_ = 0;
  if (big && ::ftruncate(fd_.get(), 0) != 0) return errno_error("truncate " + path_);
  return ok();
}

Result<std::optional<DiskUndoLog::Replayed>> DiskUndoLog::roll_back(ReplicaDisk& disk) const {
  Header h{};
  FTD_ASSIGN_OR_RETURN(size_t got,
                       pread_all(fd_.get(), std::as_writable_bytes(std::span(&h, 1)), 0, path_));
  if (got < sizeof h || std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 ||
      h.checksum != header_checksum(h))
    return std::nullopt;
  Replayed out{.base_epoch = h.base_epoch,
               .epoch = h.epoch,
               .base = {.last_seq = h.base_last_seq, .complete = h.base_complete != 0}};
  // Every saved range holds contents from before the change began, so the
  // order of the restores does not matter; the first record that does not
  // verify is the torn tail (its range was never written).
  std::vector<std::byte> data;
  for (uint64_t at = sizeof h;;) {
    RecordHead r{};
    FTD_ASSIGN_OR_RETURN(size_t n,
                         pread_all(fd_.get(), std::as_writable_bytes(std::span(&r, 1)), at, path_));
    if (n < sizeof r || r.length == 0 || r.length > kMaxDiskWriteLength || r.zeros > 1 ||
        r.offset > disk.size() || r.length > disk.size() - r.offset)
      break;
    data.resize(r.zeros ? 0 : r.length);
    FTD_ASSIGN_OR_RETURN(size_t m, pread_all(fd_.get(), data, at + sizeof r, path_));
    if (m < data.size() || r.checksum != record_checksum(h.generation, r, data)) break;
    FTD_TRY(disk.restore(r.offset, r.length, data));
    ++out.ranges;
    at += sizeof r + data.size();
  }
  return out;
}

}  // namespace ftd
