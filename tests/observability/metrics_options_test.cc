// Who may scrape: --metrics-listen on a non-loopback address is refused
// without a token file, and the token file itself is checked.
#include "observability/metrics_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace ftd {
namespace {

using ::testing::HasSubstr;

struct TokenFile {
  explicit TokenFile(const std::string& content, mode_t mode) {
    path = (std::filesystem::temp_directory_path() /
            fmt::format("ftd-token-{}-{}", ::getpid(), counter++))
               .string();
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
  }
  ~TokenFile() { std::filesystem::remove(path); }
  std::string path;
  static inline int counter = 0;
};

TEST(MetricsOptions, OffByDefault) {
  MetricsOptions o;
  EXPECT_FALSE(o.enabled());
  EXPECT_TRUE(o.validate());
}

TEST(MetricsOptions, LoopbackNeedsNoToken) {
  for (const char* a : {"127.0.0.1:9464", "localhost:9464", "[::1]:9464", "127.1.2.3:1"}) {
    MetricsOptions o{.listen = a};
    EXPECT_TRUE(o.validate()) << a;
  }
}

TEST(MetricsOptions, NonLoopbackWithoutTokenIsRefused) {
  for (const char* a : {"0.0.0.0:9464", "10.0.0.1:9464", "[::]:9464", "metrics.example:9464"}) {
    MetricsOptions o{.listen = a};
    auto st = o.validate();
    ASSERT_FALSE(st) << a;
    EXPECT_THAT(st.error().message, HasSubstr("--metrics-token-file")) << a;
  }
}

TEST(MetricsOptions, TokenFileIsChecked) {
  TokenFile good("  0123456789abcdef0123456789abcdef \n", 0600);
  MetricsOptions o{.listen = "0.0.0.0:9464", .token_file = good.path};
  EXPECT_TRUE(o.validate());
  auto token = read_bearer_token(good.path);
  ASSERT_TRUE(token);
  EXPECT_EQ(*token, "0123456789abcdef0123456789abcdef");

  TokenFile world_readable("0123456789abcdef0123456789abcdef", 0644);
  auto st = read_bearer_token(world_readable.path);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("chmod 600"));

  TokenFile short_token("abc", 0600);
  st = read_bearer_token(short_token.path);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("at least 16"));

  EXPECT_FALSE(read_bearer_token("/nonexistent/ftd-token"));
}

TEST(MetricsOptions, RefusesUnixAndTokenWithoutListen) {
  EXPECT_FALSE((MetricsOptions{.listen = "unix:/tmp/m.sock"}.validate()));
  EXPECT_FALSE((MetricsOptions{.token_file = "/tmp/x"}.validate()));
}

}  // namespace
}  // namespace ftd
