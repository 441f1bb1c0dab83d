#include "secondary/undo_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/mapped_region.h"

namespace ftd {
namespace {

constexpr char kMagic[8] = {'F', 'T', 'U', 'N', 'D', 'O', '0', '1'};

struct Header {
  char magic[8];
  uint64_t base_epoch;
  uint32_t page_size;
  uint32_t kind;
  uint64_t checksum;  // xxh3 of the fields above
};
static_assert(sizeof(Header) == 32);

struct RecordHead {
  uint32_t page;
  uint32_t reserved;  // 0
  uint64_t checksum;  // xxh3 of the page contents, seeded with the page number
};
static_assert(sizeof(RecordHead) == 16);

uint64_t header_checksum(const Header& h) {
  return hash64(
      std::as_bytes(std::span(reinterpret_cast<const char*>(&h), offsetof(Header, checksum))));
}

uint64_t page_checksum(uint32_t page, const std::byte* contents, size_t size) {
  return XXH3_64bits_withSeed_dispatch(contents, size, page);
}

}  // namespace

Result<UndoLog> UndoLog::open(const std::string& path, uint32_t page_size, uint64_t page_count) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
  UndoLog log(std::move(fd), path, page_size, page_count);
  log.size_ = static_cast<uint64_t>(st.st_size);
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
  h.checksum = header_checksum(h);
  if (auto st = write_all(fd_.get(), std::as_bytes(std::span(&h, 1)), path_); !st) {
    (void)clear();
    return st;
  }
  size_ = sizeof h;
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
    RecordHead head{.page = p, .reserved = 0, .checksum = page_checksum(p, contents, page_size_)};
    const auto* h = reinterpret_cast<const std::byte*>(&head);
    records_.insert(records_.end(), h, h + sizeof head);
    records_.insert(records_.end(), contents, contents + page_size_);
    saved_[p] = true;
    saved_pages_.push_back(p);
  }
  if (records_.empty()) return ok();
  if (auto st = write_all(fd_.get(), records_, path_); !st) {
    // Cut a partial append off: the next save must follow the last whole record.
    if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0 ||
        ::lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET) < 0)
      active_ = false;  // cannot trust the tail any more; the caller fails the apply
    for (size_t i = first_new; i < saved_pages_.size(); ++i) saved_[saved_pages_[i]] = false;
    saved_pages_.resize(first_new);
    return st;
  }
  size_ += records_.size();
  return ok();
}

Status UndoLog::clear() {
  for (uint32_t p : saved_pages_) saved_[p] = false;
  saved_pages_.clear();
  active_ = false;
  if (size_ == 0) return ok();
  if (::ftruncate(fd_.get(), 0) != 0) return errno_error("truncate " + path_);
  if (::lseek(fd_.get(), 0, SEEK_SET) < 0) return errno_error("seek " + path_);
  size_ = 0;
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
        head.checksum != page_checksum(head.page, contents, page_size_))
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
