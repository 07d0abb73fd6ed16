// LiveTaskIndex (the TestScheduler's live-task bookkeeping) against a
// std::map model, over seeded random spawn/finish sequences, both directly
// and through a TestScheduler's public lookups.

#include "scheduler/internal/live_task_index.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"

namespace simsched {
namespace {

using internal::LiveTaskIndex;
using internal::TaskHeader;

// A header that is never scheduled: enough for the index, which reads only
// the id and the slot.
class FakeHeader final : public TaskHeader {
 public:
  FakeHeader(Scheduler& scheduler, uint64_t id)
      : TaskHeader(scheduler, internal::ScheduleKind::kBackground, {}, nullptr, true) {
    metadata.id = TaskId{id};
  }

 private:
  std::coroutine_handle<> RootFrame() const noexcept override { return {}; }
  std::exception_ptr HarvestResult() noexcept override { return nullptr; }
  void Free() noexcept override {}
};

std::vector<TaskId> IdsOf(const LiveTaskIndex& index) {
  std::vector<TaskId> ids;
  index.ForEach([&ids](TaskHeader& task) { ids.push_back(task.metadata.id); });
  return ids;
}

TEST(LiveTaskIndexTest, MatchesAModelOverRandomAddsAndRemoves) {
  TestScheduler scheduler;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Rng rng(seed);
    LiveTaskIndex index;
    std::vector<std::unique_ptr<FakeHeader>> headers;  // every header made
    std::map<uint64_t, FakeHeader*> model;
    uint64_t next_id = 1;
    size_t peak = 0;  // the most tasks live at once so far
    for (int op = 0; op < 4000; ++op) {
      // Phases that grow and phases that drain, so squeezing happens often.
      const bool growing = (op / 500) % 2 == 0;
      if (model.empty() || rng.Chance(growing ? 3 : 1, 4)) {
        // Ids skip now and then, as ids taken by another index would.
        next_id += rng.Chance(1, 8) ? 1 + rng.Below(3) : 0;
        headers.push_back(std::make_unique<FakeHeader>(scheduler, next_id));
        index.Add(headers.back().get());
        model.emplace(next_id, headers.back().get());
        ++next_id;
      } else {
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng.Below(model.size())));
        ASSERT_TRUE(index.Remove(*it->second));
        EXPECT_FALSE(index.Remove(*it->second)) << "removed twice";
        model.erase(it);
      }
      ASSERT_EQ(index.size(), model.size());
      peak = std::max(peak, model.size());
      EXPECT_LE(index.slot_count(), std::max<size_t>(4 * peak, 16));
      if (op % 97 == 0) {
        std::vector<TaskId> want;
        for (const auto& [id, header] : model) want.push_back(TaskId{id});
        ASSERT_EQ(IdsOf(index), want);
      }
      // Lookups of live, finished and never-made ids.
      for (int probe = 0; probe < 4; ++probe) {
        const uint64_t id = rng.Below(next_id + 2);
        auto it = model.find(id);
        EXPECT_EQ(index.Find(TaskId{id}), it == model.end() ? nullptr : it->second)
            << "id " << id;
      }
    }
  }
}

TEST(LiveTaskIndexTest, RejectsATaskItNeverHeld) {
  TestScheduler scheduler;
  LiveTaskIndex index;
  FakeHeader a(scheduler, 1), b(scheduler, 2);
  index.Add(&a);
  EXPECT_FALSE(index.Remove(b));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find(TaskId{0}), nullptr);
  EXPECT_EQ(index.Find(TaskId{1}), &a);
  index.Clear();
  EXPECT_EQ(index.Find(TaskId{1}), nullptr);
}

Co<void> SleepLong() { co_await Sleep(std::chrono::hours(1)); }

// Thousands of tasks finishing (cancelled) in a seeded random order, with
// spawns in between: every public lookup agrees with a model.
TEST(LiveTaskIndexTest, SchedulerLookupsAfterThousandsOfSpawnsAndFinishes) {
  TestScheduler scheduler;
  Rng rng(7);
  std::map<uint64_t, bool> live;  // id -> live
  std::vector<TaskId> spawned;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 1000; ++i) {
      Task<void> task = Spawn(scheduler, SleepLong());
      spawned.push_back(task.id());
      live[task.id().value] = true;
      task.Detach();
    }
    ASSERT_TRUE(scheduler.RunUntilIdle().ok());
    // Finish most of the live ones in random order.
    std::vector<uint64_t> ids;
    for (const auto& [id, alive] : live) {
      if (alive) ids.push_back(id);
    }
    for (size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[rng.Below(i)]);
    ids.resize(ids.size() * 4 / 5);
    for (uint64_t id : ids) {
      ASSERT_TRUE(scheduler.CancelTask(TaskId{id}));
      EXPECT_FALSE(scheduler.CancelTask(TaskId{id}));
      live[id] = false;
    }
    std::vector<TaskId> want;
    for (const auto& [id, alive] : live) {
      if (alive) want.push_back(TaskId{id});
    }
    ASSERT_EQ(scheduler.LiveTasks(), want);
    ASSERT_EQ(scheduler.LiveTaskCount(), want.size());
    for (TaskId id : spawned) {
      EXPECT_EQ(scheduler.IsTaskRunning(id), live[id.value]) << id;
      if (!live[id.value]) {
        EXPECT_EQ(scheduler.DescribeTask(id),
                  "task " + std::to_string(id.value) + ": not running");
      }
    }
  }
}

}  // namespace
}  // namespace simsched
