// The replica's commit record (<dir>/<vm>.meta): one line, replaced
// atomically, that says which epoch the RAM file and the device state hold and
// whether a change was under way. ReplicaStore writes it before and after
// every change; at open it decides between keep, roll back and roll forward.
//
//   clean <E> <memory_bytes> <page_size>         RAM and device state are epoch E
//   kept <E> <memory_bytes> <page_size>          same, but a resync from another
//                                                 primary was undone: no primary
//                                                 may send deltas on E (Welcome 0)
//   resync <B> <memory_bytes> <page_size>        sync chunks are overwriting the RAM;
//                                                 the undo log restores epoch B
//   applying <E> <memory_bytes> <page_size> <B>  checkpoint E is being copied in;
//                                                 the undo log restores epoch B
//   running <E> <memory_bytes> <page_size>       failed over at epoch E: a guest runs
//                                                 on the image, nobody's replica (epoch 0)
//
// A replica with a disk appends ` disk <disk_bytes> <last_seq> <complete 0|1>`
// to every line: the disk's state at the epoch the line names (for
// `applying`: at E; the disk undo log keeps B's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"

namespace ftd {

struct ReplicaMeta {
  enum class State { kClean, kKept, kResync, kApplying, kRunning };
  State state = State::kClean;
  uint64_t epoch = 0;  // kResync: the epoch the undo log restores
  uint64_t memory_bytes = 0;
  uint32_t page_size = 0;
  uint64_t base_epoch = 0;  // kApplying: the epoch the undo log restores
  uint64_t disk_bytes = 0;  // 0: no replica disk
  uint64_t disk_last_seq = 0;
  bool disk_complete = false;

  // nullopt for a missing file or anything malformed.
  static std::optional<ReplicaMeta> read(const std::string& path);
  Status write(const std::string& path) const;
  std::string to_string() const;
};

}  // namespace ftd
