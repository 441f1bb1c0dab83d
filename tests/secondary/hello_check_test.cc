// check_hello: a Hello that does not describe the secondary's VM is refused
// with a reason naming both sides; a matching one is accepted.
#include "secondary/hello_check.h"

#include <gtest/gtest.h>

namespace ftd {
namespace {

const SecondaryVmConfig kConfig{.vm_name = "web1",
                                .memory_bytes = 256u << 20,
                                .page_size = 4096,
                                .disk_bytes = 0,
                                .vm_spec_digest = "aaaa"};

v1::Hello matching_hello() {
  v1::Hello h;
  h.set_protocol_version(1);
  h.set_vm_name("web1");
  h.set_memory_bytes(256u << 20);
  h.set_page_size(4096);
  h.set_vm_spec_digest("aaaa");
  return h;
}

void expect_refused(const v1::Hello& h, const std::string& needle) {
  const grpc::Status st = check_hello(h, kConfig);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find(needle), std::string::npos) << st.error_message();
}

TEST(HelloCheck, AcceptsTheSameVm) { EXPECT_TRUE(check_hello(matching_hello(), kConfig).ok()); }

TEST(HelloCheck, RefusesAnotherVmSpecNamingBothDigests) {
  auto h = matching_hello();
  h.set_vm_spec_digest("bbbb");
  expect_refused(h, "spec mismatch: primary's VM spec digest bbbb, this secondary's aaaa");
  h.set_vm_spec_digest("");  // a primary running ftd's built-in guest
  expect_refused(h, "primary's VM spec digest none, this secondary's aaaa");
  EXPECT_EQ(check_hello(h, kConfig).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(HelloCheck, RefusesOtherShapes) {
  auto h = matching_hello();
  h.set_vm_name("db1");
  expect_refused(h, "protects VM 'web1', not 'db1'");
  h = matching_hello();
  h.set_memory_bytes(128u << 20);
  expect_refused(h, "geometry mismatch");
  h = matching_hello();
  h.set_disk_bytes(1 << 20);
  expect_refused(h, "disk size mismatch");
  h = matching_hello();
  h.set_protocol_version(2);
  expect_refused(h, "protocol version 2");
}

}  // namespace
}  // namespace ftd
