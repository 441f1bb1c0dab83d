#include "checkpoint/output_commit_buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace ftd {
namespace {

TEST(OutputCommitBuffer, HoldsUntilItsEpochIsCommitted) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  EXPECT_EQ(buf.push(1), 1u);
  EXPECT_EQ(buf.push(2), 1u);
  EXPECT_EQ(buf.advance_epoch(), 2u);
  buf.push(3);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(buf.commit(0), 0u);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(buf.commit(1), 2u);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
  EXPECT_EQ(buf.stats().held, 1u);
  buf.commit(2);
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3}));
}

TEST(OutputCommitBuffer, CommitOfLaterEpochReleasesEarlierInOrder) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  for (int e = 0; e < 5; ++e) {
    buf.push(e * 10);
    buf.push(e * 10 + 1);
    buf.advance_epoch();
  }
  buf.commit(3);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 10, 11, 20, 21}));
  buf.commit(2);  // a stale ack releases nothing more
  EXPECT_EQ(out.size(), 6u);
}

TEST(OutputCommitBuffer, DropAllLosesHeldOutputOnly) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  buf.push(1);
  buf.advance_epoch();
  buf.push(2);
  buf.commit(1);
  EXPECT_EQ(buf.drop_all(), 1u);
  buf.commit(5);
  EXPECT_EQ(out, (std::vector<int>{1}));
  EXPECT_EQ(buf.stats().dropped, 1u);
}

TEST(OutputCommitBuffer, PassthroughFlushesThenForwards) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  buf.push(1);
  buf.set_passthrough();
  buf.push(2);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
}

TEST(OutputCommitBuffer, HoldAfterPassthroughWaitsForTheOpenEpochsAck) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  buf.set_passthrough();
  buf.push(1);  // unprotected: straight out
  const uint64_t epoch = buf.advance_epoch();
  buf.hold();  // re-protected from this capture on
  buf.push(2);
  EXPECT_EQ(out, (std::vector<int>{1}));
  EXPECT_EQ(buf.commit(epoch - 1), 0u) << "an earlier epoch's ack must not release it";
  EXPECT_EQ(buf.commit(epoch), 1u);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
}

TEST(OutputCommitBuffer, RunningAloneReleasesOnlyWhileAllowedAndInOrder) {
  std::vector<int> out;
  bool allowed = false;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  buf.push(1);
  buf.set_release_unacked([&] { return allowed; });
  EXPECT_TRUE(out.empty()) << "released while the arbiter said no";
  allowed = true;
  buf.push(2);  // releases 1 and 2, in order
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
  allowed = false;  // the lease lapsed: from the next item on, held again
  buf.push(3);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(buf.stats().held, 1u);
  buf.set_release_unacked(nullptr);  // hold: only acks release
  allowed = true;
  buf.push(4);
  EXPECT_EQ(out.size(), 2u);
  buf.commit(1);
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4}));
}

TEST(OutputCommitBuffer, FencedReleasesNothingEver) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  buf.push(1);
  buf.push(2);
  int dropped = 0;
  EXPECT_EQ(buf.fence([&](int&&) { ++dropped; }), 2u);
  EXPECT_EQ(dropped, 2);
  buf.push(3);
  EXPECT_EQ(buf.commit(5), 0u);
  buf.set_release_unacked([] { return true; });
  buf.push(4);
  buf.set_passthrough();
  buf.push(5);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(buf.stats().released, 0u);
}

TEST(OutputCommitBuffer, ConcurrentProducersAndCommitsNeverReorder) {
  std::vector<int> out;
  OutputCommitBuffer<int> buf([&](int&& v) { out.push_back(v); });
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (int i = 0; i < 100000; ++i) buf.push(i);
    done = true;
  });
  uint64_t e = 1;
  while (!done) {
    e = buf.advance_epoch();
    buf.commit(e - 1);
  }
  producer.join();
  buf.advance_epoch();
  buf.commit(e + 1);
  ASSERT_EQ(out.size(), 100000u);
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(out[i], i);
}

// The listener's owner (the checkpoint pipeline) may die right after it
// cleared the listener: clearing waits for a call that is in flight.
TEST(OutputCommitBuffer, ClearingTheListenerWaitsForACallInFlight) {
  OutputCommitBuffer<int> buf([](int&&) {});
  std::promise<void> entered, leave;
  std::shared_future<void> may_leave = leave.get_future().share();
  std::atomic<bool> listener_done{false};
  buf.set_on_held([&] {
    entered.set_value();
    may_leave.wait();
    listener_done = true;
  });
  std::thread producer([&] { buf.push(1); });
  entered.get_future().wait();
  auto cleared = std::async(std::launch::async, [&] { buf.set_on_held(nullptr); });
  EXPECT_EQ(cleared.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "set_on_held(nullptr) returned while the old listener was still running";
  leave.set_value();
  cleared.get();
  EXPECT_TRUE(listener_done);
  producer.join();
  buf.push(2);  // no listener any more: nothing to call
  EXPECT_EQ(buf.stats().held, 2u);
}

// Same for run_alone's predicate (it asks a failover monitor that dies with
// the VM's protection).
TEST(OutputCommitBuffer, ClearingTheRunAlonePredicateWaitsForACallInFlight) {
  OutputCommitBuffer<int> buf([](int&&) {});
  std::promise<void> entered, leave;
  std::shared_future<void> may_leave = leave.get_future().share();
  std::atomic<int> calls{0};
  buf.push(1);
  std::thread alone([&] {
    buf.set_release_unacked([&] {
      if (calls++ == 0) {
        entered.set_value();
        may_leave.wait();
      }
      return false;
    });
  });
  entered.get_future().wait();
  auto cleared = std::async(std::launch::async, [&] { buf.set_release_unacked(nullptr); });
  EXPECT_EQ(cleared.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  leave.set_value();
  cleared.get();
  alone.join();
  const int before = calls;
  buf.push(2);
  EXPECT_EQ(calls, before) << "a cleared predicate was called";
}

}  // namespace
}  // namespace ftd
