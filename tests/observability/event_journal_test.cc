// The event ring fed by log lines: which lines it keeps, bounds, filtering,
// and that a logger with the sink records what components log.
#include "observability/event_journal.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <thread>

namespace ftd {
namespace {

TEST(EventJournal, KeepsStateChangesAndDecisionsNotPeriodicLines) {
  EventJournal j;
  j.log("vm.state vm=web1 role=primary from=syncing to=protected after_ms=10 reason=\"acked\"");
  j.log("sync.progress phase=copy percent=50 pages=1/2");
  j.log("checkpoint.applied epoch=3");
  j.log("failover.done vm=web1 epoch=7 activation_us=1500 ok");
  j.log("sync.start pages=10 bytes=40960 tracker=exact");
  auto events = j.since(0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].name(), "vm.state");
  EXPECT_EQ(events[0].vm(), "web1");
  EXPECT_EQ(events[0].fields(),
            "vm=web1 role=primary from=syncing to=protected after_ms=10 reason=\"acked\"");
  EXPECT_EQ(events[1].name(), "failover.done");
  EXPECT_EQ(events[2].vm(), "");  // names no VM
  EXPECT_LT(events[0].seq(), events[1].seq());
  EXPECT_GT(events[0].unix_ms(), 0);
}

TEST(EventJournal, BoundedRingCountsEverything) {
  EventJournal j(4);
  for (int i = 0; i < 10; ++i) j.log(fmt::format("vm.state vm=a to=x{}", i));
  auto events = j.since(0);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events.front().fields(), "vm=a to=x6");
  EXPECT_EQ(j.last_seq(), 10u);
  EXPECT_EQ((j.counts().at({"a", "vm.state"})), 10u);
}

TEST(EventJournal, FiltersByVmAndReportsNewestSeq) {
  EventJournal j;
  j.log("vm.role vm=a from=secondary to=active");
  j.log("vm.role vm=b from=secondary to=active");
  j.log("ftd.start role=primary");
  uint64_t newest = 0;
  auto events = j.since(0, "b", &newest);
  ASSERT_EQ(events.size(), 2u);  // b's, and the one naming no VM
  EXPECT_EQ(events[0].vm(), "b");
  EXPECT_EQ(newest, 3u);
  EXPECT_TRUE(j.since(3).empty());
}

TEST(EventJournal, FieldValue) {
  EXPECT_EQ(field_value("x vm=web1 to=a", "vm"), "web1");
  EXPECT_EQ(field_value("x myvm=no vm=yes", "vm"), "yes");
  EXPECT_EQ(field_value("x why=\"a b\" c=d", "why"), "a b");
  EXPECT_EQ(field_value("x vm", "vm"), "");
  EXPECT_EQ(field_value("", "vm"), "");
}

TEST(EventJournal, WaitWakesOnNewEvent) {
  EventJournal j;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    j.log("vm.fenced vm=a reason=\"lost lease\"");
  });
  const auto t0 = std::chrono::steady_clock::now();
  j.wait_for_newer(0, std::chrono::seconds(10));
  writer.join();
  EXPECT_EQ(j.last_seq(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(EventJournal, SinkRecordsWhatALoggerLogsEvenAboveItsOwnLevel) {
  auto journal = std::make_shared<EventJournal>();
  auto sink = EventJournal::sink(journal);
  spdlog::logger logger("test", sink);
  logger.info("vm.state vm={} from={} to={}", "w", "waiting", "syncing");
  logger.info("sync.round n=1 dirty_pages=3");
  auto events = journal->since(0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields(), "vm=w from=waiting to=syncing");
}

}  // namespace
}  // namespace ftd
