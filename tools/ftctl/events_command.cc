#include "tools/ftctl/events_command.h"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

namespace ftd {
namespace {

std::string utc_time(int64_t unix_ms) {
  const std::chrono::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds(unix_ms)};
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", t);
}

void print(const v1::Event& e, bool json) {
  if (json) {
    std::cout << nlohmann::json{{"seq", e.seq()},
                                {"unix_ms", e.unix_ms()},
                                {"vm", e.vm()},
                                {"name", e.name()},
                                {"fields", e.fields()}}
                     .dump()
              << std::endl;  // flushed per event: a pipe reader sees it at once
    return;
  }
  std::cout << fmt::format("{} {} {} {}", utc_time(e.unix_ms()), e.vm().empty() ? "-" : e.vm(),
                           e.name(), e.fields())
            << std::endl;
}

}  // namespace

int run_events(v1::Control::Stub& stub, const EventsCommand& command) {
  grpc::ClientContext context;  // no deadline: streams until Ctrl-C
  v1::EventsRequest req;
  req.set_vm_name(command.vm);
  req.set_no_replay(command.no_replay);
  auto reader = stub.Events(&context, req);
  v1::Event e;
  while (reader->Read(&e)) print(e, command.json);
  grpc::Status st = reader->Finish();
  if (st.ok()) return 0;
  std::cerr << "ftctl: events failed: " << st.error_message() << " (code "
            << static_cast<int>(st.error_code()) << ")\n";
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

}  // namespace ftd
