// Where libftd_uffd_preload.so is: $FTD_UFFD_PRELOAD, else the installed copy
// (/usr/lib/ftd) for an installed ftd, else the build tree's copy.
#pragma once

#include <string>

namespace ftd {

std::string default_uffd_preload_library();

}  // namespace ftd
