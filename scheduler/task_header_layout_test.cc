// The task header's packed fields (metadata, wait site) give back exactly
// what was stored, and the header stays within its size budget: every Co
// frame reserves room for one (scheduler/co.h), so its size is per-frame
// memory (docs/performance.md, Memory).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/internal/packed_task_metadata.h"
#include "scheduler/internal/pick_lookahead.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/waker.h"

namespace simsched {
namespace {

using internal::PackedTaskMetadata;
using internal::TaskHeader;

class FakeHeader final : public TaskHeader {
 public:
  explicit FakeHeader(Scheduler& scheduler)
      : TaskHeader(scheduler, internal::ScheduleKind::kBackground, {}, nullptr, true) {}

 private:
  std::coroutine_handle<> RootFrame() const noexcept override { return {}; }
  std::exception_ptr HarvestResult() noexcept override { return nullptr; }
  void Free() noexcept override {}
};

TEST(TaskHeaderLayoutTest, HeaderAndFrameRoomStayWithinBudget) {
#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT
  if constexpr (sizeof(void*) == 8) {
    EXPECT_LE(sizeof(PackedTaskMetadata), 16u);
    // 112 before issue 16's sixth round (the wait site moved to the
    // awaiter: internal/wait_site.h), 128 before the fifth.
    EXPECT_LE(sizeof(TaskHeader), 88u);
    EXPECT_LE(internal::kTaskRoomBytes<void>, 96u);
    EXPECT_LE(internal::kTaskRoomBytes<int>, 96u);
    // The header ends where the room does, right in front of the frame.
    EXPECT_EQ(internal::kTaskHeaderOffset<void> + sizeof(TaskHeader),
              internal::kTaskRoomBytes<void>);
    // Every Co frame carries a promise; every sleeping frame a SleepAwaiter.
    EXPECT_LE(sizeof(internal::CoPromise<void>), 16u);
    // 16 since issue 16's session 19 (the wait site interned when the
    // awaiter is made, in place of the location); 32 before.
    EXPECT_LE(sizeof(SleepAwaiter), 16u);
    // The words a poll reads (the id, which the TestScheduler's step hashes
    // into the trace, the state, the reference count and flags, the leaf)
    // are the header's last 32 bytes, right in front of the frame of a
    // Co<void> root; the step's prefetch (internal/pick_lookahead.h) counts
    // on it.
    TestScheduler scheduler;
    FakeHeader header(scheduler);
    const std::ptrdiff_t id_offset =
        reinterpret_cast<const char*>(&header.metadata.id) -
        reinterpret_cast<const char*>(static_cast<const TaskHeader*>(&header));
    EXPECT_EQ(id_offset + static_cast<std::ptrdiff_t>(internal::kHotHeaderBytes),
              static_cast<std::ptrdiff_t>(sizeof(TaskHeader)));
  }
#else
  GTEST_SKIP() << "budget is for toolchains with std::source_location";
#endif
}

TEST(TaskHeaderLayoutTest, PackedMetadataRoundTripsEveryCombination) {
  const TaskLabel label("layout-test");
  for (bool with_label : {false, true}) {
    for (std::optional<SessionId> session :
         {std::optional<SessionId>(), std::optional<SessionId>(SessionId{0}),
          std::optional<SessionId>(SessionId{7}),
          std::optional<SessionId>(SessionId{UINT64_MAX})}) {
      PackedTaskMetadata packed;
      packed.id = TaskId{42};
      // Either order of setting leaves the other field alone.
      packed.set_session(session);
      packed.set_label(with_label ? std::optional<TaskLabel>(label) : std::nullopt);
      packed.set_session(session);
      const TaskMetadata full = packed.Unpack();
      EXPECT_EQ(full.id, TaskId{42});
      EXPECT_EQ(full.label, with_label ? std::optional<TaskLabel>(label) : std::nullopt);
      EXPECT_EQ(full.session, session);
      EXPECT_EQ(packed.has_label(), with_label);
      EXPECT_EQ(packed.DebugString(), full.DebugString());
    }
  }
  PackedTaskMetadata cleared;
  cleared.set_label(label);
  cleared.set_session(SessionId{3});
  cleared.set_label(std::nullopt);
  EXPECT_EQ(cleared.label(), std::nullopt);
  EXPECT_EQ(cleared.session(), SessionId{3});
  cleared.set_session(std::nullopt);
  EXPECT_EQ(cleared.session(), std::nullopt);
}

class Target final : public WaitTarget {
 public:
  std::string DescribeBlocker() const override { return "test target"; }
};

TEST(TaskHeaderLayoutTest, PackedWaitSiteRoundTrips) {
  TestScheduler scheduler;
  FakeHeader header(scheduler);
  EXPECT_TRUE(header.wait_site().what.empty());
  EXPECT_EQ(header.wait_site().where.line(), 0u);
  EXPECT_STREQ(header.wait_site().where.function_name(), "");  // never a null name

  const std::string owned = "a name owned by the awaited object";
  const std::string_view what(owned.data(), 6);  // not NUL-terminated there
  const SourceLocation where = SourceLocation::current();
  Target target;
  header.SetWaitSite(WaitSite{what, where, {}, &target});
  WaitSite site = header.wait_site();
  EXPECT_EQ(site.what, "a name");
  EXPECT_EQ(site.what.data(), owned.data());
  EXPECT_EQ(site.where.line(), where.line());
  EXPECT_STREQ(site.where.file_name(), where.file_name());
  EXPECT_EQ(site.target, &target);
  EXPECT_EQ(site.awaited_task, TaskId{});

  const TaskId big{(uint64_t{1} << 62) + 5};
  header.SetWaitSite(WaitSite{"task", {}, big, nullptr});
  site = header.wait_site();
  EXPECT_EQ(site.what, "task");
  EXPECT_EQ(site.awaited_task, big);
  EXPECT_EQ(site.target, nullptr);
  EXPECT_EQ(site.where.line(), 0u);

  header.SetWaitSite(WaitSite{"plain", where, {}, nullptr});
  site = header.wait_site();
  EXPECT_EQ(site.what, "plain");
  EXPECT_EQ(site.target, nullptr);
  EXPECT_EQ(site.awaited_task, TaskId{});

  // The length shares a word with the address up to 65,534 bytes; a longer
  // description is kept whole all the same (an interned copy), never cut.
  for (size_t length : {size_t{0}, size_t{65534}, size_t{65535}, size_t{200000}}) {
    const std::string text(length, 'w');
    header.SetWaitSite(WaitSite{text, where, {}, &target});
    site = header.wait_site();
    EXPECT_EQ(site.what, text) << length;
    EXPECT_EQ(site.target, &target);
    EXPECT_EQ(site.where.line(), where.line());
  }
}

// The lane and the spawn location ride in the metadata's interned spawn
// site; every combination with a label and a session reads back.
TEST(TaskHeaderLayoutTest, PackedMetadataKeepsLaneAndLocation) {
  const TaskLabel label("layout-lane");
  const SourceLocation here = SourceLocation::current();
  for (uint32_t lane : {0u, 1u, 7u, UINT32_MAX}) {
    for (std::optional<SessionId> session :
         {std::optional<SessionId>(), std::optional<SessionId>(SessionId{5}),
          std::optional<SessionId>(SessionId{UINT64_MAX})}) {
      PackedTaskMetadata packed;
      packed.set_session(session);
      packed.set_spawn(here, label, lane);
      EXPECT_EQ(packed.lane(), lane);
      EXPECT_EQ(packed.label(), label);
      EXPECT_EQ(packed.session(), session);
      EXPECT_EQ(packed.spawn_location().line(), here.line());
      EXPECT_STREQ(packed.spawn_location().function_name(), here.function_name());
      packed.set_lane(3);
      EXPECT_EQ(packed.lane(), 3u);
      EXPECT_EQ(packed.label(), label);
      EXPECT_EQ(packed.session(), session);
      EXPECT_EQ(packed.spawn_location().line(), here.line());
    }
  }
}

}  // namespace
}  // namespace simsched
