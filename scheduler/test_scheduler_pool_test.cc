// A TestScheduler reused by internal::TestSchedulerPool behaves as a fresh
// one: same seed, same trace hash, trace, reports, failures and shutdown,
// whatever the seed before it did (lanes, labels, timers, failures,
// deadlocks, tasks left over, observers).

#include "scheduler/internal/test_scheduler_pool.h"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

constexpr int kVariants = 9;

// Appends to a log when destroyed: shows when (and in which order) frames
// are torn down.
struct Noisy {
  std::vector<std::string>* log;
  std::string name;
  ~Noisy() { log->push_back("destroyed " + name); }
};

class CountingCost final : public PollCostModel {
 public:
  Duration PollCost(TaskId) override { return std::chrono::microseconds(3); }
};

class CountingObserver final : public TaskObserver {
 public:
  explicit CountingObserver(std::vector<std::string>& log) : log_(log) {}
  void OnTaskSpawned(TaskId task, TaskId parent) override {
    log_.push_back(absl::StrCat("observed spawn ", task.value, " by ", parent.value));
  }
  void OnTaskFinished(TaskId task) override { log_.push_back(absl::StrCat("observed end ", task.value)); }

 private:
  std::vector<std::string>& log_;
};

// What the test world outlives the scheduler with (events that tasks may
// still wait on at shutdown, the log, the observers).
struct World {
  std::vector<std::string> log;
  Event never_set{"never set"};
  CountingCost cost;
  CountingObserver observer{log};
};

Co<void> Yielder(World& w, int id, int yields) {
  Noisy noisy{&w.log, absl::StrCat("yielder ", id)};
  for (int i = 0; i < yields; ++i) {
    w.log.push_back(absl::StrCat("yielder ", id, " step ", i));
    co_await Yield();
  }
}

Co<void> Sleeper(World& w, TestScheduler& s, int id) {
  Noisy noisy{&w.log, absl::StrCat("sleeper ", id)};
  co_await Sleep(milliseconds(1 + s.rng().Below(20)));
  w.log.push_back(absl::StrCat("sleeper ", id, " woke at ", FormatDuration(s.Elapsed())));
}

Co<void> Waiter(World& w, int id) {
  Noisy noisy{&w.log, absl::StrCat("waiter ", id)};
  co_await w.never_set.Wait();
}

// One seed's scenario, by variant; returns what the test body saw.
std::string RunVariant(int variant, World& w, const std::shared_ptr<TestScheduler>& s) {
  std::string out;
  absl::Status status;
  // In every variant: a labeled task (a label deprioritized by an earlier
  // seed would run it last) and a seed-dependent draw from the test stream.
  SpawnLabeled(*s, TaskLabel("slow"), Yielder(w, 1000 + static_cast<int>(s->rng().Below(9)), 1))
      .Detach();
  switch (variant) {
    case 0:  // plain yields
      for (int i = 0; i < 4; ++i) Spawn(*s, Yielder(w, i, 3)).Detach();
      status = s->Run();
      break;
    case 1: {  // lanes
      auto a = ForegroundExecutor::ForNewLane(s, "client-a");
      auto b = ForegroundExecutor::ForNewLane(s, "client-b");
      for (int i = 0; i < 3; ++i) {
        a.Spawn(Yielder(w, 10 + i, 2)).Detach();
        b.Spawn(Yielder(w, 20 + i, 2)).Detach();
        Spawn(*s, Yielder(w, 30 + i, 1)).Detach();
      }
      status = s->Run();
      break;
    }
    case 2:  // labels, one of them deprioritized
      s->Deprioritize(TaskLabel("slow"));
      for (int i = 0; i < 3; ++i) {
        SpawnLabeled(*s, TaskLabel("slow"), Yielder(w, 40 + i, 2)).Detach();
        SpawnLabeled(*s, TaskLabel("fast"), Yielder(w, 50 + i, 2)).Detach();
      }
      status = s->Run();
      break;
    case 3:  // timers, some still pending when the seed ends
      for (int i = 0; i < 4; ++i) Spawn(*s, Sleeper(w, *s, i)).Detach();
      s->AdvanceClock(milliseconds(1 + s->rng().Below(10)));
      status = s->RunUntilIdle();
      break;
    case 4: {  // failures: Fail() and an exception from a detached task
      Spawn(*s, Yielder(w, 60, 5)).Detach();
      Spawn(*s, [&w, s]() -> Co<void> {
        co_await Yield();
        if (s->rng().Below(2) == 0) s->Fail("the invariant broke");
        w.log.push_back("thrower");
        throw std::runtime_error("boom");
      }).Detach();
      status = s->Run();
      s->AdvanceClock(milliseconds(-1));  // a second, bad-argument failure
      break;
    }
    case 5:  // a deadlock: tasks wait on an event nobody sets
      for (int i = 0; i < 2; ++i) Spawn(*s, Waiter(w, i)).Detach();
      Spawn(*s, Yielder(w, 70, 2)).Detach();
      status = s->Run();
      break;
    case 6: {  // idle tasks allowed one by one, an internal task, leftovers
      Task<void> idle = Spawn(*s, Waiter(w, 80));
      s->AllowIdle(idle.id());
      Task<void> internal = Spawn(*s, Yielder(w, 81, 2));
      s->MarkInternal(internal.id());
      internal.Detach();
      idle.Detach();
      Spawn(*s, Sleeper(w, *s, 82)).Detach();
      status = s->Run();
      break;
    }
    case 7:  // a poll cost model and a task observer, left installed
      s->SetPollCostModel(&w.cost);
      s->SetTaskObserver(&w.observer);
      for (int i = 0; i < 3; ++i) Spawn(*s, Sleeper(w, *s, 90 + i)).Detach();
      status = s->Run();
      break;
    case 8: {  // a budgeted BlockOn that runs out, the task left running
      Task<void> long_task = Spawn(*s, Yielder(w, 100, 50));
      (void)Spawn(*s, Yielder(w, 101, 50));  // dropped: cancelled now
      status = s->BlockOnTaskWithBudget(*long_task.state(), {.max_steps = 7});
      w.log.push_back(absl::StrCat("still running: ", s->IsTaskRunning(long_task.id())));
      long_task.Detach();
      break;
    }
  }
  absl::StrAppend(&out, "status: ", status.ToString(), "\n");
  absl::StrAppend(&out, "scheduler status: ", s->status().ToString(), "\n");
  absl::StrAppend(&out, "summary: ", s->RunSummary(), "\n");
  absl::StrAppend(&out, "hash ", s->TraceHash(), " steps ", s->step_count(), " time ",
                  FormatDuration(s->Elapsed()), " strategy ", s->strategy().ToString(), "\n");
  absl::StrAppend(&out, "lanes ", s->LaneCount(), ":");
  for (LaneId lane = 0; lane < s->LaneCount(); ++lane) absl::StrAppend(&out, " ", std::string(s->LaneName(lane)));
  absl::StrAppend(&out, "\n", s->DescribeLiveTasks(), "\n", s->DescribeWaitFor(), "\n");
  absl::StrAppend(&out, "user rng ", s->rng().Next64(), "\n");
  for (const TraceEntry& entry : s->trace()) absl::StrAppend(&out, entry.DebugString(), "\n");
  for (const TaskEvent& event : s->task_events()) {
    absl::StrAppend(&out, "event ", static_cast<int>(event.kind), " task ", event.task.id.value,
                    " step ", event.step, "\n");
  }
  return out;
}

// Options for a seed: every strategy, with and without a trace, idle tasks
// allowed or not.
TestSchedulerOptions OptionsFor(uint64_t seed) {
  static const char* const kStrategies[] = {"", "random", "fifo", "pct:3", "pos", "mix", "pct:2:k=30"};
  return {.seed = seed,
          .randomize_order = seed % 5 != 1,
          .strategy = kStrategies[(seed / kVariants) % 7],
          .max_steps = seed % 11 == 3 ? uint64_t{40} : uint64_t{100'000},
          .record_trace = seed % 2 == 0,
          .allow_idle_tasks = seed % 3 == 0};
}

// Runs `variant` on a scheduler from `acquire`, then lets go of it: the
// report includes what its shutdown did.
template <typename Acquire>
std::string RunSeed(uint64_t seed, int variant, Acquire acquire) {
  World world;
  std::string report;
  {
    std::shared_ptr<TestScheduler> s = acquire(OptionsFor(seed));
    report = RunVariant(variant, world, s);
    world.log.push_back("-- released --");
  }
  for (const std::string& line : world.log) absl::StrAppend(&report, line, "\n");
  return report;
}

TEST(TestSchedulerPoolTest, AReusedSchedulerReportsExactlyWhatAFreshOneDoes) {
  internal::TestSchedulerPool pool;
  uint64_t runs = 0;
  // Every variant follows every other one on the pooled scheduler.
  for (uint64_t seed = 0; seed < 300; ++seed) {
    const int variant = static_cast<int>((seed * 7 + seed / kVariants) % kVariants);
    const std::string fresh =
        RunSeed(seed, variant, [](TestSchedulerOptions o) { return TestScheduler::Create(o); });
    const std::string reused =
        RunSeed(seed, variant, [&](TestSchedulerOptions o) { return pool.Acquire(o); });
    ++runs;
    ASSERT_EQ(fresh, reused) << "seed " << seed << ", variant " << variant;
  }
  EXPECT_EQ(pool.reused(), runs - 1);
}

TEST(TestSchedulerPoolTest, TheVariantsCoverWhatTheyClaim) {
  // Guards the test above against scenarios that silently do nothing.
  auto fresh = [](TestSchedulerOptions o) { return TestScheduler::Create(o); };
  TestSchedulerOptions options{.seed = 4};
  auto run = [&](int variant) {
    World world;
    auto s = TestScheduler::Create(options);
    return RunVariant(variant, world, s);
  };
  EXPECT_THAT(run(1), HasSubstr("lanes 3: main client-a client-b"));
  // Variant 4 fails by Fail() or by the exception, by seed; both happen.
  bool failed_by_call = false, failed_by_exception = false;
  for (options.seed = 0; options.seed < 20; ++options.seed) {
    const std::string report = run(4);
    EXPECT_THAT(report, HasSubstr("later failures"));
    failed_by_call |= report.find("status: ABORTED: the test failed the run") != std::string::npos;
    failed_by_exception |= report.find("status: ABORTED: exception escaped") != std::string::npos;
  }
  EXPECT_TRUE(failed_by_call);
  EXPECT_TRUE(failed_by_exception);
  options.seed = 4;
  EXPECT_THAT(run(5), HasSubstr("deadlock"));
  EXPECT_THAT(run(6), HasSubstr("idle by design"));
  EXPECT_THAT(run(8), HasSubstr("used up its budget"));
  EXPECT_THAT(RunSeed(4, 3, fresh), HasSubstr("destroyed sleeper"));
  EXPECT_THAT(RunSeed(4, 7, fresh), HasSubstr("observed spawn 2 by 0"));
}

TEST(TestSchedulerPoolTest, ShutdownHappensWhenTheLastPointerGoes) {
  internal::TestSchedulerPool pool;
  std::vector<std::string> log;
  {
    std::shared_ptr<TestScheduler> s = pool.Acquire({.seed = 1});
    Spawn(*s, [&log]() -> Co<void> {
      Noisy noisy{&log, "sleeper"};
      co_await Sleep(milliseconds(5));
    }).Detach();
    ASSERT_TRUE(s->RunUntilIdle().ok());
    std::shared_ptr<TestScheduler> copy = s;
    s.reset();
    EXPECT_TRUE(log.empty()) << "a copy still holds it";
  }
  EXPECT_THAT(log, ::testing::ElementsAre("destroyed sleeper"));
}

TEST(TestSchedulerPoolTest, ASchedulerSomeoneStillHoldsIsNotReused) {
  World world;
  internal::TestSchedulerPool pool;
  std::shared_ptr<TestScheduler> kept = pool.Acquire({.seed = 1});
  Spawn(*kept, Yielder(world, 1, 0)).Detach();
  std::shared_ptr<TestScheduler> next = pool.Acquire({.seed = 2});
  EXPECT_NE(kept.get(), next.get());
  EXPECT_EQ(pool.reused(), 0u);
  EXPECT_EQ(kept->seed(), 1u);
  EXPECT_EQ(kept->LiveTaskCount(), 1u) << "the kept scheduler was left alone";
  ASSERT_TRUE(kept->Run().ok());
}

TEST(TestSchedulerPoolTest, AWeakPointerFromAnEarlierSeedExpires) {
  internal::TestSchedulerPool pool;
  std::weak_ptr<TestScheduler> weak = pool.Acquire({.seed = 1});
  EXPECT_TRUE(weak.expired());
  std::shared_ptr<TestScheduler> next = pool.Acquire({.seed = 2});
  EXPECT_EQ(pool.reused(), 1u);
  EXPECT_TRUE(weak.expired()) << "the reused scheduler must not be reachable from seed 1";
}

TEST(TestSchedulerPoolTest, ASchedulerReleasedAfterThePoolIsGoneIsDestroyed) {
  std::vector<std::string> log;
  std::shared_ptr<TestScheduler> s;
  {
    internal::TestSchedulerPool pool;
    s = pool.Acquire({.seed = 3});
  }
  Spawn(*s, [&log]() -> Co<void> {
    Noisy noisy{&log, "sleeper"};
    co_await Sleep(milliseconds(5));
  }).Detach();
  ASSERT_TRUE(s->RunUntilIdle().ok());
  s.reset();  // LSan: nothing leaks
  EXPECT_THAT(log, ::testing::ElementsAre("destroyed sleeper"));
}

}  // namespace
}  // namespace simsched
