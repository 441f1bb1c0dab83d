// Which addresses may stay plaintext, and the TLS flag rules.
#include "security/address_policy.h"

#include <gtest/gtest.h>

#include "security/tls_options.h"

namespace ftd {
namespace {

TEST(AddressPolicy, OnlyLoopbackAndUnixPathsAreHostLocal) {
  for (const char* a : {"127.0.0.1:7400", "127.1.2.3:1", "localhost:7400", "[::1]:7400",
                        "ipv4:127.0.0.1:7400", "ipv6:[::1]:7400", "unix:/run/ftd/ctl.sock",
                        "unix:///run/ftd/ctl.sock", "unix:relative.sock"})
    EXPECT_TRUE(is_host_local(a)) << a;
  for (const char* a : {"0.0.0.0:7400", "10.77.0.12:7400", "[::]:7400", "secondary:7400",
                        "ipv4:10.0.0.1:7400", "unix-abstract:ftd", "128.0.0.1:7400",
                        "localhost.evil.example:7400", "127.evil.example:7400"})
    EXPECT_FALSE(is_host_local(a)) << a;
}

TEST(AddressPolicy, PlaintextNeedsLocalAddressOrInsecure) {
  EXPECT_TRUE(check_plaintext_allowed("--listen", "127.0.0.1:7400", false, false));
  EXPECT_TRUE(check_plaintext_allowed("--listen", "10.0.0.1:7400", true, false));
  EXPECT_TRUE(check_plaintext_allowed("--listen", "10.0.0.1:7400", false, true));
  auto refused = check_plaintext_allowed("--listen", "10.0.0.1:7400", false, false);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("--listen 10.0.0.1:7400"), std::string::npos);
  EXPECT_NE(refused.error().message.find("--insecure"), std::string::npos);
}

TEST(AddressPolicy, TcpControlNeedsTlsEvenOnLoopback) {
  EXPECT_TRUE(check_control_plaintext_allowed("unix:/run/ftd.sock", false, false));
  EXPECT_FALSE(check_control_plaintext_allowed("127.0.0.1:7300", false, false));
  EXPECT_TRUE(check_control_plaintext_allowed("127.0.0.1:7300", true, false));
  EXPECT_TRUE(check_control_plaintext_allowed("127.0.0.1:7300", false, true));
}

TEST(TlsOptions, FlagsMustBeCompleteAndConsistent) {
  TlsOptions o;
  EXPECT_TRUE(o.validate());
  o.files.cert = "a.pem";
  EXPECT_FALSE(o.validate());  // no key, no CA
  o.files.key = "a.key";
  o.files.ca = "ca.pem";
  EXPECT_FALSE(o.validate());  // no peer identity
  o.peer_identity = "hostB";
  EXPECT_TRUE(o.validate());
  o.insecure = true;
  EXPECT_FALSE(o.validate());
  TlsOptions identity_only;
  identity_only.peer_identity = "hostB";
  EXPECT_FALSE(identity_only.validate());
}

}  // namespace
}  // namespace ftd
