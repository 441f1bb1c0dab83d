#include "witness/lease_table.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "witness/lease_store.h"

namespace ftd::witness {
namespace {
using namespace std::chrono_literals;

TEST(LeaseTable, GrantRenewRefuseExpire) {
  const auto t0 = Clock::now();
  LeaseTable t({}, t0, 1000ms);
  auto d = t.decide("vm", "A", false, t0);
  EXPECT_TRUE(d.granted && d.new_term);
  EXPECT_EQ(d.term, 1u);
  t.commit("vm", d, t0);
  d = t.decide("vm", "B", false, t0 + 999ms);
  EXPECT_FALSE(d.granted);
  EXPECT_EQ(d.holder, "A");
  EXPECT_EQ(d.remaining, 1ms);
  d = t.decide("vm", "A", false, t0 + 900ms);  // renewal keeps the term
  EXPECT_TRUE(d.granted && !d.new_term);
  EXPECT_EQ(d.term, 1u);
  t.commit("vm", d, t0 + 900ms);
  EXPECT_FALSE(t.decide("vm", "B", false, t0 + 1899ms).granted);
  d = t.decide("vm", "B", false, t0 + 1900ms);  // expired: new term for B
  EXPECT_TRUE(d.granted && d.new_term);
  EXPECT_EQ(d.term, 2u);
  t.commit("vm", d, t0 + 1900ms);
  d = t.decide("vm", "A", false, t0 + 2000ms);
  EXPECT_FALSE(d.granted);
  EXPECT_EQ(d.term, 2u);
  EXPECT_EQ(t.decide("other", "A", false, t0).term, 1u);  // VMs are independent
}

// Planned migration: the holder releases, the peer gets a new term at once;
// nobody else can release it.
TEST(LeaseTable, HolderReleaseLetsThePeerTakeOverAtOnce) {
  const auto t0 = Clock::now();
  LeaseTable t({}, t0, 1000ms);
  t.commit("vm", t.decide("vm", "A", false, t0), t0);
  EXPECT_FALSE(t.release("vm", "B", t0 + 10ms)) << "only the holder releases";
  EXPECT_FALSE(t.decide("vm", "B", false, t0 + 10ms).granted);
  EXPECT_TRUE(t.release("vm", "A", t0 + 10ms));
  EXPECT_EQ(t.lease_of("vm").holder, "A");
  auto d = t.decide("vm", "B", false, t0 + 11ms);
  EXPECT_TRUE(d.granted && d.new_term);
  EXPECT_EQ(d.term, 2u);
  EXPECT_FALSE(t.release("unknown", "A", t0));
}

// Re-protection: only the holder clears its alone mark, and only with
// rejoined; a rejoined request that is also alone keeps it.
TEST(LeaseTable, OnlyTheHolderClearsItsAloneMark) {
  const auto t0 = Clock::now();
  LeaseTable t({}, t0, 1000ms);
  t.commit("vm", t.decide("vm", "A", true, t0), t0);
  EXPECT_FALSE(t.decide("vm", "B", false, t0 + 5s, true).granted) << "B cannot clear A's mark";
  EXPECT_TRUE(t.decide("vm", "A", false, t0 + 10ms).alone) << "sticky without rejoined";
  EXPECT_TRUE(t.decide("vm", "A", true, t0 + 10ms, true).alone);
  auto d = t.decide("vm", "A", false, t0 + 10ms, true);
  EXPECT_TRUE(d.granted);
  EXPECT_FALSE(d.alone);
  EXPECT_TRUE(d.must_persist) << "the cleared mark must survive a witness restart";
  t.commit("vm", d, t0 + 10ms);
  d = t.decide("vm", "B", false, t0 + 1011ms);
  EXPECT_TRUE(d.granted && d.new_term) << d.reason;
}

TEST(LeaseTable, AfterRestartEveryLeaseRunsAFullDurationAgain) {
  const auto t0 = Clock::now();
  LeaseTable t({{"vm", {7, "A"}}}, t0, 1000ms);
  EXPECT_FALSE(t.decide("vm", "B", false, t0 + 999ms).granted);
  auto d = t.decide("vm", "A", false, t0 + 10ms);
  EXPECT_TRUE(d.granted && !d.new_term);
  EXPECT_EQ(d.term, 7u);
  d = t.decide("vm", "B", false, t0 + 1000ms);
  EXPECT_TRUE(d.granted);
  EXPECT_EQ(d.term, 8u);
}

TEST(LeaseTable, AloneMarkIsStickyAndKeepsEveryoneElseOut) {
  const auto t0 = Clock::now();
  LeaseTable t({}, t0, 1000ms);
  auto d = t.decide("vm", "A", false, t0);
  t.commit("vm", d, t0);
  d = t.decide("vm", "A", true, t0 + 100ms);  // A runs alone: must be persisted
  EXPECT_TRUE(d.granted && d.alone && d.must_persist && !d.new_term);
  t.commit("vm", d, t0 + 100ms);
  d = t.decide("vm", "A", false, t0 + 200ms);  // a renewal cannot clear it
  EXPECT_TRUE(d.granted && d.alone && !d.must_persist);
  t.commit("vm", d, t0 + 200ms);
  d = t.decide("vm", "B", false, t0 + 10s);  // expired long ago: still refused
  EXPECT_FALSE(d.granted);
  EXPECT_NE(d.reason.find("ran alone"), std::string::npos) << d.reason;
  d = t.decide("vm", "A", false, t0 + 10s);  // the holder itself gets a new term
  EXPECT_TRUE(d.granted && d.new_term && d.alone);
  EXPECT_EQ(d.term, 2u);
  // Survives a restart of the witness.
  LeaseTable r(t.persisted_with("vm", d), t0, 1000ms);
  EXPECT_FALSE(r.decide("vm", "B", false, t0 + 5s).granted);
}

TEST(LeaseStore, RoundTripAndCorruptFileRefused) {
  const std::string dir = ::testing::TempDir() + "/lease-store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  LeaseStore s(dir);
  EXPECT_TRUE(s.load()->empty());
  PersistedTable table{{"a", {3, "x"}}, {"b", {9, "y", true}}};
  ASSERT_TRUE(s.save(table));
  EXPECT_EQ(*s.load(), table);
  EXPECT_FALSE(std::filesystem::exists(dir + "/leases.json.tmp"));
  std::ofstream(s.path()) << "{\"leases\": {\"a\": {\"term\": ";
  auto bad = s.load();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace ftd::witness
