#include "tracking/uffd_preload_path.h"

#include <cstdlib>
#include <filesystem>

namespace ftd {

std::string default_uffd_preload_library() {
  if (const char* env = std::getenv("FTD_UFFD_PRELOAD"); env && *env) return env;
  // An installed ftd (the .deb: /usr/bin/ftd) uses the installed library; a
  // build-tree ftd the one built next to it.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.parent_path() == FTD_INSTALL_BINDIR) return FTD_UFFD_PRELOAD_INSTALL_PATH;
  return FTD_UFFD_PRELOAD_BUILD_PATH;
}

}  // namespace ftd
