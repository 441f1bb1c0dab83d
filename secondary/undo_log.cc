#include "secondary/undo_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/hash.h"
#include "common/mapped_region.h"

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

struct RecordHead {
  uint32_t page;
  uint32_t reserved;  // 0
  uint64_t checksum;  // xxh3 of the page contents, seeded with generation and page number
};
static_assert(sizeof(RecordHead) == 16);

uint64_t header_checksum(const Header& h) {
  return hash64(
      std::as_bytes(std::span(reinterpret_cast<const char*>(&h), offsetof(Header, checksum))));
}

uint64_t page_checksum(uint64_t generation, uint32_t page, const std::byte* contents, size_t size) {
  return XXH3_64bits_withSeed_dispatch(contents, size, generation * 0x9e3779b97f4a7c15ull + page);
}

Status pwrite_all(int fd, std::span<const std::byte> data, uint64_t offset,
                  const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return ok();
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
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return errno_error("stat " + path_);
  const auto file_size = static_cast<size_t>(st.st_size);
  if (file_size < sizeof(Header)) return std::nullopt;
  FTD_ASSIGN_OR_RETURN(MappedRegion file, MappedRegion::map_fd(fd_.get(), file_size, false));
  Header h;
  std::memcpy(&h, file.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.checksum != header_checksum(h) ||
      h.page_size != page_size_ ||
      (h.kind != static_cast<uint32_t>(UndoKind::kApply) &&
       h.kind != static_cast<uint32_t>(UndoKind::kResync)))
    return std::nullopt;

  // Whole, intact records only; the first bad one is the torn tail.
  std::vector<size_t> records;
  const size_t page_count = ram.size() / page_size_;
  for (size_t at = sizeof h; at + record_size() <= file_size; at += record_size()) {
    RecordHead head;
    std::memcpy(&head, file.data() + at, sizeof head);
    const std::byte* contents = file.data() + at + sizeof head;
    if (head.page >= page_count || head.reserved != 0 ||
        head.checksum != page_checksum(h.generation, head.page, contents, page_size_))
      break;
    records.push_back(at);
  }
  // Newest first: if a page was saved twice, its oldest contents win.
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    RecordHead head;
    std::memcpy(&head, file.data() + *it, sizeof head);
    std::memcpy(ram.data() + size_t{head.page} * page_size_, file.data() + *it + sizeof head,
                page_size_);
  }
  return Replayed{
      .base_epoch = h.base_epoch, .kind = static_cast<UndoKind>(h.kind), .pages = records.size()};
}

}  // namespace ftd
