// Cancellation destroys a task the way a C++ call stack unwinds: children
// before parents, innermost first. These are the regression tests for the
// defect where a parent frame (its locals, a lambda's captures, a child Task
// it owned) was freed before the child whose RAII used it. The contract is in
// docs/cancellation.md; the randomized version is the task torture test.

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/internal/frame_destruction.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using std::chrono::hours;

// Appends `name` to `log` when destroyed, after checking that `parent_local`
// (something the parent lent it) is still intact.
struct Probe {
  std::vector<std::string>* log;
  std::string name;
  const std::string* parent_local = nullptr;
  ~Probe() {
    if (parent_local != nullptr) {
      // Reading a freed string is what ASan would catch; the copy makes the
      // check meaningful in a plain build too.
      log->push_back(name + " saw " + *parent_local);
    } else {
      log->push_back(name);
    }
  }
};

Co<void> SleepingChild(std::vector<std::string>* log, const std::string& lent) {
  Probe probe{log, "child", &lent};
  co_await Sleep(hours(1));
}

Co<void> Parent(std::vector<std::string>* log) {
  Probe probe{log, "parent"};
  const std::string lent(64, 'p');  // long enough to live on the heap
  co_await SleepingChild(log, lent);
}

TEST(CancellationOrderTest, ChildOfAnAwaitIsDestroyedBeforeTheParentsLocals) {
  TestScheduler scheduler({.seed = 1});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, Parent(&log));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_TRUE(log.empty());
  task = Task<void>();
  EXPECT_EQ(log, (std::vector<std::string>{"child saw " + std::string(64, 'p'), "parent"}));
  EXPECT_TRUE(scheduler.LiveTasks().empty());
}

TEST(CancellationOrderTest, LambdaCapturesOutliveTheLambdaCoroutinesRaii) {
  TestScheduler scheduler({.seed = 1});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, [name = std::string(64, 'x'), &log]() -> Co<void> {
    Probe probe{&log, "lambda body", &name};
    co_await Sleep(hours(1));
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task = Task<void>();
  EXPECT_EQ(log, (std::vector<std::string>{"lambda body saw " + std::string(64, 'x')}));
}

TEST(CancellationOrderTest, ChildTaskOwnedByTheFrameIsCancelledBeforeEarlierLocals) {
  TestScheduler scheduler({.seed = 1});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, [&log]() -> Co<void> {
    Probe probe{&log, "parent"};
    const std::string lent(64, 'o');
    Task<void> child = Spawn(*CurrentScheduler(), SleepingChild(&log, lent));
    co_await child;
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_EQ(scheduler.LiveTaskCount(), 2u);
  task = Task<void>();
  EXPECT_EQ(log, (std::vector<std::string>{"child saw " + std::string(64, 'o'), "parent"}));
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

// Records its level's depth when destroyed.
struct DepthRecord {
  std::vector<int>* order;
  int depth;
  ~DepthRecord() { order->push_back(depth); }
};

// Each level records its depth when destroyed; innermost first means the
// depths come out in increasing order from the leaf (depth 0).
Co<void> Nest(int depth, std::vector<int>* order) {
  DepthRecord record{order, depth};
  if (depth == 0) {
    co_await Sleep(hours(1));
  } else {
    co_await Nest(depth - 1, order);
  }
}

TEST(CancellationOrderTest, DeepAwaitChainUnwindsInnermostFirstInConstantStack) {
  constexpr int kDepth = 100'000;  // recursion this deep would overflow the stack
  TestScheduler scheduler({.seed = 1});
  std::vector<int> order;
  Task<void> task = Spawn(scheduler, Nest(kDepth, &order));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task.Cancel();
  ASSERT_EQ(order.size(), size_t{kDepth} + 1);
  for (int i = 0; i <= kDepth; ++i) ASSERT_EQ(order[i], i) << "at position " << i;
  EXPECT_TRUE(task.IsCancelled());
}

// A task owning a child task owning a child task...: every level is cancelled
// exactly once, below the nesting bound innermost first, and past it without
// running out of stack.
Co<void> OwnChain(int depth, std::vector<int>* order) {
  DepthRecord record{order, depth};
  if (depth == 0) {
    co_await Sleep(hours(1));
    co_return;
  }
  Task<void> child = Spawn(*CurrentScheduler(), OwnChain(depth - 1, order));
  co_await child;
}

TEST(CancellationOrderTest, OwnedTaskChainsWithinTheNestingBoundUnwindInnermostFirst) {
  constexpr int kDepth = 50;
  static_assert(kDepth < internal::kMaxNestedDestroyDepth);
  TestScheduler scheduler({.seed = 1});
  std::vector<int> order;
  Task<void> task = Spawn(scheduler, OwnChain(kDepth, &order));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_EQ(scheduler.LiveTaskCount(), size_t{kDepth} + 1);
  task = Task<void>();
  ASSERT_EQ(order.size(), size_t{kDepth} + 1);
  for (int i = 0; i <= kDepth; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(CancellationOrderTest, OwnedTaskChainsPastTheNestingBoundAreAllDestroyedOnce) {
  constexpr int kDepth = 20'000;
  TestScheduler scheduler({.seed = 1, .max_steps = 0});
  std::vector<int> order;
  Task<void> task = Spawn(scheduler, OwnChain(kDepth, &order));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task = Task<void>();
  ASSERT_EQ(order.size(), size_t{kDepth} + 1);
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i <= kDepth; ++i) ASSERT_EQ(sorted[i], i);  // each exactly once
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(CancellationOrderTest, SchedulerDestructionUnwindsChildrenBeforeParents) {
  std::vector<std::string> log;
  {
    TestScheduler scheduler({.seed = 7});
    Spawn(scheduler, Parent(&log)).Detach();
    Spawn(scheduler, [&log]() -> Co<void> {
      Probe probe{&log, "owner"};
      const std::string lent(64, 's');
      Task<void> child = Spawn(*CurrentScheduler(), SleepingChild(&log, lent));
      co_await child;
    }).Detach();
    ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  }
  EXPECT_EQ(log, (std::vector<std::string>{"child saw " + std::string(64, 'p'), "parent",
                                           "child saw " + std::string(64, 's'), "owner"}));
}

// A Co that was never started but is owned by a suspended frame (a parameter
// or a local) is destroyed with that frame, exactly once.
TEST(CancellationOrderTest, UnstartedCoOwnedByASuspendedFrameIsDestroyedOnce) {
  TestScheduler scheduler({.seed = 1});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, [](std::vector<std::string>* out) -> Co<void> {
    const std::string lent(64, 'u');
    Co<void> later = SleepingChild(out, lent);  // made, never awaited
    Probe probe{out, "holder"};
    co_await Sleep(hours(1));
  }(&log));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task = Task<void>();
  // The unstarted child never ran its body, so only the holder's probe ran.
  EXPECT_EQ(log, (std::vector<std::string>{"holder"}));
}

// A finished child still owned by a local Co when the parent is cancelled
// later is destroyed with the parent, once: its by-value parameter (which
// lives in its frame until the frame is destroyed) is released exactly once.
struct Counted {
  explicit Counted(int* count) : count(count) {}
  Counted(Counted&& other) noexcept : count(std::exchange(other.count, nullptr)) {}
  ~Counted() {
    if (count != nullptr) ++*count;
  }
  int* count;
};

Co<int> FinishAtOnce(Counted) { co_return 1; }

TEST(CancellationOrderTest, CompletedChildHeldByALocalIsDestroyedWithItsParent) {
  TestScheduler scheduler({.seed = 1});
  int destroyed = 0;
  Task<void> task = Spawn(scheduler, [](int* count) -> Co<void> {
    Co<int> done = FinishAtOnce(Counted(count));
    EXPECT_EQ(co_await done, 1);
    EXPECT_EQ(*count, 0);  // the finished frame (and its parameter) lives on in `done`
    co_await Sleep(hours(1));
  }(&destroyed));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_EQ(destroyed, 0);
  task = Task<void>();
  EXPECT_EQ(destroyed, 1);
}

}  // namespace
}  // namespace simsched
