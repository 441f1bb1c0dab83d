#include "primary/replication_client.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "checkpoint/chunking.h"

namespace ftd {

grpc::ChannelArguments replication_channel_args() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

void apply_replication_server_args(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(8 << 20);
}

ReplicationClient::ReplicationClient(std::string target, v1::Hello hello, ChannelSecurity security,
                                     size_t chunk_bytes)
    : target_(std::move(target)), hello_(std::move(hello)), chunk_bytes_(chunk_bytes) {
  grpc::ChannelArguments args = replication_channel_args();
  security.apply(args);
  channel_ = grpc::CreateCustomChannel(target_, security.credentials_or_insecure(), args);
  stub_ = v1::Replication::NewStub(channel_);
}

ReplicationClient::~ReplicationClient() { stop(); }

void ReplicationClient::start(Listener listener) {
  listener_ = std::move(listener);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ReplicationClient::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    if (context_) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void ReplicationClient::run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_wait_for_ready(true);
    auto* ctx = context.get();
    std::unique_ptr<grpc::ClientReaderWriter<v1::PrimaryMessage, v1::SecondaryMessage>> stream;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      context_ = std::move(context);  // from here stop() can cancel it
    }
    // Not under mu_: with wait_for_ready this blocks until the channel is up,
    // which never happens while the secondary refuses our TLS handshake (or
    // is down), and stop() needs mu_ to cancel it.
    stream = stub_->Replicate(ctx);
    v1::PrimaryMessage hello;
    *hello.mutable_hello() = hello_;
    v1::SecondaryMessage msg;
    std::vector<PageDigest> digests;
    if (stream->Write(hello) && stream->Read(&msg) &&
        (digests = read_digests(*stream, msg), msg.has_welcome())) {
      backoff = std::chrono::milliseconds(100);
      spdlog::info("replication.connected peer={} replica_epoch={}", target_,
                   msg.welcome().applied_epoch());
      {
        std::lock_guard lock(mu_);
        stream_ = std::move(stream);
      }
      connected_ = true;
      set_last_error("");
      listener_.on_connected(msg.welcome().applied_epoch(), std::move(digests));
      // Only this thread reads; writers hold mu_ and use stream_ concurrently.
      auto* reader = stream_.get();
      while (reader->Read(&msg)) {
        if (msg.has_ack()) listener_.on_ack(msg.ack().epoch(), msg.ack().apply_micros());
        if (msg.has_handover() && listener_.on_handover) listener_.on_handover(msg.handover());
      }
      connected_ = false;
      ctx->TryCancel();  // unblocks a writer stuck in flow control before we take mu_
      std::unique_lock lock(mu_);
      auto finished = std::move(stream_);
      lock.unlock();
      grpc::Status st = finished->Finish();
      std::string why = st.ok() ? "stream closed" : st.error_message();
      spdlog::warn("replication.disconnected peer={} code={} reason=\"{}\"", target_,
                   static_cast<int>(st.error_code()), why);
      set_last_error(why);
      listener_.on_disconnected(why);
    } else {
      // The secondary refused us (or is gone): Finish() carries its reason.
      // Cancel only if it sent something unexpected and is still talking.
      if (msg.kind_case() != v1::SecondaryMessage::KIND_NOT_SET) ctx->TryCancel();
      grpc::Status st = stream->Finish();
      std::string why = st.ok() ? "secondary did not send Welcome" : st.error_message();
      set_last_error(why);
      if (!stopping_)
        spdlog::warn("replication.connect_failed peer={} reason=\"{}\"", target_, why);
    }
    if (stopping_) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  std::lock_guard lock(mu_);
  context_.reset();
}

Status ReplicationClient::send(uint64_t epoch, std::span<const std::byte> encoded) {
  std::lock_guard lock(mu_);
  if (!stream_) return make_error(ErrorCode::kUnavailable, "not connected to {}", target_);
  v1::PrimaryMessage m;
  auto* chunk = m.mutable_chunk();
  for (const ChunkView& c : split_checkpoint(epoch, encoded, chunk_bytes_)) {
    chunk->set_epoch(c.epoch);
    chunk->set_total_size(c.total_size);
    chunk->set_offset(c.offset);
    chunk->set_data(c.data.data(), c.data.size());
    chunk->set_last(c.last);
    if (!stream_->Write(m))
      return make_error(ErrorCode::kUnavailable, "stream to {} broke while sending epoch {}",
                        target_, epoch);
  }
  return ok();
}

std::vector<PageDigest> ReplicationClient::read_digests(
    grpc::ClientReaderWriter<v1::PrimaryMessage, v1::SecondaryMessage>& stream,
    v1::SecondaryMessage& msg) {
  const uint64_t pages = hello_.page_size() ? hello_.memory_bytes() / hello_.page_size() : 0;
  std::vector<PageDigest> digests;
  std::string problem;
  while (msg.has_page_digests()) {
    const auto& d = msg.page_digests();
    if (problem.empty() && d.first_page() != digests.size())
      problem =
          fmt::format("digests start at page {}, expected {}", d.first_page(), digests.size());
    if (problem.empty())
      if (auto st = decode_digests(d.digests(), digests); !st) problem = st.error().message;
    if (problem.empty() && digests.size() > pages)
      problem = fmt::format("more than {} page digests", pages);
    if (!stream.Read(&msg)) return {};
  }
  if (msg.has_welcome() && problem.empty() && msg.welcome().digest_pages() != 0 &&
      (digests.size() != pages || msg.welcome().digest_pages() != pages))
    problem = fmt::format("{} page digests for {} pages", digests.size(), pages);
  if (!problem.empty()) {
    // Not fatal: without digests the sync copies every page.
    spdlog::warn("replication.digests_ignored peer={} reason=\"{}\"", target_, problem);
    return {};
  }
  return digests;
}

Status ReplicationClient::send_handover(const v1::Handover& handover) {
  std::lock_guard lock(mu_);
  if (!stream_) return make_error(ErrorCode::kUnavailable, "not connected to {}", target_);
  v1::PrimaryMessage m;
  *m.mutable_handover() = handover;
  if (!stream_->Write(m))
    return make_error(ErrorCode::kUnavailable, "stream to {} broke before the handover", target_);
  return ok();
}

void ReplicationClient::set_last_error(std::string why) {
  std::lock_guard lock(error_mu_);
  last_error_ = std::move(why);
}

std::string ReplicationClient::last_error() const {
  std::lock_guard lock(error_mu_);
  return last_error_;
}

}  // namespace ftd
