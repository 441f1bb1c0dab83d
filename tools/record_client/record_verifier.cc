#include "tools/record_client/record_verifier.h"

#include <algorithm>

namespace ftd::record {

namespace {
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
int64_t unix_ms_at(Clock::time_point t) {
  // Translate a steady time to wall clock through "now" on both clocks.
  auto age = Clock::now() - t;
  auto wall = std::chrono::system_clock::now() - age;
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
}
double percentile(std::vector<float> v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}
}  // namespace

uint64_t RecordVerifier::next_to_send() {
  ++sent_;
  seen_.resize(sent_ + 1, false);
  return sent_;
}

void RecordVerifier::on_reply(const Reply& reply, Clock::time_point now) {
  if (have_reply_) {
    double gap = ms_between(last_reply_, now);
    if (gap > longest_gap_ms_) {
      longest_gap_ms_ = gap;
      longest_gap_at_s_ = ms_between(start_, now) / 1000.0;
      longest_gap_at_unix_ms_ = unix_ms_at(now);
      longest_gap_before_seq_ = reply.client_seq;
    }
  } else {
    first_server_total_ = reply.server_total;
  }
  have_reply_ = true;
  last_reply_ = now;
  last_server_total_ = reply.server_total;

  // The server counts its replies on this connection from 1; any jump or
  // repeat means the guest lost or replayed state.
  if (reply.server_seq != last_server_seq_ + 1) ++server_seq_breaks_;
  last_server_seq_ = reply.server_seq;

  uint64_t seq = reply.client_seq;
  if (seq == 0 || seq > sent_) {
    ++unknown_;
    return;
  }
  if (seen_[seq]) {
    ++duplicated_;
    return;
  }
  seen_[seq] = true;
  ++received_;
  if (seq != highest_ + 1) ++reordered_;
  highest_ = std::max(highest_, seq);
  auto sent_at = start_ + std::chrono::nanoseconds(reply.echo);
  latencies_ms_.push_back(static_cast<float>(ms_between(sent_at, now)));
}

void RecordVerifier::set_error(std::string error) {
  if (error_.empty()) error_ = std::move(error);
}

Summary RecordVerifier::summary(Clock::time_point now) const {
  Summary s;
  s.sent = sent_;
  s.received = received_;
  s.lost = sent_ - received_;
  s.duplicated = duplicated_;
  s.reordered = reordered_;
  s.server_seq_breaks = server_seq_breaks_;
  s.unknown = unknown_;
  s.longest_gap_ms = longest_gap_ms_;
  s.longest_gap_at_s = longest_gap_at_s_;
  s.longest_gap_at_unix_ms = longest_gap_at_unix_ms_;
  s.longest_gap_before_seq = longest_gap_before_seq_;
  s.latency_p50_ms = percentile(latencies_ms_, 0.50);
  s.latency_p99_ms = percentile(latencies_ms_, 0.99);
  s.latency_max_ms =
      latencies_ms_.empty() ? 0 : *std::max_element(latencies_ms_.begin(), latencies_ms_.end());
  s.first_server_total = first_server_total_;
  s.last_server_total = last_server_total_;
  s.elapsed_s = ms_between(start_, now) / 1000.0;
  s.error = error_;
  s.ok = error_.empty() && s.received > 0 && s.lost == 0 && s.duplicated == 0 && s.reordered == 0 &&
         s.server_seq_breaks == 0 && s.unknown == 0;
  return s;
}

nlohmann::json Summary::to_json() const {
  return nlohmann::json{
      {"ok", ok},
      {"sent", sent},
      {"received", received},
      {"lost", lost},
      {"duplicated", duplicated},
      {"reordered", reordered},
      {"server_seq_breaks", server_seq_breaks},
      {"unknown", unknown},
      {"longest_gap_ms", longest_gap_ms},
      {"longest_gap_at_s", longest_gap_at_s},
      {"longest_gap_at_unix_ms", longest_gap_at_unix_ms},
      {"longest_gap_before_seq", longest_gap_before_seq},
      {"latency_p50_ms", latency_p50_ms},
      {"latency_p99_ms", latency_p99_ms},
      {"latency_max_ms", latency_max_ms},
      {"first_server_total", first_server_total},
      {"last_server_total", last_server_total},
      {"elapsed_s", elapsed_s},
      {"error", error},
  };
}

}  // namespace ftd::record
