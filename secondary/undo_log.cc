#include "secondary/undo_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/file_util.h"
#include "common/hash.h"

namespace ftd {
namespace {

constexpr char kMagic[8] = {'F', 'T', 'U', 'N', 'D', 'O', '0', '2'};
// Logs up to this size keep their tmpfs pages when cleared: the next
// checkpoint's log overwrites them instead of allocating and zeroing new ones.
constexpr uint64_t kKeepBytes = 64ull << 20;

struct Header {
  char magic[8];
  uint64_t base_epoch;
  uint32_t page_size;
  uint32_t kind;
  uint64_t generation;  // new for every begin(): records of older logs do not verify
  uint64_t checksum;    // xxh3 of the fields above
};
static_assert(sizeof(Header) == 40);

// Records per read when rolling back (2 MiB of 4 KiB pages).
constexpr size_t kRecordsPerRead = 512;

uint64_t header_checksum(const Header& h) {
  return hash64(
      std::as_bytes(std::span(reinterpret_cast<const char*>(&h), offsetof(Header, checksum))));
}

uint64_t page_checksum(uint64_t generation, uint32_t page, const std::byte* contents, size_t size) {
  return XXH3_64bits_withSeed_dispatch(contents, size, generation * 0x9e3779b97f4a7c15ull + page);
}

}  // namespace

Result<UndoLog> UndoLog::open(const std::string& path, uint32_t page_size, uint64_t page_count) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
  UndoLog log(std::move(fd), path, page_size, page_count);
  log.file_bytes_ = static_cast<uint64_t>(st.st_size);
  // Unique across processes too: a log left by a dead daemon is another generation.
  std::random_device random;
  log.generation_ = (uint64_t{random()} << 32) ^ random();
  return log;
}

UndoLog::UndoLog(UniqueFd fd, std::string path, uint32_t page_size, uint64_t page_count)
    : fd_(std::move(fd)), path_(std::move(path)), page_size_(page_size), saved_(page_count) {}

static_assert(sizeof(UndoLog::RecordHead) == 16);

size_t UndoLog::record_size() const { return sizeof(RecordHead) + page_size_; }

Status UndoLog::begin(uint64_t base_epoch, UndoKind kind) {
  FTD_TRY(clear());
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.base_epoch = base_epoch;
  h.page_size = page_size_;
  h.kind = static_cast<uint32_t>(kind);
  h.generation = ++generation_;
  h.checksum = header_checksum(h);
  // One small write inside a page: a process dies before it or after it.
  FTD_TRY(pwrite_all(fd_.get(), std::as_bytes(std::span(&h, 1)), 0, path_));
  size_ = sizeof h;
  file_bytes_ = std::max(file_bytes_, size_);
  active_ = true;
  base_epoch_ = base_epoch;
  kind_ = kind;
  return ok();
}

Status UndoLog::save(std::span<const uint32_t> pages, std::span<const std::byte> ram) {
  if (!active_) return make_error(ErrorCode::kInternal, "undo log {} not begun", path_);
  // Staged in a buffer, then one write: gathering straight from the replica's
  // mapping with pwritev measured 20-40x slower here (bench/resync_bench).
  records_.clear();
  const size_t first_new = saved_pages_.size();
  for (uint32_t p : pages) {
    if (saved_[p]) continue;
    const std::byte* contents = ram.data() + size_t{p} * page_size_;
    RecordHead head{
        .page = p, .reserved = 0, .checksum = page_checksum(generation_, p, contents, page_size_)};
    const auto* h = reinterpret_cast<const std::byte*>(&head);
    records_.insert(records_.end(), h, h + sizeof head);
    records_.insert(records_.end(), contents, contents + page_size_);
    saved_[p] = true;
    saved_pages_.push_back(p);
  }
  if (records_.empty()) return ok();
  if (auto st = pwrite_all(fd_.get(), records_, size_, path_); !st) {
    // What did get written saves pages not overwritten yet: harmless to
    // restore, and the next save writes over it.
    for (size_t i = first_new; i < saved_pages_.size(); ++i) saved_[saved_pages_[i]] = false;
    saved_pages_.resize(first_new);
    return st;
  }
  size_ += records_.size();
  file_bytes_ = std::max(file_bytes_, size_);
  return ok();
}

Status UndoLog::clear() {
  for (uint32_t p : saved_pages_) saved_[p] = false;
  saved_pages_.clear();
  active_ = false;
  size_ = 0;
  // A small log keeps its pages for the next one; a resync's gives its memory back.
  if (file_bytes_ <= kKeepBytes) return ok();
  if (::ftruncate(fd_.get(), 0) != 0) return errno_error("truncate " + path_);
  file_bytes_ = 0;
  return ok();
}

Result<std::optional<UndoLog::Replayed>> UndoLog::roll_back(std::span<std::byte> ram) const {
  Header h{};
  const ssize_t got = ::pread(fd_.get(), &h, sizeof h, 0);
  if (got < 0) return errno_error("read " + path_);
  if (static_cast<size_t>(got) < sizeof h || std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 ||
      h.checksum != header_checksum(h) || h.page_size != page_size_ ||
      (h.kind != static_cast<uint32_t>(UndoKind::kApply) &&
       h.kind != static_cast<uint32_t>(UndoKind::kResync)))
    return std::nullopt;

  // One pass in big reads (no page faults on a mapping of a GiB-sized log).
  // Records are intact up to the first that does not verify: the torn tail,
  // or an older log's record in a file reused in place. A page saved twice
  // keeps its first, oldest contents.
  const size_t page_count = ram.size() / page_size_;
  std::vector<bool> restored(page_count);
  std::vector<std::byte> block(kRecordsPerRead * record_size());
  uint64_t pages = 0;
  for (uint64_t at = sizeof h;;) {
    ssize_t n;
    do n = ::pread(fd_.get(), block.data(), block.size(), static_cast<off_t>(at));
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno_error("read " + path_);
    const size_t whole = static_cast<size_t>(n) / record_size();
    for (size_t i = 0; i < whole; ++i) {
      RecordHead head;
      const std::byte* record = block.data() + i * record_size();
      std::memcpy(&head, record, sizeof head);
      const std::byte* contents = record + sizeof head;
      if (head.page >= page_count || head.reserved != 0 ||
          head.checksum != page_checksum(h.generation, head.page, contents, page_size_))
        return Replayed{
            .base_epoch = h.base_epoch, .kind = static_cast<UndoKind>(h.kind), .pages = pages};
      if (!restored[head.page]) {
        std::memcpy(ram.data() + size_t{head.page} * page_size_, contents, page_size_);
        restored[head.page] = true;
      }
      ++pages;
    }
    if (static_cast<size_t>(n) < block.size()) break;  // end of file
    at += static_cast<uint64_t>(n);
  }
  return Replayed{
      .base_epoch = h.base_epoch, .kind = static_cast<UndoKind>(h.kind), .pages = pages};
}

}  // namespace ftd
