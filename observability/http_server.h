// The metrics endpoint's HTTP server: Boost.Beast (parsing, framing) on one
// thread of its own with its own io_context, so a slow scraper never stalls
// replication or the control API. Requests are bounded (8 KiB of headers, no
// body, 5 s per connection); one request per connection.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "observability/http_routes.h"

namespace ftd {

class HttpServer {
 public:
  // Listens on `address` ("host:port"; port 0 picks one) and serves `routes`.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& address,
                                                   std::shared_ptr<const HttpRoutes> routes);
  ~HttpServer();  // stops accepting, closes connections, joins the thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address ("127.0.0.1:9464").
  const std::string& address() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ftd
