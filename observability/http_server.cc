#include "observability/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace ftd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kHeaderLimit = 8 * 1024;
constexpr auto kConnectionTimeout = std::chrono::seconds(5);

// "host:port" / "[v6]:port" -> (host, port).
Result<std::pair<std::string, std::string>> split_host_port(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return make_error(ErrorCode::kInvalidArgument,
                      "--metrics-listen '{}': expected host:port (e.g. 127.0.0.1:9464)", address);
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::pair{host, address.substr(colon + 1)};
}

// Status for a request Beast refused to parse: the client learns why.
http::status parse_error_status(const beast::error_code& ec) {
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit || ec == http::error::unexpected_body)
    return http::status::payload_too_large;
  return http::status::bad_request;
}

// One connection: read one request, answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const HttpRoutes> routes)
      : stream_(std::move(socket)), routes_(std::move(routes)) {
    parser_.header_limit(kHeaderLimit);
    parser_.body_limit(0);
  }

  void run() {
    stream_.expires_after(kConnectionTimeout);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->read(ec); });
  }

 private:
  void read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted)
      return;
    response_.version(11);
    response_.keep_alive(false);
    response_.set(http::field::server, "ftd");
    if (ec) {
      response_.result(parse_error_status(ec));
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "bad request: " + ec.message() + "\n";
    } else {
      const auto& req = parser_.get();
      HttpReply reply =
          routes_->handle(std::string_view(req.method_string()), std::string_view(req.target()),
                          std::string_view(req[http::field::authorization]));
      response_.result(static_cast<unsigned>(reply.status));
      response_.set(http::field::content_type, reply.content_type);
      response_.set(http::field::cache_control, "no-store");
      if (reply.bearer_challenge)
        response_.set(http::field::www_authenticate, "Bearer realm=\"ftd metrics\"");
      response_.body() = std::move(reply.body);
    }
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kHeaderLimit};
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<const HttpRoutes> routes_;
};

}  // namespace

struct HttpServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::shared_ptr<const HttpRoutes> routes;
  std::string address;
  std::thread thread;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec)
        std::make_shared<Session>(std::move(s), routes)->run();
      else
        spdlog::warn("metrics.accept_failed error=\"{}\"", ec.message());
      accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

const std::string& HttpServer::address() const { return impl_->address; }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& address,
                                                      std::shared_ptr<const HttpRoutes> routes) {
  FTD_ASSIGN_OR_RETURN(auto host_port, split_host_port(address));
  auto impl = std::make_unique<Impl>();
  impl->routes = std::move(routes);
  beast::error_code ec;
  tcp::resolver resolver(impl->io);
  auto endpoints = resolver.resolve(host_port.first, host_port.second,
                                    tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || endpoints.empty())
    return make_error(ErrorCode::kInvalidArgument, "--metrics-listen '{}': {}", address,
                      ec ? ec.message() : "no address");
  const tcp::endpoint endpoint = *endpoints.begin();
  // No SO_REUSEPORT (another process must not share the port); SO_REUSEADDR
  // only lets a restarted daemon bind past TIME_WAIT.
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(ErrorCode::kUnavailable, "--metrics-listen '{}': {}", address, ec.message());
  const auto bound = impl->acceptor.local_endpoint();
  impl->address = bound.address().is_v6()
                      ? fmt::format("[{}]:{}", bound.address().to_string(), bound.port())
                      : fmt::format("{}:{}", bound.address().to_string(), bound.port());
  impl->accept();
  impl->thread = std::thread([io = &impl->io] { io->run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace ftd
