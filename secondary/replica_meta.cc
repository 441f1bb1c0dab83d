#include "secondary/replica_meta.h"

#include <fstream>
#include <span>

#include "common/file_util.h"

namespace ftd {
namespace {

const char* state_word(ReplicaMeta::State s) {
  switch (s) {
    case ReplicaMeta::State::kClean:
      return "clean";
    case ReplicaMeta::State::kKept:
      return "kept";
    case ReplicaMeta::State::kResync:
      return "resync";
    case ReplicaMeta::State::kApplying:
      return "applying";
    case ReplicaMeta::State::kRunning:
      return "running";
  }
  return "?";
}

}  // namespace

std::optional<ReplicaMeta> ReplicaMeta::read(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  ReplicaMeta m;
  if (!(in >> word >> m.epoch >> m.memory_bytes >> m.page_size)) return std::nullopt;
  if (word == "clean") {
    m.state = State::kClean;
  } else if (word == "kept") {
    m.state = State::kKept;
  } else if (word == "resync") {
    m.state = State::kResync;
  } else if (word == "running") {
    m.state = State::kRunning;
  } else if (word == "applying") {
    m.state = State::kApplying;
    if (!(in >> m.base_epoch)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (in >> word) {
    int complete = 0;
    if (word != "disk" || !(in >> m.disk_bytes >> m.disk_last_seq >> complete) ||
        (complete != 0 && complete != 1))
      return std::nullopt;
    m.disk_complete = complete == 1;
  }
  return m;
}

std::string ReplicaMeta::to_string() const {
  std::string line = fmt::format("{} {} {} {}", state_word(state), epoch, memory_bytes, page_size);
  if (state == State::kApplying) line += fmt::format(" {}", base_epoch);
  if (disk_bytes > 0)
    line += fmt::format(" disk {} {} {}", disk_bytes, disk_last_seq, disk_complete ? 1 : 0);
  return line;
}

Status ReplicaMeta::write(const std::string& path) const {
  // write_file_atomic's fsync costs next to nothing on tmpfs; the rename is
  // what makes the line atomic against a process dying mid-write.
  std::string text = to_string() + "\n";
  return write_file_atomic(path, std::as_bytes(std::span(text)));
}

}  // namespace ftd
