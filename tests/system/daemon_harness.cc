#include "tests/system/daemon_harness.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"

namespace ftd::testing {

int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::string built_binary(const std::string& relative) {
  const char* dir = std::getenv("FTD_BUILD_DIR");
  return std::string(dir ? dir : ".") + "/" + relative;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

int sanitizer_time_scale() {
  const char* scale = std::getenv("FTD_TEST_TIME_SCALE");
  int n = scale ? std::atoi(scale) : 1;
  return n > 0 ? n : 1;
}

bool wait_for_acked_epoch(Daemon& primary, uint64_t epoch, std::chrono::milliseconds timeout) {
  // Reaching an epoch is throughput-bound: under ASan the synthetic workload
  // checkpoints ~50x slower (every multi-MiB checkpoint buffer is a fresh
  // mmap from ASan's allocator, page-faulted again each time), so the wait
  // stretches with the sanitizer; what the tests assert afterwards does not.
  timeout *= sanitizer_time_scale();
  return wait_until(
      [&] {
        auto s = primary.status();
        return s && s->acked_epoch() >= epoch;
      },
      timeout);
}

namespace {

// One connect attempt to the control address: `unix:/path` or `host:port` on our loopback.
bool control_accepts(const std::string& control) {
  constexpr std::string_view kUnix = "unix:";
  if (control.starts_with(kUnix)) {
    std::string path = control.substr(kUnix.size());
    sockaddr_un a{};
    if (path.size() >= sizeof a.sun_path) return false;
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  auto colon = control.rfind(':');
  int port = std::stoi(control.substr(colon + 1));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

}  // namespace

Result<Daemon> Daemon::start(std::vector<std::string> args, const std::string& control,
                             const std::string& log_path, const std::string& netns,
                             const std::vector<std::string>& prefix) {
  if ((!netns.empty() || !prefix.empty()) && !control.starts_with("unix:"))
    return make_error(ErrorCode::kInvalidArgument,
                      "a daemon in netns {} needs a unix: control address, not {}", netns, control);
  args.insert(args.begin(), built_binary("daemon/ftd"));
  args.insert(args.begin(), prefix.begin(), prefix.end());
  args.push_back("--control");
  args.push_back(control);
  Daemon d;
  FTD_ASSIGN_OR_RETURN(d.process_,
                       Subprocess::spawn({.argv = args, .log_path = log_path, .netns = netns}));
  // Wait for the port to accept connections before gRPC tries: a channel that
  // failed once backs off for seconds.
  wait_until([&] { return control_accepts(control) || !d.process_.running(); },
             std::chrono::seconds(10));
  // Short reconnect backoff: the daemon is usually not listening yet on the first try.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  d.stub_ = v1::Control::NewStub(
      grpc::CreateCustomChannel(control, grpc::InsecureChannelCredentials(), channel_args));
  bool up = wait_until([&] { return d.process_.running() && d.status().has_value(); },
                       std::chrono::seconds(10));
  if (!up) return make_error(ErrorCode::kUnavailable, "ftd did not come up; see {}", log_path);
  return d;
}

Result<v1::VmStatus> Daemon::status(const std::string& vm) {
  v1::StatusRequest req;
  req.set_vm_name(vm);
  v1::StatusReply reply;
  grpc::Status st;
  // Status is read-only, so a call that failed on a connection the server had
  // dropped (seen as "Broken pipe" after the channel sat idle) is retried.
  for (int attempt = 0; attempt < 3; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    st = stub_->Status(&ctx, req, &reply);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!st.ok()) return make_error(ErrorCode::kUnavailable, "status: {}", st.error_message());
  if (reply.vms_size() != 1) return make_error(ErrorCode::kInternal, "expected one VM");
  return reply.vms(0);
}

Result<v1::FailoverReply> Daemon::failover(const std::string& vm) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::FailoverRequest req;
  req.set_vm_name(vm);
  v1::FailoverReply reply;
  auto st = stub_->Failover(&ctx, req, &reply);
  if (!st.ok()) return make_error(ErrorCode::kFailedPrecondition, "{}", st.error_message());
  return reply;
}

Result<std::string> Daemon::protect(const std::string& peer, const std::string& vm) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ProtectRequest req;
  req.set_vm_name(vm);
  req.set_peer(peer);
  v1::ProtectReply reply;
  auto st = stub_->Protect(&ctx, req, &reply);
  if (!st.ok()) return make_error(ErrorCode::kFailedPrecondition, "{}", st.error_message());
  return reply.message();
}

Result<v1::MigrateReply> Daemon::migrate(unsigned sync_timeout_s, const std::string& vm) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(sync_timeout_s + 120));
  v1::MigrateRequest req;
  req.set_vm_name(vm);
  req.set_sync_timeout_s(sync_timeout_s);
  v1::MigrateReply reply;
  auto st = stub_->Migrate(&ctx, req, &reply);
  if (!st.ok()) return make_error(ErrorCode::kFailedPrecondition, "{}", st.error_message());
  return reply;
}

Result<v1::PlanReply> Daemon::plan(unsigned sample_ms, const std::string& vm) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(sample_ms) +
                   std::chrono::seconds(60));
  v1::PlanRequest req;
  req.set_vm_name(vm);
  req.set_sample_ms(sample_ms);
  v1::PlanReply reply;
  auto st = stub_->Plan(&ctx, req, &reply);
  if (!st.ok()) return make_error(ErrorCode::kFailedPrecondition, "{}", st.error_message());
  return reply;
}

TempDir::TempDir(const std::filesystem::path& base) {
  std::string tmpl = (base / "ftd-test-XXXXXX").string();
  path_ = ::mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace ftd::testing
