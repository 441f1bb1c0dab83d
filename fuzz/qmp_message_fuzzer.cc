// The QMP client's JSON handling (qemu/qmp_message.h) on whatever a QEMU
// might send. The input is the byte stream from the QMP socket; it is
// appended in pieces (as recv() would deliver it) and every complete message
// is read the way QmpClient reads it: greeting check, event name and data,
// reply id, reply result. Oracle: nothing throws or crashes, and every
// message is consumed exactly once.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "qemu/qmp_message.h"

namespace ftd::fuzz {
namespace {

void read_like_the_client(QmpJson msg) {
  (void)check_qmp_greeting(msg, "fuzz");
  if (is_qmp_event(msg)) {
    (void)qmp_event_name(msg);
    FUZZ_CHECK(qmp_event_data(msg).is_object());  // what the engine's event matchers read
    return;
  }
  // The client asks for the result only when the id matches; any reply must be safe.
  (void)is_qmp_reply_to(msg, 1);
  (void)qmp_reply_result(std::move(msg), "fuzz-command");
}

}  // namespace
}  // namespace ftd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftd;
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  const size_t piece = 1 + size % 61;
  std::string buffer;
  for (size_t at = 0; at < stream.size(); at += piece) {
    buffer.append(stream.substr(at, piece));
    const size_t before = buffer.size();
    while (auto msg = pop_qmp_message(buffer)) {
      if (*msg) fuzz::read_like_the_client(std::move(**msg));
    }
    FUZZ_CHECK(buffer.size() <= before);
    FUZZ_CHECK(buffer.find('\n') == std::string::npos);
  }
  return 0;
}
