#include "common/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace ftd {

Status write_all(int fd, std::span<const std::byte> data, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("write {}", what));
    }
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status pwrite_all(int fd, std::span<const std::byte> data, uint64_t offset, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("write {}", what));
    }
    done += static_cast<size_t>(n);
  }
  return ok();
}

Result<size_t> pread_all(int fd, std::span<std::byte> data, uint64_t offset,
                         std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pread(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("read {}", what));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status write_file_atomic(const std::string& path, std::span<const std::byte> data) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + tmp);
  if (auto st = write_all(fd.get(), data, tmp); !st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (::fsync(fd.get()) != 0) {
    ::unlink(tmp.c_str());
    return errno_error("fsync " + tmp);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return errno_error("rename " + tmp);
  }
  return ok();
}

Result<std::vector<std::byte>> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  std::vector<std::byte> out;
  std::byte buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read " + path);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

}  // namespace ftd
