#include "tracking/uffd_preload_path.h"

#include <cstdlib>

namespace ftd {

std::string default_uffd_preload_library() {
  if (const char* env = std::getenv("FTD_UFFD_PRELOAD"); env && *env) return env;
  return FTD_UFFD_PRELOAD_BUILD_PATH;
}

}  // namespace ftd
