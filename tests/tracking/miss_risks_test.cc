// Configuration checks for ways a page-table tracker can miss writes.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/mapped_region.h"
#include "tracking/miss_risks.h"

namespace ftd {
namespace {

TEST(MissRisks, DevicesThatBypassOrDiscardAreRefused) {
  EXPECT_FALSE(check_qemu_argv({"qemu-system-x86_64", "-m", "512M"}).refused());
  EXPECT_TRUE(check_qemu_argv({"-device", "virtio-balloon-pci,id=b0"}).refused());
  EXPECT_TRUE(check_qemu_argv({"-device", "virtio-mem-pci,memdev=m1"}).refused());
  EXPECT_TRUE(
      check_qemu_argv({"-chardev", "socket,id=c", "-device", "vhost-user-blk-pci"}).refused());
}

class HostFilesTest : public ::testing::Test {
 protected:
  void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  void SetUp() override {
    char tmpl[] = "/tmp/ftd-miss-risks-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    files_ = {.shmem_enabled = dir_ + "/shmem_enabled", .swaps = dir_ + "/swaps"};
    write(files_.swaps, "Filename\tType\tSize\tUsed\tPriority\n");
    write(files_.shmem_enabled, "always within_size advise [never] deny force\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  HostFiles files_;
};

TEST_F(HostFilesTest, NeverAndNoSwapIsClean) {
  EXPECT_TRUE(check_host(1 << 30, 0, files_).risks.empty());
}

TEST_F(HostFilesTest, ShmemHugePagesWarn) {
  write(files_.shmem_enabled, "always [within_size] advise never deny force\n");
  auto r = check_host(1 << 30, 0, files_);
  ASSERT_EQ(r.risks.size(), 1u);
  EXPECT_EQ(r.risks[0].severity, MissRisk::Severity::kWarn);
  EXPECT_NE(r.risks[0].what.find("within_size"), std::string::npos);
}

TEST_F(HostFilesTest, SwapWarnsUnlessRamIsLocked) {
  write(files_.swaps, "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048576 0 -2\n");
  EXPECT_EQ(check_host(1 << 30, 0, files_).risks.size(), 1u);
  EXPECT_TRUE(check_host(1 << 30, 1 << 30, files_).risks.empty());
}

TEST(MissRisks, SecondWritableMappingOfTheMemfdIsRefused) {
  UniqueFd fd(::memfd_create("ftd-miss-risk", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::ftruncate(fd.get(), 1 << 20), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  auto first = MappedRegion::map_fd(fd.get(), 1 << 20, true);
  ASSERT_TRUE(first);
  // One writable mapping (ours, standing in for QEMU's) is how it must be.
  EXPECT_FALSE(check_other_writers(::getpid(), st.st_ino).refused());
  auto reader = MappedRegion::map_fd(fd.get(), 1 << 20, false);
  ASSERT_TRUE(reader);
  EXPECT_FALSE(check_other_writers(::getpid(), st.st_ino).refused()) << "read-only is harmless";
  auto second = MappedRegion::map_fd(fd.get(), 1 << 20, true);
  ASSERT_TRUE(second);
  EXPECT_TRUE(check_other_writers(::getpid(), st.st_ino).refused());
}

}  // namespace
}  // namespace ftd
