#include "qemu/qmp_message.h"

namespace ftd {

std::optional<Result<QmpJson>> pop_qmp_message(std::string& buffer) {
  while (true) {
    auto nl = buffer.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = buffer.substr(0, nl);
    buffer.erase(0, nl + 1);
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    QmpJson msg = QmpJson::parse(line, nullptr, /*allow_exceptions=*/false);
    if (msg.is_discarded()) return make_error(ErrorCode::kCorrupt, "QMP sent malformed JSON");
    return msg;
  }
}

Status check_qmp_greeting(const QmpJson& greeting, std::string_view socket_path) {
  if (!greeting.contains("QMP")) {
    return make_error(ErrorCode::kCorrupt, "{} is not a QMP socket (greeting: {})", socket_path,
                      greeting.dump());
  }
  return ok();
}

bool is_qmp_event(const QmpJson& msg) { return msg.contains("event"); }

std::string qmp_string(const QmpJson& obj, std::string_view key, std::string_view fallback) {
  if (!obj.is_object()) return std::string(fallback);
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::string(fallback);
  return it->get<std::string>();
}

std::optional<uint64_t> qmp_uint(const QmpJson& obj, std::string_view key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

std::string qmp_event_name(const QmpJson& event) { return qmp_string(event, "event"); }

QmpJson qmp_event_data(const QmpJson& event) {
  if (auto it = event.find("data"); it != event.end() && it->is_object()) return *it;
  return QmpJson::object();
}

bool is_qmp_reply_to(const QmpJson& msg, uint64_t id) {
  return msg.contains("id") && msg["id"] == id;
}

Result<QmpJson> qmp_reply_result(QmpJson reply, std::string_view command) {
  if (auto it = reply.find("return"); it != reply.end()) return std::move(*it);
  if (auto it = reply.find("error"); it != reply.end()) {
    return make_error(ErrorCode::kFailedPrecondition, "QMP {} failed: {}: {}", command,
                      qmp_string(*it, "class", "?"), qmp_string(*it, "desc", "?"));
  }
  return make_error(ErrorCode::kCorrupt, "QMP {} got an unexpected reply: {}", command,
                    reply.dump());
}

}  // namespace ftd
