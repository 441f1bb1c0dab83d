// The status page (status_page.html), compiled into the binary so the
// daemon serves it with no files and no network access.
#pragma once

#include <string_view>

namespace ftd {

std::string_view status_page_html();

}  // namespace ftd
