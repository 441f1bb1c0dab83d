// The JSON side of QMP, apart from the socket: cutting what QEMU sent into
// messages and reading what each one says. Pure functions, so unit tests and
// the fuzzer (fuzz/qmp_message_fuzzer.cc) reach them without a QEMU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd {

using QmpJson = nlohmann::json;

// Removes the first complete non-blank line from `buffer` and parses it.
// nullopt: no complete line yet (the rest stays buffered); kCorrupt: not JSON.
std::optional<Result<QmpJson>> pop_qmp_message(std::string& buffer);

// QEMU's greeting must carry the "QMP" member; anything else is not QEMU.
Status check_qmp_greeting(const QmpJson& greeting, std::string_view socket_path);

// QEMU's JSON is read without exceptions: a member of the wrong type is
// treated as missing. (nlohmann's value()/get() throw on a wrong type, and an
// exception escaping here would take the daemon down.)
// The string member `key` of `obj`, or `fallback`.
std::string qmp_string(const QmpJson& obj, std::string_view key, std::string_view fallback = "");
// The unsigned integer member `key` of `obj`; nullopt when it is missing, not
// an integer, or negative.
std::optional<uint64_t> qmp_uint(const QmpJson& obj, std::string_view key);

// An asynchronous event ({"event": name, "data": {...}}) rather than a reply.
bool is_qmp_event(const QmpJson& msg);
std::string qmp_event_name(const QmpJson& event);
// The event's "data" member, or an empty object when it has none: always an object.
QmpJson qmp_event_data(const QmpJson& event);

// Whether `msg` answers the command sent with `id`; replies to earlier
// commands that timed out do not.
bool is_qmp_reply_to(const QmpJson& msg, uint64_t id);
// A reply's "return" value; QEMU's error reply as kFailedPrecondition with its
// class and description; anything else kCorrupt.
Result<QmpJson> qmp_reply_result(QmpJson reply, std::string_view command);

}  // namespace ftd
