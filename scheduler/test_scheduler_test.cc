#include "scheduler/test_scheduler.h"

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

// A scenario with real interleaving: workers that yield, sleep for
// seed-dependent times, spawn children and record the order of their steps.
struct Scenario {
  std::vector<int> order;

  Co<void> Worker(TestScheduler& s, int id) {
    for (int i = 0; i < 3; ++i) {
      order.push_back(id);
      co_await Yield();
    }
    co_await Sleep(milliseconds(1 + s.rng().Below(5)));
    order.push_back(100 + id);
    Task<void> child = Spawn(s, [this, id]() -> Co<void> {
      order.push_back(200 + id);
      co_await Yield();
    });
    co_await child;
  }

  void Run(TestScheduler& s) {
    for (int id = 0; id < 6; ++id) Spawn(s, Worker(s, id)).Detach();
    ASSERT_TRUE(s.Run().ok());
  }
};

struct Outcome {
  std::vector<int> order;
  std::vector<TraceEntry> trace;
  uint64_t hash;
};

Outcome RunScenario(uint64_t seed, bool record_trace = true) {
  TestScheduler s({.seed = seed, .record_trace = record_trace});
  Scenario scenario;
  scenario.Run(s);
  return {scenario.order, s.trace(), s.TraceHash()};
}

TEST(TestSchedulerTest, SameSeedGivesIdenticalTraceOverAThousandSeeds) {
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    Outcome a = RunScenario(seed);
    Outcome b = RunScenario(seed);
    ASSERT_EQ(a.hash, b.hash) << "seed " << seed;
    ASSERT_EQ(a.order, b.order) << "seed " << seed;
    ASSERT_EQ(a.trace.size(), b.trace.size()) << "seed " << seed;
    for (size_t i = 0; i < a.trace.size(); ++i) {
      ASSERT_EQ(a.trace[i], b.trace[i]) << "seed " << seed << " diverges at "
                                        << a.trace[i].DebugString() << " vs "
                                        << b.trace[i].DebugString();
    }
  }
}

TEST(TestSchedulerTest, TraceHashDoesNotDependOnRecordingTheTrace) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    EXPECT_EQ(RunScenario(seed, true).hash, RunScenario(seed, false).hash);
  }
}

TEST(TestSchedulerTest, DifferentSeedsGiveDifferentOrders) {
  std::set<std::vector<int>> orders;
  std::set<uint64_t> hashes;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Outcome outcome = RunScenario(seed);
    orders.insert(outcome.order);
    hashes.insert(outcome.hash);
  }
  EXPECT_GT(orders.size(), 45u);
  EXPECT_EQ(hashes.size(), 50u);
}

// The golden hash pins the scheduling algorithm (PRNG, bounded-int method,
// pick rule, timer order, hash mixing). It must be the same with g++ and
// clang++ (the test runs under --config=clang too). If you change the
// algorithm on purpose, every logged seed changes meaning: say so in the
// release notes and update this value.
TEST(TestSchedulerTest, GoldenTraceHashForAFixedScenario) {
  EXPECT_EQ(RunScenario(42).hash, 0xabea29caa818e5c7ULL) << std::hex << RunScenario(42).hash;
}

TEST(TestSchedulerTest, FifoModeRunsTasksInQueueOrder) {
  TestScheduler s({.randomize_order = false});
  std::vector<int> order;
  auto worker = [&](int id) -> Co<void> {
    order.push_back(id);
    co_await Yield();
    order.push_back(10 + id);
  };
  for (int id = 0; id < 3; ++id) Spawn(s, worker(id)).Detach();
  ASSERT_TRUE(s.Run().ok());
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 10, 11, 12));
}

TEST(TestSchedulerTest, FifoModeInterleavesForegroundByQueueOrderToo) {
  TestScheduler s({.randomize_order = false});
  std::vector<int> order;
  auto worker = [&](int id) -> Co<void> {
    order.push_back(id);
    co_return;
  };
  Spawn(s, worker(0)).Detach();
  SpawnForeground(s, worker(1)).Detach();
  Spawn(s, worker(2)).Detach();
  SpawnForeground(s, worker(3)).Detach();
  ASSERT_TRUE(s.Run().ok());
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3));
}

TEST(TestSchedulerTest, DeprioritizedLabelsRunOnlyWhenNothingElseCan) {
  const TaskLabel low("low-priority");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TestScheduler s({.seed = seed});
    s.Deprioritize(low);
    std::vector<char> order;
    auto normal = [&]() -> Co<void> {
      for (int i = 0; i < 3; ++i) {
        order.push_back('n');
        co_await Yield();
      }
    };
    auto background = [&]() -> Co<void> {
      order.push_back('d');
      co_return;
    };
    for (int i = 0; i < 2; ++i) SpawnLabeled(s, low, background()).Detach();
    for (int i = 0; i < 4; ++i) Spawn(s, normal()).Detach();
    ASSERT_TRUE(s.Run().ok());
    ASSERT_EQ(order.size(), 14u);
    EXPECT_EQ(order[12], 'd') << "seed " << seed;
    EXPECT_EQ(order[13], 'd') << "seed " << seed;
  }
}

// A string literal is a label too: SpawnLabeled(s, "name", co) is
// SpawnLabeled(s, TaskLabel("name"), co), for a Co and for a factory.
TEST(TestSchedulerTest, SpawnLabeledTakesAStringLiteral) {
  TestScheduler s({.seed = 1});
  const TaskLabel low("literal-low");
  s.Deprioritize(low);
  auto body = []() -> Co<int> { co_return 7; };
  Task<int> from_co = SpawnLabeled(s, "literal-low", body());
  Task<int> from_factory = SpawnLabeled(s, "literal-factory", body);
  ASSERT_TRUE(from_co.metadata().label.has_value());
  EXPECT_EQ(*from_co.metadata().label, low);
  ASSERT_TRUE(from_factory.metadata().label.has_value());
  EXPECT_EQ(from_factory.metadata().label->name(), "literal-factory");
  EXPECT_EQ(s.BlockOn(std::move(from_co)).value_or(0), 7);
  EXPECT_EQ(s.BlockOn(std::move(from_factory)).value_or(0), 7);
}

TEST(TestSchedulerTest, LabelsThatAreNotDeprioritizedRunNormally) {
  const TaskLabel label("plain-label");
  bool seen_before_last = false;
  for (uint64_t seed = 0; seed < 20 && !seen_before_last; ++seed) {
    TestScheduler s({.seed = seed});
    std::vector<char> order;
    SpawnLabeled(s, label, [&]() -> Co<void> {
      order.push_back('l');
      co_return;
    }).Detach();
    for (int i = 0; i < 3; ++i) {
      Spawn(s, [&]() -> Co<void> {
        order.push_back('n');
        co_return;
      }).Detach();
    }
    ASSERT_TRUE(s.Run().ok());
    seen_before_last = order.back() != 'l';
  }
  EXPECT_TRUE(seen_before_last);
}

TEST(TestSchedulerTest, MainThreadQueueIsFifoAndIsMainThreadIsTrueOnlyThere) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TestScheduler s({.seed = seed});
    std::vector<int> foreground_order;
    std::vector<bool> main_flags;
    for (int id = 0; id < 5; ++id) {
      SpawnForeground(s, [&, id]() -> Co<void> {
        main_flags.push_back(s.IsMainThread());
        foreground_order.push_back(id);
        co_return;
      }).Detach();
      Spawn(s, [&]() -> Co<void> {
        main_flags.push_back(!s.IsMainThread());
        co_await Yield();
        main_flags.push_back(!s.IsMainThread());
      }).Detach();
    }
    ASSERT_TRUE(s.Run().ok());
    EXPECT_THAT(foreground_order, ElementsAre(0, 1, 2, 3, 4)) << "seed " << seed;
    for (bool ok : main_flags) EXPECT_TRUE(ok) << "seed " << seed;
  }
}

TEST(TestSchedulerTest, VirtualTimeStartsAtTheEpochAndAutoAdvancesToTimers) {
  TestScheduler s;
  EXPECT_EQ(s.Now(), Instant{});
  std::vector<std::pair<int, Duration>> woke;
  auto sleeper = [&](int id, milliseconds d) -> Co<void> {
    co_await Sleep(d);
    woke.emplace_back(id, s.Elapsed());
  };
  Spawn(s, sleeper(1, milliseconds(30))).Detach();
  Spawn(s, sleeper(2, milliseconds(10))).Detach();
  Spawn(s, sleeper(3, milliseconds(20))).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.Elapsed(), Duration::zero()) << "RunUntilIdle never advances time";
  EXPECT_TRUE(woke.empty());
  ASSERT_TRUE(s.Run().ok());
  EXPECT_THAT(woke, ElementsAre(std::pair<int, Duration>(2, milliseconds(10)),
                                std::pair<int, Duration>(3, milliseconds(20)),
                                std::pair<int, Duration>(1, milliseconds(30))));
}

TEST(TestSchedulerTest, TimersWithEqualDeadlinesFireInCreationOrder) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    // FIFO order so that wake order is observable as run order.
    TestScheduler s({.seed = seed, .randomize_order = false});
    std::vector<int> woke;
    for (int id = 0; id < 5; ++id) {
      Spawn(s, [&, id]() -> Co<void> {
        co_await Sleep(milliseconds(7));
        woke.push_back(id);
      }).Detach();
    }
    ASSERT_TRUE(s.Run().ok());
    EXPECT_THAT(woke, ElementsAre(0, 1, 2, 3, 4));
  }
}

TEST(TestSchedulerTest, AdvanceClockFiresDueTimersOnly) {
  TestScheduler s;
  int woke = 0;
  for (int ms : {5, 10, 15}) {
    Spawn(s, [&, ms]() -> Co<void> {
      co_await Sleep(milliseconds(ms));
      ++woke;
    }).Detach();
  }
  ASSERT_TRUE(s.RunUntilIdle().ok());
  s.AdvanceClock(milliseconds(10));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(woke, 2);
  EXPECT_EQ(s.Elapsed(), milliseconds(10));
  s.AdvanceClock(milliseconds(4));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(woke, 2);
  s.AdvanceClock(milliseconds(1));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(woke, 3);
}

TEST(TestSchedulerTest, NegativeAdvanceClockFailsTheRunWithAClearMessage) {
  TestScheduler s;
  s.AdvanceClock(milliseconds(-1));
  EXPECT_EQ(s.Elapsed(), Duration::zero());
  absl::Status status = s.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("non-negative"));
}

TEST(TestSchedulerTest, SleepUntilAPastDeadlineDoesNotSuspend) {
  TestScheduler s;
  s.AdvanceClock(milliseconds(50));
  auto body = [&]() -> Co<uint64_t> {
    const uint64_t before = s.step_count();
    co_await SleepUntil(Instant{} + milliseconds(10));
    co_await Sleep(Duration::zero());
    co_return s.step_count() - before;
  };
  absl::StatusOr<uint64_t> extra_steps = s.BlockOn(body());
  ASSERT_TRUE(extra_steps.ok());
  EXPECT_EQ(*extra_steps, 0u);
}

TEST(TestSchedulerTest, DeadlockReportNamesEveryLiveTaskWithSpawnAndWaitSites) {
  TestScheduler s({.seed = 7});
  Waker parked_forever;
  struct Forever {
    Waker* out;
    bool await_ready() { return false; }
    void await_suspend(std::coroutine_handle<>) {
      *out = CurrentWaker();
      DescribeWait("Forever (a test awaitable)");
    }
    void await_resume() {}
  };
  auto stuck = [&]() -> Co<void> { co_await Forever{&parked_forever}; };
  Task<void> inner = SpawnLabeled(s, TaskLabel("stuck-inner"), stuck());
  auto outer = [&]() -> Co<void> { co_await inner; };
  Task<void> blocked = Spawn(s, outer());
  absl::Status status = s.BlockOn(blocked);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("deadlock"));
  EXPECT_THAT(message, HasSubstr("seed 7"));
  EXPECT_TRUE(IsDeadlock(status));
  EXPECT_THAT(message, HasSubstr("stuck tasks (2)"));
  EXPECT_THAT(message, ContainsRegex("task 1 \"stuck-inner\" spawned at .*test_scheduler_test.cc:[0-9]+"));
  EXPECT_THAT(message, ContainsRegex("waiting on Forever \\(a test awaitable\\) at .*test_scheduler_test.cc:[0-9]+"));
  EXPECT_THAT(message, ContainsRegex("task 2 spawned at .*test_scheduler_test.cc:[0-9]+.*waiting for task 1 to finish"));
}

TEST(TestSchedulerTest, DeadlockReportNamesSleepAndYieldSites) {
  TestScheduler s;
  auto sleeper = [&]() -> Co<void> { co_await Sleep(std::chrono::hours(1)); };
  Spawn(s, sleeper()).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeLiveTasks(), ContainsRegex("waiting on Sleep at .*test_scheduler_test.cc:[0-9]+"));
}

TEST(TestSchedulerTest, QueuedTaskReportSaysWhatWokeIt) {
  TestScheduler s;
  Spawn(s, []() -> Co<void> { co_await Sleep(std::chrono::milliseconds(5)); }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  s.AdvanceClock(std::chrono::milliseconds(5));  // fires the timer: queued, not yet run
  EXPECT_THAT(s.DescribeTask(TaskId{1}),
              ContainsRegex("queued to run \\(woken from Sleep at .*test_scheduler_test.cc:[0-9]+"));
}

TEST(TestSchedulerTest, StepBudgetTurnsALivelockIntoAReport) {
  TestScheduler s({.seed = 3, .max_steps = 1000});
  auto spinner = []() -> Co<void> {
    for (;;) co_await Yield();
  };
  Spawn(s, spinner()).Detach();
  Spawn(s, spinner()).Detach();
  absl::Status status = s.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  const std::string message(status.message());
  EXPECT_TRUE(IsStepBudgetExhausted(status));
  EXPECT_THAT(message, HasSubstr("step budget of 1000"));
  EXPECT_THAT(message, HasSubstr("seed 3"));
  EXPECT_THAT(message, HasSubstr("live tasks (2)"));
  EXPECT_THAT(message, ContainsRegex("task 1 spawned at .*test_scheduler_test.cc"));
  EXPECT_THAT(message, ContainsRegex("task 2 spawned at .*test_scheduler_test.cc"));
  EXPECT_EQ(s.step_count(), 1000u);
}

TEST(TestSchedulerTest, RunCannotBeCalledFromInsideATask) {
  TestScheduler s;
  absl::Status inner;
  Spawn(s, [&]() -> Co<void> {
    inner = s.RunUntilIdle();
    co_return;
  }).Detach();
  ASSERT_TRUE(s.Run().ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(inner.message(), HasSubstr("co_await"));
}

TEST(TestSchedulerTest, ParkingForbiddenByDefaultFailsTheRun) {
  TestScheduler s;
  EXPECT_FALSE(s.Park(milliseconds(1)));
  absl::Status status = s.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("allow_parking"));
}

TEST(TestSchedulerTest, ParkingAllowedReturnsWhenUnparked) {
  TestScheduler s({.allow_parking = true});
  Unparker unparker = s.GetUnparker();
  unparker.Unpark();  // an unpark before the park is not lost
  EXPECT_TRUE(s.Park(std::nullopt));
  EXPECT_FALSE(s.Park(milliseconds(1))) << "times out when nobody unparks";
  EXPECT_TRUE(s.Run().ok());
}

TEST(TestSchedulerTest, UserRngIsSeededAndSeparateFromScheduling) {
  TestScheduler a({.seed = 5}), b({.seed = 5}), c({.seed = 6});
  EXPECT_EQ(a.rng().Next64(), b.rng().Next64());
  EXPECT_NE(a.rng().Next64(), c.rng().Next64());
}

TEST(TestSchedulerTest, WakingTwiceBeforeItRunsSchedulesOnce) {
  TestScheduler s;
  Waker waker;
  int resumed = 0;
  struct Park {
    Waker* out;
    bool await_ready() { return false; }
    void await_suspend(std::coroutine_handle<>) { *out = CurrentWaker(); }
    void await_resume() {}
  };
  Spawn(s, [&]() -> Co<void> {
    co_await Park{&waker};
    ++resumed;
    co_await Park{&waker};
    ++resumed;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  const uint64_t steps = s.step_count();
  Waker copy = waker;
  waker.Wake();
  copy.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.step_count(), steps + 1);
  EXPECT_EQ(resumed, 1) << "the stale copy must not resume the second suspension";
  copy.Wake();  // made for the first suspension: a no-op now
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(resumed, 1);
  waker.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(resumed, 2);
  waker.Wake();  // after completion: harmless
  ASSERT_TRUE(s.RunUntilIdle().ok());
}

// -- Mutation-hardening: behaviours that a planted bug once slipped past. --

// The waker here is made during the task's last poll, so its sequence number
// is current when the task completes: only the kCompleted guard stops it.
// (The wake-after-completion tests above use a waker from an earlier
// suspension, which the stale-waker guard already ignores.)
TEST(TestSchedulerTest, WakeOfACompletedTaskWithACurrentWakerDoesNothing) {
  TestScheduler s;
  Waker waker;
  int polls = 0;
  Task<void> task = Spawn(s, [&]() -> Co<void> {
    ++polls;
    waker = CurrentWaker();  // same poll as the completion
    co_return;
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(task.IsFinished());
  ASSERT_EQ(waker.task_id(), task.id());
  const uint64_t steps = s.step_count();
  waker.Wake();
  ASSERT_EQ(task.state()->state() & internal::TaskHeader::kScheduled, 0u)
      << "a completed task was queued again";
  EXPECT_FALSE(s.Step()) << "nothing may be runnable after waking a completed task";
  EXPECT_EQ(s.step_count(), steps);
  EXPECT_EQ(polls, 1);
}

// A deprioritized task that yields must go back to the deprioritized queue,
// not the normal one: here it wakes normal work and yields, and that work
// must all run before it continues, on every seed.
TEST(TestSchedulerTest, DeprioritizedTaskThatYieldsStaysDeprioritized) {
  const TaskLabel low("low-priority");
  for (uint64_t seed = 0; seed < 30; ++seed) {
    TestScheduler s({.seed = seed});
    s.Deprioritize(low);
    std::string order;
    auto normal = [&]() -> Co<void> {
      for (int i = 0; i < 3; ++i) {
        order.push_back('n');
        co_await Yield();
      }
    };
    SpawnLabeled(s, low, [&]() -> Co<void> {
      order.push_back('d');
      for (int i = 0; i < 4; ++i) Spawn(s, normal()).Detach();
      co_await Yield();
      order.push_back('d');
      co_await Yield();
      order.push_back('d');
    }).Detach();
    ASSERT_TRUE(s.Run().ok());
    EXPECT_EQ(order, "d" + std::string(12, 'n') + "dd") << "seed " << seed;
  }
}

// Every runnable candidate can be picked: the random pick draws from all of
// them (an off-by-one bound would never pick the last one first).
TEST(TestSchedulerTest, EveryBackgroundCandidateIsPickedFirstOnSomeSeed) {
  constexpr int kTasks = 4;
  std::vector<int> first_counts(kTasks, 0);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    TestScheduler s({.seed = seed});
    int first = -1;
    for (int id = 0; id < kTasks; ++id) {
      Spawn(s, [&, id]() -> Co<void> {
        if (first < 0) first = id;
        co_return;
      }).Detach();
    }
    ASSERT_TRUE(s.Run().ok());
    ASSERT_GE(first, 0);
    ++first_counts[first];
  }
  // Uniform: about 50 each; 20 is far outside chance for a fair pick.
  for (int id = 0; id < kTasks; ++id) {
    EXPECT_GT(first_counts[id], 20) << "task " << id << " is (almost) never picked first";
  }
}

TEST(TestSchedulerTest, EveryLaneHeadAndBackgroundTaskIsPickedFirstOnSomeSeed) {
  // Lanes take the slow pick path: background entries, then each lane's head.
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    auto s = TestScheduler::Create({.seed = seed});
    ForegroundExecutor second = ForegroundExecutor::ForNewLane(s, "second");
    std::string first;
    auto mark = [&first](std::string name) -> Co<void> {
      if (first.empty()) first = name;
      co_return;
    };
    Spawn(*s, mark("background")).Detach();
    SpawnForeground(*s, mark("main")).Detach();
    second.Spawn(mark("second")).Detach();
    ASSERT_TRUE(s->Run().ok());
    firsts.insert(first);
  }
  EXPECT_THAT(firsts, ElementsAre("background", "main", "second"));
}

// A timer due exactly at the time AdvanceClock reaches fires, whether the
// clock gets there in one call or several; one a nanosecond later does not.
TEST(TestSchedulerTest, TimerDueExactlyAtTheAdvanceClockTargetFires) {
  TestScheduler s;
  bool exact = false, later = false;
  Spawn(s, [&]() -> Co<void> {
    co_await SleepUntil(Instant{} + milliseconds(10));
    exact = true;
  }).Detach();
  Spawn(s, [&]() -> Co<void> {
    co_await SleepUntil(Instant{} + milliseconds(10) + std::chrono::nanoseconds(1));
    later = true;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  s.AdvanceClock(milliseconds(3));
  s.AdvanceClock(milliseconds(7));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.Elapsed(), milliseconds(10));
  EXPECT_TRUE(exact) << "a timer due exactly now must fire";
  EXPECT_FALSE(later);
  s.AdvanceClock(std::chrono::nanoseconds(1));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(later);
}

}  // namespace
}  // namespace simsched
