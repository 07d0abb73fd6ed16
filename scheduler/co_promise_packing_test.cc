// The edges of the `Co` promise's packing (scheduler/co.h, "The promise is two
// words"; docs/performance.md, Memory):
//   * the continuation's promise is not stored: a flag in the continuation's
//     word says it is a Co frame, and it is found again from the handle;
//   * the exception a frame ends with takes the word of the owning `Co`,
//     which an ending frame no longer needs, so a `Co` moved or destroyed
//     after it threw must leave that word alone;
//   * cancellation walks suspended frames only (through the owner's word),
//     also after a sibling frame threw.
// Each case runs on the TestScheduler and on the thread pool.

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

Co<int> ThrowAfterASleep(std::string message) {
  co_await Sleep(milliseconds(1));
  throw std::runtime_error(message);
  co_return 0;
}

Co<int> Nested(int depth, std::string message) {
  if (depth == 0) co_return co_await ThrowAfterASleep(std::move(message));
  co_return 1 + co_await Nested(depth - 1, std::move(message));
}

Co<int> Value(int value) {
  co_await Yield();
  co_return value;
}

struct SetOnDestroy {
  std::atomic<int>* order;
  int mark;
  int* seen_at;
  ~SetOnDestroy() { *seen_at = order->fetch_add(1) * 10 + mark; }
};

// Runs `task` to its end on `scheduler` and gives its result or the text of
// the exception it rethrows to a joining task.
template <typename T>
std::string JoinAndDescribe(Scheduler& scheduler, Task<T>& task, bool pool) {
  std::string outcome;
  std::atomic<bool> done{false};
  Task<void> joiner = Spawn(scheduler, [&]() -> Co<void> {
    try {
      outcome = "value " + std::to_string(co_await task);
    } catch (const std::runtime_error& e) {
      outcome = std::string("threw ") + e.what();
    }
    done = true;
  });
  if (pool) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done.load()) {
      if (std::chrono::steady_clock::now() > give_up) return "timed out";
      std::this_thread::sleep_for(milliseconds(1));
    }
  } else {
    EXPECT_TRUE(static_cast<TestScheduler&>(scheduler).Run().ok());
  }
  return outcome;
}

class CoPromisePackingTest : public ::testing::TestWithParam<bool> {
 protected:
  bool pool() const { return GetParam(); }
  std::unique_ptr<Scheduler> MakeScheduler() const {
    if (pool()) {
      return std::make_unique<ThreadPoolScheduler>(
          ThreadPoolSchedulerOptions{.worker_threads = 2});
    }
    return std::make_unique<TestScheduler>();
  }
};

TEST_P(CoPromisePackingTest, AnExceptionFromARootIsRethrownToItsJoiner) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler();
  Task<int> task = Spawn(*scheduler, ThrowAfterASleep("root failure"));
  EXPECT_EQ(JoinAndDescribe(*scheduler, task, pool()), "threw root failure");
}

TEST_P(CoPromisePackingTest, AnExceptionFromADeepChainReachesTheRootsJoiner) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler();
  // Every frame on the way rethrows: each one's exception takes its owner's
  // word in turn.
  Task<int> task = Spawn(*scheduler, Nested(200, "deep failure"));
  EXPECT_EQ(JoinAndDescribe(*scheduler, task, pool()), "threw deep failure");
}

TEST_P(CoPromisePackingTest, ACaughtChildExceptionLeavesTheParentWorking) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler();
  Task<int> task = Spawn(*scheduler, []() -> Co<int> {
    int sum = 0;
    for (int i = 0; i < 20; ++i) {
      try {
        sum += co_await Nested(i % 4, "caught " + std::to_string(i));
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "caught " + std::to_string(i)) sum += 100;
      }
      sum += co_await Value(1);
    }
    co_return sum;
  });
  EXPECT_EQ(JoinAndDescribe(*scheduler, task, pool()), "value 2020");
}

TEST_P(CoPromisePackingTest, ACoMovedAfterItThrewKeepsTheException) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler();
  Task<int> task = Spawn(*scheduler, []() -> Co<int> {
    Co<int> first = ThrowAfterASleep("moved");
    std::string seen;
    try {
      co_await first;  // awaited as an lvalue: `first` keeps the ended frame
    } catch (const std::runtime_error& e) {
      seen = e.what();
    }
    // Moving the ended frame's owner must not overwrite its exception (the
    // frame is freed with it: LeakSanitizer checks the exception is too).
    Co<int> second = std::move(first);
    Co<int> third;
    third = std::move(second);
    co_return seen == "moved" && !first && !second && static_cast<bool>(third) ? 7 : -1;
  });
  EXPECT_EQ(JoinAndDescribe(*scheduler, task, pool()), "value 7");
}

TEST_P(CoPromisePackingTest, CancellingAChainAfterASiblingThrewDestroysEachFrameOnce) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler();
  std::atomic<int> order{0};
  int root_at = -1, middle_at = -1, leaf_at = -1;
  Event asleep;
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    SetOnDestroy root{&order, 1, &root_at};
    try {
      co_await Nested(3, "sibling");
    } catch (const std::runtime_error&) {
    }
    co_await [&]() -> Co<void> {
      SetOnDestroy middle{&order, 2, &middle_at};
      co_await [&]() -> Co<void> {
        SetOnDestroy leaf{&order, 3, &leaf_at};
        asleep.Set();
        co_await Sleep(hours(1));
      }();
    }();
  });
  if (pool()) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!asleep.IsSet()) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up);
      std::this_thread::sleep_for(milliseconds(1));
    }
  } else {
    // Past the sibling's 1ms sleep, short of the leaf's hour.
    auto& test_scheduler = static_cast<TestScheduler&>(*scheduler);
    ASSERT_TRUE(test_scheduler.RunUntilIdle().ok());
    test_scheduler.AdvanceClock(milliseconds(5));
    ASSERT_TRUE(test_scheduler.RunUntilIdle().ok());
    ASSERT_TRUE(asleep.IsSet());
  }
  task.Cancel();
  // On the pool the cancel may meet the poll that set `asleep` still under
  // way: the poller destroys the frames when it ends.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!task.IsFinished()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(task.IsCancelled());
  // Innermost first, each once (a second destruction would be a
  // use-after-free under AddressSanitizer).
  EXPECT_EQ(leaf_at, 3);
  EXPECT_EQ(middle_at, 12);
  EXPECT_EQ(root_at, 21);
}

INSTANTIATE_TEST_SUITE_P(BothSchedulers, CoPromisePackingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ThreadPool" : "TestScheduler";
                         });

TEST(CoPromisePackingLayoutTest, ThePromiseIsTwoWords) {
  if constexpr (sizeof(void*) == 8) {
    EXPECT_EQ(sizeof(internal::CoPromise<void>), 16u);
    EXPECT_EQ(sizeof(internal::CoPromise<int&>), 24u);
    EXPECT_EQ(sizeof(internal::CoPromise<int>), 24u);  // with its std::optional<int>
  }
}

}  // namespace
}  // namespace simsched
