// The edges of the task header's packing (scheduler/internal/task_header.h,
// docs/performance.md, Memory): storage shared between fields that are never
// live at once, and state kept outside the header.
//   * The exception a task ends with takes the wait site's last word.
//   * A joiner's record lives in its `Task::Awaiter`, not in the awaited
//     task's header: a joiner cancelled while it waits must unregister it.
//   * The leaf's promise is found from its handle; a leaf that is not a Co
//     frame is marked and cancelled through its root.
//   * Spawn locations are interned, one copy per call site.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/co_promise_at.h"
#include "scheduler/internal/packed_task_metadata.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/waker.h"
#include "sim/random.h"

namespace simsched {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

class Target final : public WaitTarget {
 public:
  std::string DescribeBlocker() const override { return "test target"; }
};

// Records a wait site and ends with an exception in the same poll, so that
// the site is still current (same poll sequence number) when the exception
// takes its last word.
Co<int> SetSiteThenThrow(const Target* target) {
  internal::current_task->SetWaitSite(
      WaitSite{"about to throw", SourceLocation::current(), {}, target});
  throw std::runtime_error("boom after a wait site");
  co_return 0;
}

TEST(TaskHeaderPackingTest, AnExceptionTakesTheWaitSitesPlaceIntact) {
  TestScheduler scheduler;
  Target target;
  Task<int> task = Spawn(scheduler, SetSiteThenThrow(&target));
  ASSERT_TRUE(scheduler.Run().ok());
  ASSERT_TRUE(task.IsFinished());
  internal::TaskHeader& header = *task.state();
  // The site is gone (a finished task waits on nothing); the word holds the
  // exception, not the target's address.
  EXPECT_TRUE(header.wait_site().what.empty());
  EXPECT_EQ(header.wait_site().target, nullptr);
  ASSERT_NE(header.exception(), nullptr);
  // Taking the result rethrows the task's own exception.
  std::string caught;
  try {
    (void)scheduler.BlockOn(task);
  } catch (const std::runtime_error& e) {
    caught = e.what();
  }
  EXPECT_EQ(caught, "boom after a wait site");
}

TEST(TaskHeaderPackingTest, AnExceptionAfterASuspensionWithASiteIsRethrownByTheJoiner) {
  TestScheduler scheduler;
  Task<int> thrower = Spawn(scheduler, []() -> Co<int> {
    co_await Sleep(milliseconds(5));  // records a wait site
    throw std::invalid_argument("late failure");
  });
  std::string caught;
  Task<void> joiner = Spawn(scheduler, [&]() -> Co<void> {
    try {
      co_await thrower;
    } catch (const std::invalid_argument& e) {
      caught = e.what();
    }
  });
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(caught, "late failure");
  EXPECT_TRUE(joiner.IsFinished());
}

TEST(TaskHeaderPackingTest, AJoinerCancelledWhileWaitingIsNotWokenByTheEnd) {
  TestScheduler scheduler;
  Event release;
  Task<int> awaited = Spawn(scheduler, [&]() -> Co<int> {
    co_await release.Wait();
    co_return 7;
  });
  bool joiner_resumed = false;
  Task<int> joiner = Spawn(scheduler, [&]() -> Co<int> {
    const int value = co_await awaited;
    joiner_resumed = true;
    co_return value;
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_FALSE(awaited.IsFinished());
  // Cancelled mid-wait: its awaiter (and the join record in it) is
  // destroyed with its frame, and must be unregistered first.
  joiner.Cancel();
  EXPECT_TRUE(joiner.IsCancelled());
  release.Set();
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_FALSE(joiner_resumed);
  absl::StatusOr<int> value = scheduler.BlockOn(std::move(awaited));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 7);
}

TEST(TaskHeaderPackingTest, ASecondJoinerAfterACancelledOneIsWoken) {
  TestScheduler scheduler;
  Event release;
  Task<int> awaited = Spawn(scheduler, [&]() -> Co<int> {
    co_await release.Wait();
    co_return 11;
  });
  Task<int> first = Spawn(scheduler, [&]() -> Co<int> { co_return co_await awaited; });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  first.Cancel();
  Task<int> second = Spawn(scheduler, [&]() -> Co<int> { co_return co_await awaited; });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  release.Set();
  absl::StatusOr<int> value = scheduler.BlockOn(std::move(second));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 11);
}

// On the pool the joiner's cancellation races the awaited task's end: the
// end must either find the record and wake the joiner (a no-op on a
// cancelled task) or find it gone, never read a destroyed awaiter (ASan,
// TSan).
TEST(TaskHeaderPackingTest, AJoinerCancelledWhileTheAwaitedTaskEndsOnThePool) {
  for (int round = 0; round < 200; ++round) {
    ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 2});
    std::atomic<bool> go{false};
    std::atomic<bool> joining{false};
    Task<int> awaited = Spawn(pool, [&]() -> Co<int> {
      while (!go.load()) std::this_thread::yield();
      co_return round;
    });
    Task<int> joiner = Spawn(pool, [&]() -> Co<int> {
      joining = true;
      co_return co_await awaited;
    });
    while (!joining.load()) std::this_thread::yield();
    if (round % 2 == 0) {
      go = true;
      joiner.Cancel();
    } else {
      joiner.Cancel();
      go = true;
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!(awaited.IsFinished() && joiner.IsFinished())) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "round " << round;
      std::this_thread::yield();
    }
    EXPECT_TRUE(awaited.IsFinished());
  }
}

// A coroutine type of the user's own (not a Co) that awaits a Co child
// inside a task: when the child returns, the task's leaf is this frame,
// which has no Co promise to find.
class Plain {
 public:
  struct promise_type {
    std::coroutine_handle<> continuation;
    Plain get_return_object() {
      return Plain(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        return self.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  explicit Plain(std::coroutine_handle<promise_type> frame) : frame_(frame) {}
  Plain(Plain&& other) noexcept : frame_(std::exchange(other.frame_, nullptr)) {}
  ~Plain() {
    if (frame_) frame_.destroy();
  }
  bool await_ready() { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) {
    frame_.promise().continuation = parent;
    return frame_;
  }
  void await_resume() {}

 private:
  std::coroutine_handle<promise_type> frame_;
};

struct SetOnDestroy {
  bool* destroyed;
  ~SetOnDestroy() { *destroyed = true; }
};

Co<void> ShortChild() { co_await Yield(); }

Plain PlainThatWaitsAfterAChild(bool* child_returned, bool* plain_destroyed) {
  SetOnDestroy flag{plain_destroyed};
  co_await ShortChild();
  *child_returned = true;
  co_await Sleep(hours(1));  // suspended here with a leaf that is not a Co frame
}

TEST(TaskHeaderPackingTest, ALeafThatIsNotACoFrameIsCancelledThroughItsRoot) {
  TestScheduler scheduler;
  bool child_returned = false, plain_destroyed = false, root_destroyed = false;
  Task<void> task = Spawn(scheduler, [&]() -> Co<void> {
    SetOnDestroy flag{&root_destroyed};
    co_await PlainThatWaitsAfterAChild(&child_returned, &plain_destroyed);
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_TRUE(child_returned);
  ASSERT_FALSE(task.IsFinished());
  task.Cancel();
  EXPECT_TRUE(task.IsCancelled());
  EXPECT_TRUE(plain_destroyed);
  EXPECT_TRUE(root_destroyed);
}

TEST(TaskHeaderPackingTest, ACoLeafsPromiseIsFoundFromItsHandle) {
  for (bool use_int : {false, true}) {
    TestScheduler scheduler;
    Task<void> task = Spawn(scheduler, [use_int]() -> Co<void> {
      if (use_int) {
        co_await []() -> Co<int> {
          co_await Sleep(hours(1));
          co_return 1;
        }();
      } else {
        co_await []() -> Co<void> { co_await Sleep(hours(1)); }();
      }
    });
    ASSERT_TRUE(scheduler.RunUntilIdle().ok());
    internal::TaskHeader& header = *task.state();
    ASSERT_TRUE(header.leaf());
    EXPECT_NE(header.leaf_promise(), nullptr);
    EXPECT_EQ(static_cast<void*>(header.leaf_promise()),
              internal::CoPromiseAt(header.leaf()));
  }
}

TEST(TaskHeaderPackingTest, SpawnLocationsAreInternedPerCallSite) {
  const SourceLocation here = SourceLocation::current();
  const SourceLocation there = SourceLocation::current();
  const SourceLocation* a = internal::InternLocation(here);
  EXPECT_EQ(internal::InternLocation(here), a);
  EXPECT_NE(internal::InternLocation(there), a);
  EXPECT_EQ(a->line(), here.line());
  EXPECT_STREQ(a->file_name(), here.file_name());
  EXPECT_STREQ(a->function_name(), here.function_name());

  // Another thread finds the same copy.
  const SourceLocation* from_thread = nullptr;
  std::thread([&] { from_thread = internal::InternLocation(here); }).join();
  EXPECT_EQ(from_thread, a);

  internal::PackedTaskMetadata metadata;
  EXPECT_EQ(metadata.spawn_location().line(), 0u);  // unknown until set
  metadata.set_spawn_location(SourceLocation());
  EXPECT_EQ(metadata.spawn_location().line(), 0u);
  metadata.set_spawn_location(here);
  EXPECT_EQ(metadata.spawn_location().line(), here.line());
  EXPECT_STREQ(metadata.spawn_location().function_name(), "TestBody");

  TestScheduler scheduler;
  Task<int> task = Spawn(scheduler, []() -> Co<int> { co_return 1; });
  const int spawn_line = __LINE__ - 1;
  EXPECT_EQ(task.metadata().spawn_location.line(), static_cast<uint32_t>(spawn_line));
  EXPECT_STREQ(task.metadata().spawn_location.function_name(), "TestBody");
}

// The metadata word holds an interned spawn site (location, label, lane), a
// session beside the site's table index (tagged inline), or a record of both:
// every sequence of sets reads back as a plain model does, including session
// ids too large to be kept inline. 2,000 seeded sequences.
TEST(TaskHeaderPackingTest, LabelAndSessionReadBackThroughEveryEncoding) {
  const TaskLabel labels[] = {TaskLabel("packing-a"), TaskLabel("packing-b")};
  const uint64_t sessions[] = {0, 1, 7, (uint64_t{1} << 61) + 5, UINT64_MAX >> 2,
                               (UINT64_MAX >> 2) + 1, UINT64_MAX};
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    Rng rng(seed);
    internal::PackedTaskMetadata metadata;
    std::optional<TaskLabel> label;
    std::optional<SessionId> session;
    uint32_t lane = 0;
    uint32_t line = 0;
    for (int op = 0; op < 12; ++op) {
      const uint64_t choice = rng.Below(6);
      if (choice == 4) {
        lane = static_cast<uint32_t>(rng.Below(3));
        metadata.set_lane(lane);
      } else if (choice == 5) {
        const SourceLocation locations[] = {SourceLocation(), SourceLocation::current()};
        const SourceLocation& location = locations[rng.Below(2)];
        line = location.line();
        metadata.set_spawn_location(location);
      } else if (choice == 0) {
        label = std::nullopt;
        metadata.set_label(label);
      } else if (choice == 1) {
        label = labels[rng.Below(2)];
        metadata.set_label(label);
      } else if (choice == 2) {
        session = std::nullopt;
        metadata.set_session(session);
      } else {
        session = SessionId{sessions[rng.Below(std::size(sessions))]};
        metadata.set_session(session);
      }
      ASSERT_EQ(metadata.label(), label) << "seed " << seed << ", op " << op;
      ASSERT_EQ(metadata.session(), session) << "seed " << seed << ", op " << op;
      ASSERT_EQ(metadata.has_label(), label.has_value());
      ASSERT_EQ(metadata.lane(), lane) << "seed " << seed << ", op " << op;
      ASSERT_EQ(metadata.spawn_location().line(), line) << "seed " << seed << ", op " << op;
    }
  }
}

}  // namespace
}  // namespace simsched
