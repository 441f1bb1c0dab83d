// Per-page undo log of a replica (<dir>/<vm>.undo): before pages of the
// replica are overwritten, their old contents are appended here, so a replica
// found half-changed (the daemon died mid-apply or mid-resync) can be put back
// exactly to the epoch the log names.
//
// Threat model: the replica lives on tmpfs and what fails is the process
// (SIGKILL, crash), not the host. Every write(2) and every store into the
// shared mapping is in the page cache once it returns, so the order of the
// calls is the order a later process sees; nothing is fsync'ed (tmpfs has
// nowhere to sync to). A power loss takes the tmpfs replica with it anyway.
//
// A record is written completely before the page it saves is touched, so a
// torn last record (death inside write(2)) names a page that never changed:
// roll_back() stops there. Every record's checksum includes its log's
// generation, so a cleared log's file is overwritten in place (no tmpfs pages
// allocated per checkpoint) without its old records ever verifying again.
// Format: docs/formats.md.
//
// Not thread-safe: owned by ReplicaStore, whose owner serialises it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

// What the log guards: one checkpoint's apply, or a whole resync (each page
// saved the first time the resync overwrites it).
enum class UndoKind : uint32_t { kApply = 1, kResync = 2 };

class UndoLog {
 public:
  // Opens (creating if needed) the log file; reads nothing.
  static Result<UndoLog> open(const std::string& path, uint32_t page_size, uint64_t page_count);

  UndoLog() = default;  // no file: inactive until open()
  UndoLog(UndoLog&&) = default;
  UndoLog& operator=(UndoLog&&) = default;

  // Starts a log that rolls back to `base_epoch`, dropping any previous one.
  Status begin(uint64_t base_epoch, UndoKind kind);
  // Appends the current contents of those `pages` of `ram` this log has not
  // saved yet. On error the log is as it was (a partial append is cut off).
  Status save(std::span<const uint32_t> pages, std::span<const std::byte> ram);
  // Empties the log: the change it guarded is committed or undone.
  Status clear();

  bool active() const { return active_; }
  uint64_t base_epoch() const { return base_epoch_; }
  UndoKind kind() const { return kind_; }
  uint64_t bytes() const { return size_; }             // of the current log (0 when inactive)
  uint64_t file_bytes() const { return file_bytes_; }  // on tmpfs: kept after a small log

  // A log on disk (possibly left by a dead process), played back.
  struct Replayed {
    uint64_t base_epoch = 0;
    UndoKind kind = UndoKind::kApply;
    uint64_t pages = 0;
  };
  // Writes every saved page back into `ram` (a page saved twice: its oldest
  // contents). nullopt: no valid log (missing, empty, foreign header); `ram`
  // is then untouched.
  Result<std::optional<Replayed>> roll_back(std::span<std::byte> ram) const;

 public:
  // On disk before each saved page.
  struct RecordHead {
    uint32_t page;
    uint32_t reserved;  // 0
    uint64_t checksum;  // xxh3 of the page contents, seeded with generation and page number
  };

 private:
  UndoLog(UniqueFd fd, std::string path, uint32_t page_size, uint64_t page_count);
  size_t record_size() const;

  UniqueFd fd_;
  std::string path_;
  uint32_t page_size_ = 0;
  uint64_t size_ = 0;        // end of the current log
  uint64_t file_bytes_ = 0;  // the file's size: a cleared small log keeps its pages
  uint64_t generation_ = 0;  // of the current log; the next begin() takes the next one
  bool active_ = false;
  uint64_t base_epoch_ = 0;
  UndoKind kind_ = UndoKind::kApply;
  std::vector<bool> saved_;            // pages already in the log
  std::vector<uint32_t> saved_pages_;  // the same, to clear saved_ in O(saved)
  std::vector<std::byte> records_;     // reused append buffer
};

}  // namespace ftd
