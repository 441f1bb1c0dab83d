#include "witness/lease_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/unique_fd.h"

namespace ftd::witness {

Result<PersistedTable> LeaseStore::load() const {
  std::ifstream in(path());
  if (!in) {
    if (errno == ENOENT) return PersistedTable{};
    return errno_error("open " + path());
  }
  std::stringstream ss;
  ss << in.rdbuf();
  PersistedTable table;
  try {
    auto j = nlohmann::json::parse(ss.str());
    for (const auto& [vm, v] : j.at("leases").items())
      table[vm] = {v.at("term").get<uint64_t>(), v.at("holder").get<std::string>(),
                   v.value("alone", false)};
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorrupt, "{}: {}", path(), e.what());
  }
  return table;
}

Status LeaseStore::save(const PersistedTable& table) const {
  nlohmann::json j;
  j["leases"] = nlohmann::json::object();
  for (const auto& [vm, l] : table) j["leases"][vm] = {{"term", l.term}, {"holder", l.holder}, {"alone", l.alone}};
  const std::string data = j.dump(2) + "\n";
  const std::string tmp = path() + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return errno_error("open " + tmp);
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("write " + tmp);
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return errno_error("fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path().c_str()) != 0) return errno_error("rename " + tmp);
  // The rename itself must be durable before the grant leaves the witness.
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errno_error("open " + dir_);
  if (::fsync(dir.get()) != 0) return errno_error("fsync " + dir_);
  return ok();
}

}  // namespace ftd::witness
