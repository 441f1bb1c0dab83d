// An exclusive, advisory lock on a file (flock) held for the owner's
// lifetime: "this process owns that resource". The holder's pid is written
// into the file so that a second process gets an error naming it.
// Released when the object is destroyed or the process dies (the kernel drops
// flock locks with the last descriptor; O_CLOEXEC keeps children such as QEMU
// from inheriting it).
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

class FileLock {
 public:
  // kFailedPrecondition "<what> is in use by pid N (lock <path>)" when held.
  static Result<FileLock> acquire(const std::string& path, const std::string& what);

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;
  const std::string& path() const { return path_; }

 private:
  FileLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

}  // namespace ftd
