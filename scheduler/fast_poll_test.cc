// The task core's fast poll (TaskHeader::PollOnceFast, used by the
// TestScheduler's fast steps) and the end-of-task flag (kRootDone, set by the
// root Co's final suspend so that the poll need not load the frame to see the
// end): tasks that finish with a value, with an exception, through children,
// cancelled while queued, on the TestScheduler (confined and not) and on the
// pool; a Co driven by hand inside a task does not end it; labeled,
// foreground and unconfined tasks take the general poll and re-queue where
// they belong; `Yield` queues a task once whatever woke it before, on every
// kind of task; and no task is current outside polls (the fast steps leave
// their last task current between polls only).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/internal/testing/pool_test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace {

const std::vector<std::string>& Strategies() {
  static const std::vector<std::string> strategies = {"random", "fifo", "pct:3", "pos", "mix"};
  return strategies;
}

Co<int> Leaf(int value) {
  co_await Yield();
  co_return value;
}

Co<int> ThrowingLeaf() {
  co_await Yield();
  throw std::runtime_error("leaf failed");
}

// Yields, awaits two children, and returns their sum plus `value`.
Co<int> Root(int value) {
  co_await Yield();
  const int a = co_await Leaf(1);
  const int b = co_await Leaf(2);
  co_return value + a + b;
}

Co<int> ThrowingRoot() {
  co_await Yield();
  const int a = co_await ThrowingLeaf();
  co_return a;
}

Co<int> ImmediateRoot(int value) { co_return value; }

Co<int> ImmediateThrow() {
  throw std::logic_error("at once");
  co_return 0;
}

// The four ways a task ends, on any scheduler: values and exceptions, through
// children or at the first poll. Returns a description of what went wrong.
template <typename BlockOnFn>
std::string CheckEndings(Scheduler& scheduler, BlockOnFn block_on) {
  std::vector<Task<int>> values;
  for (int i = 0; i < 20; ++i) {
    values.push_back(Spawn(scheduler, i % 2 == 0 ? Root(i) : ImmediateRoot(i)));
  }
  Task<int> thrown = Spawn(scheduler, ThrowingRoot());
  Task<int> thrown_at_once = Spawn(scheduler, ImmediateThrow());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> result = block_on(values[i]);
    if (!result.ok()) return "task " + std::to_string(i) + ": " + result.status().ToString();
    const int expected = i % 2 == 0 ? i + 3 : i;
    if (*result != expected) {
      return "task " + std::to_string(i) + " gave " + std::to_string(*result);
    }
  }
  // BlockOn rethrows the task's exception.
  for (Task<int>* task : {&thrown, &thrown_at_once}) {
    try {
      absl::StatusOr<int> result = block_on(*task);
      return "a throwing task gave " + (result.ok() ? std::to_string(*result)
                                                    : result.status().ToString());
    } catch (const std::exception& e) {
      const std::string what = e.what();
      if (what != "leaf failed" && what != "at once") return "unexpected exception: " + what;
    }
  }
  return "";
}

TEST(FastPollTest, TasksEndWithValuesAndExceptionsOnTheTestScheduler) {
  for (const std::string& strategy : Strategies()) {
    for (bool allow_parking : {false, true}) {
      SCOPED_TRACE(strategy + (allow_parking ? ", unconfined" : ", confined"));
      TestScheduler scheduler({.seed = 7, .strategy = strategy, .allow_parking = allow_parking});
      EXPECT_EQ(scheduler.IsThreadConfined(), !allow_parking);
      EXPECT_EQ(CheckEndings(scheduler, [&](Task<int>& task) { return scheduler.BlockOn(task); }),
                "");
      EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
      EXPECT_TRUE(scheduler.status().ok()) << scheduler.status();
    }
  }
}

TEST(FastPollTest, TasksEndWithValuesAndExceptionsOnThePool) {
  auto pool = internal::MakePool(2);
  for (int round = 0; round < 20; ++round) {
    EXPECT_EQ(CheckEndings(*pool, [&](Task<int>& task) { return BlockOn(*pool, task); }), "");
  }
}

// A chain of `depth` children that return without suspending: every await and
// return is a transfer on the poll's trampoline (kTransferred).
Co<int> SyncChain(int depth) {
  if (depth == 0) co_return 1;
  co_return 1 + co_await SyncChain(depth - 1);
}

// Transfers in a run loop's fast polls: the fast poll runs the trampoline
// only when the poll set kTransferred, so children that return within the
// poll, a root that ends in the trampoline, a deep chain (no stack growth)
// and tasks whose flag a general step left set (a due timer makes the steps
// general for a while) must all come out right, under every strategy.
TEST(FastPollTest, TransfersWithinAFastPollRunOnTheTrampoline) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 11, .strategy = strategy});
    int64_t total = 0;
    int finished = 0;
    for (int i = 0; i < 24; ++i) {
      Spawn(scheduler, [&total, &finished, i]() -> Co<void> {
        for (int round = 0; round < 6; ++round) {
          // Ends a poll in the trampoline: the last round's root returns
          // right after its child, in the same poll.
          total += co_await SyncChain(i % 4 == 0 ? 20'000 : i);
          if (i % 3 == 0) co_await Sleep(std::chrono::microseconds(1 + round));
          if (round + 1 < 6) co_await Yield();
        }
        ++finished;
      }).Detach();
    }
    ASSERT_TRUE(scheduler.Run().ok()) << scheduler.status();
    int64_t expected = 0;
    for (int i = 0; i < 24; ++i) expected += 6 * ((i % 4 == 0 ? 20'000 : i) + 1);
    EXPECT_EQ(total, expected);
    EXPECT_EQ(finished, 24);
    EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  }
}

// Detached tasks that finish in a run loop's fast steps: the ones that throw
// are reported, the others finish quietly, and every task is gone.
TEST(FastPollTest, DetachedTasksFinishInFastSteps) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 3, .strategy = strategy});
    int finished = 0;
    for (int i = 0; i < 30; ++i) {
      Spawn(scheduler, [&finished, i]() -> Co<void> {
        for (int k = 0; k < i % 5; ++k) co_await Yield();
        ++finished;
      }).Detach();
    }
    ASSERT_TRUE(scheduler.Run().ok());
    EXPECT_EQ(finished, 30);
    EXPECT_EQ(scheduler.LiveTaskCount(), 0u);

    Spawn(scheduler, ThrowingRoot()).Detach();
    EXPECT_FALSE(scheduler.Run().ok());
    EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  }
}

TEST(FastPollTest, ATaskCancelledWhileQueuedIsNeverPolled) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 11, .strategy = strategy});
    int polls = 0;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 10; ++i) {
      tasks.push_back(Spawn(scheduler, [&polls]() -> Co<void> {
        for (;;) {
          ++polls;
          co_await Yield();
        }
      }));
    }
    // Queued, never polled: cancelling leaves a queued entry that must be
    // skipped; the others are cancelled mid-run from a task.
    tasks[0].Cancel();
    Spawn(scheduler, [&]() -> Co<void> {
      for (int k = 0; k < 20; ++k) co_await Yield();
      for (int i = 1; i < 10; ++i) tasks[i].Cancel();
    }).Detach();
    ASSERT_TRUE(scheduler.Run().ok()) << scheduler.status();
    EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
    EXPECT_GT(polls, 0);
    const int polls_at_end = polls;
    ASSERT_TRUE(scheduler.Run().ok());
    EXPECT_EQ(polls, polls_at_end);
  }
}

TEST(FastPollTest, ATaskCancelledWhileQueuedOnThePoolFinishes) {
  auto pool = internal::MakePool(1);
  std::atomic<bool> release{false};
  std::atomic<bool> ran{false};
  // Occupies the only worker until the victim is queued and cancelled.
  Task<void> blocker = Spawn(*pool, [&]() -> Co<void> {
    while (!release.load()) std::this_thread::yield();
    co_return;
  });
  ASSERT_TRUE(internal::WaitFor([&] { return pool->IsTaskRunning(blocker.id()); }));
  Task<void> victim = Spawn(*pool, [&]() -> Co<void> {
    ran.store(true);
    co_return;
  });
  victim.Cancel();
  release.store(true);
  ASSERT_TRUE(BlockOn(*pool, blocker).ok());
  EXPECT_FALSE(BlockOn(*pool, victim).ok());
  EXPECT_FALSE(ran.load());
}

// A Co whose frame is resumed by hand inside a task ends with nothing
// awaiting it, as a task's root does; it must not end the task around it.
TEST(FastPollTest, ACoDrivenByHandInsideATaskDoesNotEndTheTask) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 5, .strategy = strategy});
    int after = 0;
    Task<int> task = Spawn(scheduler, [&]() -> Co<int> {
      co_await Yield();
      auto frame = ImmediateRoot(4).Release();
      frame.resume();
      const bool done = frame.done();
      const int value = frame.promise().TakeResult();
      frame.destroy();
      ++after;
      co_await Yield();
      ++after;
      co_return done ? value : -1;
    });
    absl::StatusOr<int> result = scheduler.BlockOn(task);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, 4);
    EXPECT_EQ(after, 2);
  }
}

// Records the current task when destroyed as a coroutine's parameter (the
// frame's copy is destroyed with the frame, after the poll that ended it).
struct CurrentTaskProbe {
  explicit CurrentTaskProbe(std::vector<const void*>* out) : out(out) {}
  CurrentTaskProbe(CurrentTaskProbe&& other) noexcept : out(std::exchange(other.out, nullptr)) {}
  ~CurrentTaskProbe() {
    if (out != nullptr) out->push_back(internal::CurrentTask());
  }
  std::vector<const void*>* out;
};

Co<void> YieldThenEnd([[maybe_unused]] CurrentTaskProbe probe, int yields) {
  for (int i = 0; i < yields; ++i) co_await Yield();
}

TEST(FastPollTest, NoTaskIsCurrentOutsidePolls) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 9, .strategy = strategy});
    std::vector<const void*> seen;
    std::vector<const void*> during;
    for (int i = 0; i < 10; ++i) {
      Spawn(scheduler, YieldThenEnd(CurrentTaskProbe(&seen), i)).Detach();
    }
    Spawn(scheduler, [&]() -> Co<void> {
      during.push_back(internal::CurrentTask());
      co_await Yield();
      during.push_back(internal::CurrentTask());
    }).Detach();
    ASSERT_TRUE(scheduler.Run().ok());
    EXPECT_EQ(internal::CurrentTask(), nullptr);
    EXPECT_EQ(CurrentScheduler(), nullptr);
    // Frames destroyed when their tasks end: no task is current then.
    ASSERT_EQ(seen.size(), 10u);
    for (const void* task : seen) EXPECT_EQ(task, nullptr);
    ASSERT_EQ(during.size(), 2u);
    EXPECT_NE(during[0], nullptr);
    EXPECT_EQ(during[0], during[1]);

    // Also when the run stops at its budget with tasks still queued.
    TestScheduler budgeted({.seed = 9, .strategy = strategy, .max_steps = 50});
    for (int i = 0; i < 3; ++i) {
      Spawn(budgeted, []() -> Co<void> {
        for (;;) co_await Yield();
      }).Detach();
    }
    EXPECT_FALSE(budgeted.Run().ok());
    EXPECT_EQ(budgeted.step_count(), 50u);
    EXPECT_EQ(internal::CurrentTask(), nullptr);
  }
}

// A labeled task re-queued by a fast step goes where its label says: once
// its label is deprioritized (by itself, mid-run) it runs only when no other
// work is queued. A fast re-queue onto the background queue would let it
// interleave with the others.
TEST(FastPollTest, ALabeledTaskIsRequeuedByItsLabel) {
  for (const std::string& strategy : {std::string("random"), std::string("pos")}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      SCOPED_TRACE(strategy + ", seed " + std::to_string(seed));
      TestScheduler scheduler({.seed = seed, .strategy = strategy});
      std::vector<char> order;
      const TaskLabel low("fast-poll-test-low");
      SpawnLabeled(scheduler, low, [&]() -> Co<void> {
        scheduler.Deprioritize(low);
        order.push_back('L');
        for (int i = 0; i < 5; ++i) {
          co_await Yield();
          order.push_back('L');
        }
      }).Detach();
      for (int t = 0; t < 3; ++t) {
        Spawn(scheduler, [&]() -> Co<void> {
          for (int i = 0; i < 10; ++i) {
            order.push_back('B');
            co_await Yield();
          }
        }).Detach();
      }
      ASSERT_TRUE(scheduler.Run().ok());
      ASSERT_EQ(order.size(), 36u);
      // After the first 'L' (whenever it ran), every other 'L' comes after
      // the last 'B'.
      size_t first_l = 0;
      while (order[first_l] != 'L') ++first_l;
      size_t last_b = order.size();
      while (order[last_b - 1] != 'B') --last_b;
      for (size_t i = first_l + 1; i < order.size(); ++i) {
        if (order[i] == 'L') {
          EXPECT_GT(i, last_b - 1) << "an L at " << i;
        }
      }
    }
  }
}

// Yield's one state test (WakeSelf) covers kind, confinement and "already
// scheduled": a task that woke itself before yielding, a labeled and a
// foreground task, and a task on the pool are each queued once per yield.
// A second queue entry would show as a poll too many (or a check failure:
// a running task polled again).
Co<void> YieldTimes(int times, bool wake_first, int* polls) {
  for (int i = 0; i < times; ++i) {
    ++*polls;
    if (wake_first) CurrentWaker().Wake();
    co_await Yield();
  }
  ++*polls;
}

TEST(FastPollTest, YieldQueuesTheTaskOnceOnEveryKindOfTask) {
  for (const std::string& strategy : Strategies()) {
    SCOPED_TRACE(strategy);
    TestScheduler scheduler({.seed = 5, .strategy = strategy});
    int polls[4] = {};
    Spawn(scheduler, YieldTimes(10, /*wake_first=*/false, &polls[0])).Detach();
    Spawn(scheduler, YieldTimes(10, /*wake_first=*/true, &polls[1])).Detach();
    SpawnLabeled(scheduler, "fast-poll-test-yield", YieldTimes(10, true, &polls[2])).Detach();
    SpawnForeground(scheduler, YieldTimes(10, false, &polls[3])).Detach();
    ASSERT_TRUE(scheduler.Run().ok()) << scheduler.status();
    for (int p : polls) EXPECT_EQ(p, 11);
    EXPECT_EQ(scheduler.step_count(), 44u);
    EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  }
  auto pool = internal::MakePool(2);
  int pool_polls[2] = {};
  Task<void> plain = Spawn(*pool, YieldTimes(50, false, &pool_polls[0]));
  Task<void> woken = Spawn(*pool, YieldTimes(50, true, &pool_polls[1]));
  ASSERT_TRUE(BlockOn(*pool, plain).ok());
  ASSERT_TRUE(BlockOn(*pool, woken).ok());
  EXPECT_EQ(pool_polls[0], 51);
  EXPECT_EQ(pool_polls[1], 51);
}

}  // namespace
}  // namespace simsched
