#include "scheduler/thread_pool_scheduler.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/waker.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

// Captures what the "simsched" logger writes. Registered (with a stderr sink)
// as the "simsched" logger before any scheduler code runs, so simsched's
// Logger() picks it up.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string Contents() {
    std::lock_guard<std::mutex> lock(this->mutex_);
    return contents_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    contents_.append(msg.payload.data(), msg.payload.size());
    contents_ += '\n';
  }
  void flush_() override {}

 private:
  std::string contents_;
};

CaptureSink& LogCapture() {
  static CaptureSink* sink = [] {
    auto capture = std::make_shared<CaptureSink>();
    auto logger = std::make_shared<spdlog::logger>(
        "simsched", spdlog::sinks_init_list{std::make_shared<spdlog::sinks::stderr_sink_mt>(),
                                            capture});
    spdlog::register_logger(logger);
    return capture.get();  // the registry keeps it alive
  }();
  return *sink;
}

class LoggerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { LogCapture(); }
};
[[maybe_unused]] ::testing::Environment* const kLoggerEnvironment =
    ::testing::AddGlobalTestEnvironment(new LoggerEnvironment);

// Polls `condition` until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F condition, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// Counts its destruction: put one in a coroutine frame to see when the frame
// is freed.
struct FrameGuard {
  explicit FrameGuard(std::atomic<int>* counter) : counter(counter) {}
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
  ~FrameGuard() { counter->fetch_add(1); }
  std::atomic<int>* counter;
};

// Suspends the task without arranging any wake-up: only a wake already
// delivered (or delivered later through a waker taken earlier) resumes it.
struct SuspendOnce {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) { DescribeWait("SuspendOnce"); }
  void await_resume() const noexcept {}
};

// A waker handed from a task to other threads.
class WakerSlot {
 public:
  void Set(Waker waker) {
    std::lock_guard<std::mutex> lock(mu_);
    waker_ = std::move(waker);
  }
  Waker Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waker_;
  }

 private:
  mutable std::mutex mu_;
  Waker waker_;
};

// Hands the current waker to `out` and suspends.
struct ParkWaker {
  WakerSlot* out;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) { out->Set(CurrentWaker()); }
  void await_resume() const noexcept {}
};

Co<int> Twice(int x) {
  co_await Yield();
  co_return x * 2;
}

Co<void> Throws(std::string message) {
  co_await Yield();
  throw std::runtime_error(message);
}

std::shared_ptr<ThreadPoolScheduler> MakePool(int workers = 2) {
  return ThreadPoolScheduler::Create({.worker_threads = workers});
}

// -----------------------------------------------------------------------------
// Spawning and BlockOn
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, SpawnAndBlockOnReturnTheValue) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, Twice(21));
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 42);
  EXPECT_FALSE(scheduler->IsTaskRunning(task.id()));
}

TEST(ThreadPoolSchedulerTest, OneWorkerRunsEverything) {
  auto scheduler = MakePool(1);
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    std::vector<Task<int>> children;
    for (int i = 0; i < 1000; ++i) children.push_back(Spawn(*scheduler, Twice(i)));
    int sum = 0;
    for (Task<int>& child : children) sum += co_await child;
    co_await Sleep(milliseconds(1));
    co_return sum;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 999 * 1000);
}

TEST(ThreadPoolSchedulerTest, DefaultWorkerCountIsHardwareConcurrency) {
  auto scheduler = ThreadPoolScheduler::Create();
  const int expected = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_EQ(scheduler->worker_count(), expected);
  EXPECT_FALSE(scheduler->IsThreadConfined());
}

TEST(ThreadPoolSchedulerTest, BlockOnFromAnotherThreadWaitsForCompletion) {
  auto scheduler = MakePool();
  Event go("go");
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    co_await go.Wait();
    co_return 7;
  });
  absl::StatusOr<int> result;
  std::thread waiter([&] { result = BlockOn(*scheduler, task); });
  std::this_thread::sleep_for(milliseconds(5));
  go.Set();
  waiter.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 7);
}

TEST(ThreadPoolSchedulerTest, BlockOnInsideATaskFails) {
  auto scheduler = MakePool();
  Task<absl::StatusCode> task = Spawn(*scheduler, [&]() -> Co<absl::StatusCode> {
    Task<int> inner = Spawn(*scheduler, Twice(1));
    co_return BlockOn(*scheduler, inner).status().code();
  });
  absl::StatusOr<absl::StatusCode> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, absl::StatusCode::kFailedPrecondition);
}

TEST(ThreadPoolSchedulerTest, BlockOnACancelledTaskReturnsCancelled) {
  auto scheduler = MakePool();
  Task<void> task = Spawn(*scheduler, []() -> Co<void> { co_await SuspendOnce{}; });
  task.Cancel();
  absl::Status status = BlockOn(*scheduler, task);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
}

TEST(ThreadPoolSchedulerTest, AwaitingTasksAcrossWorkersGivesValuesAndExceptions) {
  auto scheduler = MakePool(4);
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    int sum = 0;
    std::vector<Task<int>> children;
    for (int i = 0; i < 100; ++i) children.push_back(Spawn(*scheduler, Twice(i)));
    for (Task<int>& child : children) sum += co_await child;
    Task<void> failing = Spawn(*scheduler, Throws("child failed"));
    try {
      co_await failing;
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()) == "child failed") sum += 1;
    }
    co_return sum;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 2 * (99 * 100 / 2) + 1);
}

TEST(ThreadPoolSchedulerTest, IsTaskRunningTracksTheTaskLifetime) {
  auto scheduler = MakePool();
  Event go("go");
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> { co_await go.Wait(); });
  EXPECT_TRUE(scheduler->IsTaskRunning(task.id()));
  EXPECT_EQ(scheduler->LiveTaskCount(), 1u);
  go.Set();
  ASSERT_TRUE(BlockOn(*scheduler, task).ok());
  EXPECT_FALSE(scheduler->IsTaskRunning(task.id()));
  EXPECT_FALSE(scheduler->IsTaskRunning(TaskId{123456}));
  EXPECT_EQ(scheduler->LiveTaskCount(), 0u);
}

// An id block marks ids it has not issued yet as live (so it is not freed
// while in use); IsTaskRunning must still say no for them.
TEST(ThreadPoolSchedulerTest, IsTaskRunningIsFalseForIdsNotIssuedYet) {
  auto scheduler = MakePool();
  Event go("go");
  // From this thread (a shared id slot) and from a worker (its own block).
  Task<void> outer = Spawn(*scheduler, [&]() -> Co<void> { co_await go.Wait(); });
  std::atomic<uint64_t> inner_id{0};
  Task<void> spawner = Spawn(*scheduler, [&]() -> Co<void> {
    Task<void> inner = Spawn(*CurrentScheduler(), [&]() -> Co<void> { co_await go.Wait(); });
    inner_id = inner.id().value;
    co_await inner;
  });
  ASSERT_TRUE(WaitFor([&] { return inner_id.load() != 0; }));
  // The last id each allocator issued: `spawner` from this thread's slot
  // (after `outer`), `inner` from the worker's block.
  for (uint64_t id : {spawner.id().value, inner_id.load()}) {
    EXPECT_TRUE(scheduler->IsTaskRunning(TaskId{id})) << "task " << id;
    EXPECT_FALSE(scheduler->IsTaskRunning(TaskId{id + 1}))
        << "id " << id + 1 << " was never issued";
  }
  EXPECT_EQ(scheduler->LiveTaskCount(), 3u);
  go.Set();
  ASSERT_TRUE(BlockOn(*scheduler, outer).ok());
  ASSERT_TRUE(BlockOn(*scheduler, spawner).ok());
  EXPECT_FALSE(scheduler->IsTaskRunning(outer.id()));
  EXPECT_FALSE(scheduler->IsTaskRunning(TaskId{spawner.id().value + 1}));
}

// Id blocks whose 32 tasks all finished are reused for later ids. Over many
// rounds (far more blocks than are ever live at once) ids stay unique and
// increasing for one spawning thread, finished ids are not running, a task
// kept alive in an old block stays tracked, and BlockOn on a task in a
// reused block (whose waiter bit must start clear) waits for it.
TEST(ThreadPoolSchedulerTest, ReusedIdBlocksKeepIdsUniqueAndTracked) {
  auto scheduler = MakePool();
  Event hold("hold");
  Task<void> long_lived = Spawn(*scheduler, [&]() -> Co<void> { co_await hold.Wait(); });
  std::set<uint64_t> seen = {long_lived.id().value};
  uint64_t last = long_lived.id().value;
  for (int round = 0; round < 40; ++round) {
    Event go("go");
    Task<int> gated = Spawn(*scheduler, [&]() -> Co<int> {
      co_await go.Wait();
      co_return 5;
    });
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 40; ++i) tasks.push_back(Spawn(*scheduler, Twice(i)));
    const uint64_t gated_id = gated.id().value;
    EXPECT_GT(gated_id, last);
    EXPECT_TRUE(seen.insert(gated_id).second) << "id " << gated_id << " issued twice";
    last = gated_id;
    for (int i = 0; i < 40; ++i) {
      const uint64_t id = tasks[i].id().value;
      EXPECT_GT(id, last) << "round " << round;
      EXPECT_TRUE(seen.insert(id).second) << "id " << id << " issued twice";
      last = id;
      absl::StatusOr<int> value = BlockOn(*scheduler, tasks[i]);
      ASSERT_TRUE(value.ok()) << value.status();
      EXPECT_EQ(*value, 2 * i);
    }
    // A BlockOn from another thread registers a waiter in the gated task's
    // block, which by now is often a reused one.
    absl::StatusOr<int> gated_value;
    std::thread waiter([&] { gated_value = BlockOn(*scheduler, gated); });
    EXPECT_TRUE(scheduler->IsTaskRunning(gated.id()));
    go.Set();
    waiter.join();
    ASSERT_TRUE(gated_value.ok()) << gated_value.status();
    EXPECT_EQ(*gated_value, 5);
    for (const Task<int>& task : tasks) EXPECT_FALSE(scheduler->IsTaskRunning(task.id()));
    EXPECT_FALSE(scheduler->IsTaskRunning(gated.id()));
    EXPECT_TRUE(scheduler->IsTaskRunning(long_lived.id()));
    EXPECT_EQ(scheduler->LiveTaskCount(), 1u);
  }
  hold.Set();
  ASSERT_TRUE(BlockOn(*scheduler, long_lived).ok());
  EXPECT_EQ(scheduler->LiveTaskCount(), 0u);
}

// A value that counts its destruction on `home`'s thread or elsewhere
// (moved-from copies do not count).
class CountsWhereDestroyed {
 public:
  CountsWhereDestroyed(std::thread::id home, std::atomic<int>* on_home,
                       std::atomic<int>* elsewhere)
      : home_(home), on_home_(on_home), elsewhere_(elsewhere) {}
  CountsWhereDestroyed(CountsWhereDestroyed&& other) noexcept
      : home_(other.home_),
        on_home_(std::exchange(other.on_home_, nullptr)),
        elsewhere_(std::exchange(other.elsewhere_, nullptr)) {}
  CountsWhereDestroyed& operator=(CountsWhereDestroyed&&) = delete;
  ~CountsWhereDestroyed() {
    if (on_home_ == nullptr) return;
    (std::this_thread::get_id() == home_ ? on_home_ : elsewhere_)->fetch_add(1);
  }

 private:
  std::thread::id home_;
  std::atomic<int>* on_home_;
  std::atomic<int>* elsewhere_;
};

// The registry hands each finished task back to the thread that spawned it,
// which frees the header (destroying a detached task's result) while it
// spawns more. A burst that finishes entirely while its spawner waits (the
// usual fork-join) is freed by the spawner during its next burst, not by the
// workers: that keeps malloc's frees on the allocating thread. The one
// exception: a worker hands a batch over inside a task's own OnTaskFinished,
// and the spawner may release that task before the worker drops its last
// reference (at most one task in 16).
TEST(ThreadPoolSchedulerTest, BurstsOfDetachedTasksAreFreedByTheirSpawner) {
  constexpr int kBurst = 2000;
  constexpr int kRounds = 3;
  std::atomic<int> on_home{0};
  std::atomic<int> elsewhere{0};
  std::atomic<int> done{0};
  const std::thread::id home = std::this_thread::get_id();
  {
    auto scheduler = MakePool();
    for (int round = 0; round < kRounds; ++round) {
      Event go("go");
      for (int i = 0; i < kBurst; ++i) {
        Spawn(*scheduler, [&]() -> Co<CountsWhereDestroyed> {
          co_await go.Wait();
          done.fetch_add(1);
          co_return CountsWhereDestroyed(home, &on_home, &elsewhere);
        }).Detach();
      }
      go.Set();
      ASSERT_TRUE(WaitFor([&] { return done.load() == (round + 1) * kBurst; }));
      ASSERT_TRUE(WaitFor([&] { return scheduler->LiveTaskCount() == 0; }));
    }
  }  // what is still held is freed here, on this thread
  EXPECT_EQ(on_home.load() + elsewhere.load(), kRounds * kBurst);
  EXPECT_LE(elsewhere.load(), kRounds * kBurst / 16)
      << "finished headers were freed by the workers, not handed back";
}

TEST(ThreadPoolSchedulerTest, LabelsAreAcceptedAndIgnored) {
  auto scheduler = MakePool();
  const TaskLabel label("pool-test-label");
  scheduler->Deprioritize(label);
  Task<int> task = SpawnLabeled(*scheduler, label, Twice(5));
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 10);
  EXPECT_EQ(task.metadata().label, label);
}

// -----------------------------------------------------------------------------
// The main thread
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, ForegroundWorkRunsOnTheLoopThreadOnly) {
  auto scheduler = MakePool();
  const std::thread::id main_id = std::this_thread::get_id();
  EXPECT_TRUE(scheduler->IsMainThread());
  struct Seen {
    bool background_main = true;
    std::thread::id background_thread;
    bool foreground_main = false;
    std::thread::id foreground_thread;
  };
  Seen seen;
  Task<void> app = SpawnForeground(*scheduler, [&]() -> Co<void> {
    seen.foreground_main = scheduler->IsMainThread();
    seen.foreground_thread = std::this_thread::get_id();
    co_await Spawn(*scheduler, [&]() -> Co<void> {
      seen.background_main = scheduler->IsMainThread();
      seen.background_thread = std::this_thread::get_id();
      co_return;
    });
    // Resumed on the main thread again after awaiting background work.
    if (!scheduler->IsMainThread()) seen.foreground_main = false;
  });
  ASSERT_TRUE(scheduler->RunUntil(app).ok());
  EXPECT_TRUE(seen.foreground_main);
  EXPECT_EQ(seen.foreground_thread, main_id);
  EXPECT_FALSE(seen.background_main);
  EXPECT_NE(seen.background_thread, main_id);

  bool other_thread_main = true;
  std::thread([&] { other_thread_main = scheduler->IsMainThread(); }).join();
  EXPECT_FALSE(other_thread_main);
}

TEST(ThreadPoolSchedulerTest, ForegroundWorkRunsInFifoOrder) {
  auto scheduler = MakePool();
  std::vector<int> order;  // touched only on the main thread
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 50; ++i) {
    tasks.push_back(SpawnForeground(*scheduler, [&order, i]() -> Co<void> {
      order.push_back(i);
      co_return;
    }));
  }
  ASSERT_TRUE(scheduler->RunUntil(tasks.back()).ok());
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadPoolSchedulerTest, BlockOnOnTheMainThreadDrainsForegroundWork) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    // Background work that needs the main thread to make progress.
    int value = co_await SpawnForeground(*scheduler, []() -> Co<int> { co_return 5; });
    co_return value + 1;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 6);
}

TEST(ThreadPoolSchedulerTest, RunReturnsAfterStopAndStopIsStickyAndIdempotent) {
  auto scheduler = MakePool();
  std::atomic<int> foreground_polls{0};
  SpawnForeground(*scheduler, [&]() -> Co<void> {
    ++foreground_polls;
    co_await Sleep(milliseconds(5));
    ++foreground_polls;
    scheduler->Stop();
    scheduler->Stop();  // idempotent
  }).Detach();
  EXPECT_FALSE(scheduler->IsStopped());
  ASSERT_TRUE(scheduler->Run().ok());
  EXPECT_EQ(foreground_polls.load(), 2);
  EXPECT_TRUE(scheduler->IsStopped());
  // Sticky: a later Run returns at once, RunUntil reports the stop.
  EXPECT_TRUE(scheduler->Run().ok());
  EXPECT_EQ(scheduler->RunUntil([] { return false; }).code(), absl::StatusCode::kCancelled);
  // BlockOn still drains the loop.
  Task<int> task = SpawnForeground(*scheduler, Twice(4));
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 8);
}

TEST(ThreadPoolSchedulerTest, StopFromAnotherThreadBeforeRunIsNotLost) {
  auto scheduler = MakePool();
  std::thread([&] { scheduler->Stop(); }).join();
  EXPECT_TRUE(scheduler->Run().ok());
}

TEST(ThreadPoolSchedulerTest, RunUntilPredicateReturnsOnceItHolds) {
  auto scheduler = MakePool();
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i) {
    Spawn(*scheduler, [&]() -> Co<void> {
      co_await Sleep(milliseconds(2));
      ++done;
    }).Detach();
  }
  ASSERT_TRUE(scheduler->RunUntil([&] { return done.load() == 10; }).ok());
  EXPECT_EQ(done.load(), 10);
}

TEST(ThreadPoolSchedulerTest, RunOffTheMainThreadOrInsideATaskFails) {
  auto scheduler = MakePool();
  absl::Status off_main;
  std::thread([&] { off_main = scheduler->Run(); }).join();
  EXPECT_EQ(off_main.code(), absl::StatusCode::kFailedPrecondition) << off_main;
  Task<absl::StatusCode> task = SpawnForeground(*scheduler, [&]() -> Co<absl::StatusCode> {
    co_return scheduler->Run().code();
  });
  absl::StatusOr<absl::StatusCode> inside = BlockOn(*scheduler, task);
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(*inside, absl::StatusCode::kFailedPrecondition);
}

// -----------------------------------------------------------------------------
// Timers
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, SleepsWakeInDeadlineOrder) {
  auto scheduler = MakePool();
  std::mutex mu;
  std::vector<int> order;
  std::vector<Task<void>> tasks;
  for (int ms : {45, 5, 25}) {
    tasks.push_back(Spawn(*scheduler, [&, ms]() -> Co<void> {
      const Instant start = scheduler->Now();
      co_await Sleep(milliseconds(ms));
      EXPECT_GE(scheduler->Now() - start, milliseconds(ms));
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(ms);
    }));
  }
  for (Task<void>& task : tasks) ASSERT_TRUE(BlockOn(*scheduler, task).ok());
  EXPECT_EQ(order, (std::vector<int>{5, 25, 45}));
}

TEST(ThreadPoolSchedulerTest, SleepUntilAPastDeadlineDoesNotSuspend) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    co_await SleepUntil(scheduler->Now() - milliseconds(1));
    co_await Sleep(Duration::zero());
    co_return 1;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 1);
}

TEST(ThreadPoolSchedulerTest, TimerWithPassedDeadlineWakesAtOnce) {
  auto scheduler = MakePool();
  // A sleeper an hour away keeps the timer thread waiting for that deadline:
  // a past-deadline timer queued without waking the timer thread, or fired
  // only with the next deadline, would be an hour late.
  std::atomic<bool> asleep{false};
  Task<void> sleeper = Spawn(*scheduler, [&]() -> Co<void> {
    asleep = true;
    co_await Sleep(std::chrono::hours(1));
  });
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !sleeper.state()->running(); }));
  // Let the timer thread go back to waiting for the hour-away deadline. (A
  // shorter pause only makes the test less sensitive, never flaky.)
  std::this_thread::sleep_for(milliseconds(20));
  std::atomic<bool> resumed{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    // StartTimer directly, with a deadline already behind us.
    struct PastTimer {
      Scheduler* scheduler;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<>) {
        scheduler->StartTimer(scheduler->Now() - milliseconds(5), CurrentWaker());
      }
      void await_resume() const noexcept {}
    };
    co_await PastTimer{scheduler.get()};
    resumed = true;
  });
  // Bounded, so a late wake fails here (after a minute) instead of hanging.
  ASSERT_TRUE(WaitFor([&] { return resumed.load(); })) << "the past-deadline timer never fired";
  EXPECT_FALSE(sleeper.IsFinished()) << "woken no later than an hour-away timer";
  EXPECT_TRUE(BlockOn(*scheduler, task).ok());
}

TEST(ThreadPoolSchedulerTest, CancellingASleepingTaskCancelsItsTimer) {
  auto scheduler = MakePool();
  std::atomic<int> destroyed{0};
  std::atomic<bool> asleep{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    FrameGuard guard(&destroyed);
    asleep = true;
    co_await Sleep(std::chrono::hours(1));
    ADD_FAILURE() << "a cancelled sleep resumed";
  });
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !task.state()->running(); }));
  task.Cancel();
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_TRUE(task.IsCancelled());
  EXPECT_FALSE(scheduler->IsTaskRunning(task.id()));
  // Cancelling an unknown or fired timer is a no-op.
  scheduler->CancelTimer(TimerId{});
  scheduler->CancelTimer(TimerId{0xdeadbeef});
}

TEST(ThreadPoolSchedulerTest, ManyCancelledTimersAreCompactedAndSleepStillWorks) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    // Start and cancel far-future timers over and over (the heap is
    // compacted once cancelled entries dominate), then really sleep.
    std::vector<TimerId> ids;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 1000; ++i) {
        ids.push_back(
            scheduler->StartTimer(scheduler->Now() + std::chrono::hours(1), CurrentWaker()));
      }
      for (TimerId id : ids) scheduler->CancelTimer(id);
      ids.clear();
    }
    co_await Sleep(milliseconds(1));
    co_return 3;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 3);
}

// -----------------------------------------------------------------------------
// Park / Unparker
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, ParkReturnsWhenATaskUnparks) {
  auto scheduler = MakePool();
  Unparker unparker = scheduler->GetUnparker();
  std::atomic<bool> unparked{false};
  Spawn(*scheduler, [&unparked, unparker]() -> Co<void> {
    co_await Sleep(milliseconds(5));
    unparked = true;
    unparker.Unpark();
  }).Detach();
  EXPECT_TRUE(scheduler->Park(std::chrono::seconds(30)));
  EXPECT_TRUE(unparked.load());
}

TEST(ThreadPoolSchedulerTest, ParkTimesOutWithoutAnUnpark) {
  auto scheduler = MakePool();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(scheduler->Park(milliseconds(5)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(5));
}

TEST(ThreadPoolSchedulerTest, UnparkBeforeParkIsRemembered) {
  auto scheduler = MakePool();
  std::thread([unparker = scheduler->GetUnparker()] { unparker.Unpark(); }).join();
  EXPECT_TRUE(scheduler->Park(std::nullopt));
  EXPECT_FALSE(scheduler->Park(milliseconds(1)));  // consumed
}

// -----------------------------------------------------------------------------
// Exceptions
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, ExceptionFromADetachedTaskIsLoggedWithItsSpawnSite) {
  auto scheduler = MakePool();
  const int line = __LINE__ + 1;
  Spawn(*scheduler, Throws("pool-boom-detached")).Detach();
  ASSERT_TRUE(WaitFor([] {
    return LogCapture().Contents().find("pool-boom-detached") != std::string::npos;
  })) << LogCapture().Contents();
  const std::string log = LogCapture().Contents();
  const size_t at = log.find("pool-boom-detached");
  const size_t line_start = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at);
  const std::string entry = log.substr(line_start, at - line_start);
  EXPECT_NE(entry.find(absl::StrCat("thread_pool_scheduler_test.cc:", line)), std::string::npos)
      << entry;
  EXPECT_NE(entry.find("never observed"), std::string::npos) << entry;
}

TEST(ThreadPoolSchedulerTest, ExceptionOfATaskDetachedAfterItFailedIsLogged) {
  auto scheduler = MakePool();
  Task<void> task = Spawn(*scheduler, Throws("pool-boom-late-detach"));
  ASSERT_TRUE(WaitFor([&] { return task.IsFinished() && !scheduler->IsTaskRunning(task.id()); }));
  task.Detach();
  EXPECT_NE(LogCapture().Contents().find("pool-boom-late-detach"), std::string::npos);
}

TEST(ThreadPoolSchedulerTest, ObservedExceptionIsNotLogged) {
  auto scheduler = MakePool();
  Task<void> task = Spawn(*scheduler, Throws("pool-boom-observed"));
  EXPECT_THROW((void)BlockOn(*scheduler, task), std::runtime_error);
  task = Task<void>();
  EXPECT_EQ(LogCapture().Contents().find("pool-boom-observed"), std::string::npos);
}

// -----------------------------------------------------------------------------
// Task lifecycle cases with real threads (shared/docs/task-lifecycle.md)
// -----------------------------------------------------------------------------

// Case 2: another thread wakes the task while it is being polled. The wake is
// remembered and the task is re-queued when the poll ends: never lost, never
// polled on two threads at once.
TEST(ThreadPoolSchedulerTest, WakeFromAnotherThreadWhileRunningReschedulesOnce) {
  auto scheduler = MakePool(4);
  constexpr int kRounds = 2000;
  std::mutex mu;
  std::condition_variable cv;
  Waker handed;               // guarded by mu
  bool has_waker = false;     // guarded by mu
  std::atomic<bool> woken{false};
  std::atomic<bool> in_poll{false};
  std::atomic<int> double_polls{0};
  std::atomic<bool> quit{false};

  std::thread waker_thread([&] {
    for (;;) {
      Waker waker;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return has_waker || quit.load(); });
        if (!has_waker) return;
        waker = std::move(handed);
        has_waker = false;
      }
      waker.Wake();  // the task is spinning inside its poll right now
      woken = true;
    }
  });

  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    int resumed = 0;
    for (int round = 0; round < kRounds; ++round) {
      if (in_poll.exchange(true)) ++double_polls;
      woken = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        handed = CurrentWaker();  // valid for this poll's suspension
        has_waker = true;
      }
      cv.notify_one();
      while (!woken.load()) std::this_thread::yield();
      in_poll = false;
      co_await SuspendOnce{};  // nothing else will wake us
      ++resumed;
    }
    co_return resumed;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  quit = true;
  {
    std::lock_guard<std::mutex> lock(mu);
  }
  cv.notify_one();
  waker_thread.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, kRounds);
  EXPECT_EQ(double_polls.load(), 0);
}

// A waker made for one suspension does nothing at a later one.
TEST(ThreadPoolSchedulerTest, StaleWakerFromAnotherThreadDoesNothing) {
  auto scheduler = MakePool();
  WakerSlot first;
  WakerSlot second;
  std::atomic<int> stage{0};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    co_await ParkWaker{&first};
    stage = 1;
    co_await ParkWaker{&second};
    stage = 2;
  });
  ASSERT_TRUE(WaitFor([&] { return static_cast<bool>(first.Get()) && !task.state()->running(); }));
  std::thread([&] { first.Get().Wake(); }).join();
  ASSERT_TRUE(WaitFor([&] { return stage.load() == 1 && !task.state()->running(); }));
  std::thread([&] { first.Get().Wake(); }).join();  // stale: must not resume the second wait
  std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(stage.load(), 1);
  second.Get().Wake();
  EXPECT_TRUE(BlockOn(*scheduler, task).ok());
  EXPECT_EQ(stage.load(), 2);
}

// Case 6: the handle is cancelled (or dropped) from another thread while the
// task runs: the frame is destroyed when the poll ends, not during it.
TEST(ThreadPoolSchedulerTest, CancelFromAnotherThreadWhileRunningDefersDestruction) {
  auto scheduler = MakePool();
  for (bool drop_handle : {false, true}) {
    std::atomic<int> destroyed{0};
    std::atomic<bool> running{false};
    std::atomic<bool> cancel_done{false};
    std::atomic<int> destroyed_during_poll{-1};
    Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
      FrameGuard guard(&destroyed);
      running = true;
      while (!cancel_done.load()) std::this_thread::yield();
      destroyed_during_poll = destroyed.load();
      co_await SuspendOnce{};
      ADD_FAILURE() << "a cancelled task resumed";
    });
    const TaskId id = task.id();
    ASSERT_TRUE(WaitFor([&] { return running.load(); }));
    std::thread canceller([&] {
      if (drop_handle) {
        task = Task<void>();
      } else {
        task.Cancel();
        EXPECT_TRUE(task.IsCancelled());
      }
      cancel_done = true;
    });
    canceller.join();
    ASSERT_TRUE(WaitFor([&] { return destroyed.load() == 1; }));
    EXPECT_EQ(destroyed_during_poll.load(), 0);
    ASSERT_TRUE(WaitFor([&] { return !scheduler->IsTaskRunning(id); }));
  }
}

// Case 5 with a foreign thread: the handle is dropped while the task waits
// on an Event; a later Set touches nothing freed.
TEST(ThreadPoolSchedulerTest, CancelWhileSuspendedThenWakeIsHarmless) {
  auto scheduler = MakePool();
  Event event("never");
  std::atomic<int> destroyed{0};
  std::atomic<bool> waiting{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    FrameGuard guard(&destroyed);
    waiting = true;
    co_await event.Wait();
  });
  ASSERT_TRUE(WaitFor([&] { return waiting.load() && event.WaiterCount() == 1; }));
  std::thread([&] { task = Task<void>(); }).join();
  EXPECT_EQ(destroyed.load(), 1);
  event.Set();
  EXPECT_EQ(scheduler->LiveTaskCount(), 0u);
}

// -----------------------------------------------------------------------------
// Stress
// -----------------------------------------------------------------------------

// Work that needs every worker at once (each task waits for all the others
// to be running) must wake every sleeping worker: a lost wake-up leaves a
// task queued behind a sleeping worker, and the round never completes.
TEST(ThreadPoolSchedulerStressTest, WorkNeedingEveryWorkerWakesThemAll) {
  for (int workers : {2, 4}) {
    auto scheduler = MakePool(workers);
    for (int round = 0; round < 300; ++round) {
      struct Round {
        std::atomic<int> arrived{0};
        std::atomic<int> done{0};
        std::atomic<bool> give_up{false};  // so a failure does not hang shutdown
      };
      auto state = std::make_shared<Round>();
      for (int i = 0; i < workers; ++i) {
        Spawn(*scheduler, [state, workers]() -> Co<void> {
          state->arrived.fetch_add(1);
          while (state->arrived.load() < workers && !state->give_up.load()) {
            std::this_thread::yield();
          }
          state->done.fetch_add(1);
          co_return;
        }).Detach();
      }
      const bool all_ran =
          WaitFor([&] { return state->done.load() == workers; }, std::chrono::seconds(30));
      state->give_up = true;
      ASSERT_TRUE(all_ran) << workers << " workers, round " << round << ": only "
                           << state->arrived.load() << " tasks started";
      ASSERT_TRUE(WaitFor([&] { return scheduler->LiveTaskCount() == 0; }));
      // Now and then let the workers fall asleep before the next round.
      if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
}

// One million in every build (about 1 s in the default build, 11 s under
// TSan on 2 vCPUs). SIMSCHED_POOL_STRESS_TASKS overrides it.
int64_t StressTaskCount() {
  absl::StatusOr<uint64_t> n =
      ::simsched::testing::EnvironmentUint64("SIMSCHED_POOL_STRESS_TASKS", 1'000'000);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? static_cast<int64_t>(*n) : 0;
}

struct StressCounters {
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> event_waits{0};
  std::atomic<int64_t> children{0};
};

Co<void> StressChild(StressCounters* counters) {
  co_await Yield();
  counters->children.fetch_add(1, std::memory_order_relaxed);
}

// Yields once; every 4th task also waits on an Event that the spawning
// thread sets (racing with the wait); every 16th awaits a child task.
Co<void> StressTask(Scheduler* scheduler, int64_t index, std::shared_ptr<Event> event,
                    StressCounters* counters) {
  co_await Yield();
  if (event != nullptr) {
    co_await event->Wait();
    counters->event_waits.fetch_add(1, std::memory_order_relaxed);
  }
  if (index % 16 == 0) co_await Spawn(*scheduler, StressChild(counters));
  counters->completed.fetch_add(1, std::memory_order_relaxed);
}

TEST(ThreadPoolSchedulerStressTest, MillionTasksFromSeveralThreadsAllComplete) {
  const int64_t total = StressTaskCount();
  constexpr int kSpawners = 4;
  constexpr int64_t kChunk = 1024;
  auto scheduler = MakePool(4);
  StressCounters counters;
  int64_t expected_event_waits = 0;
  int64_t expected_children = 0;
  for (int64_t i = 0; i < total; ++i) {
    if (i % 4 == 1) ++expected_event_waits;
    if (i % 16 == 0) ++expected_children;
  }
  std::vector<std::thread> spawners;
  for (int s = 0; s < kSpawners; ++s) {
    spawners.emplace_back([&, s] {
      for (int64_t begin = s * kChunk; begin < total; begin += kSpawners * kChunk) {
        const int64_t end = std::min(total, begin + kChunk);
        std::vector<std::shared_ptr<Event>> events;
        for (int64_t i = begin; i < end; ++i) {
          std::shared_ptr<Event> event;
          if (i % 4 == 1) {
            event = std::make_shared<Event>("stress");
            events.push_back(event);
          }
          Spawn(*scheduler, StressTask(scheduler.get(), i, std::move(event), &counters)).Detach();
        }
        // Woken from this (foreign) thread, racing with the tasks' waits.
        for (const auto& event : events) event->Set();
      }
    });
  }
  for (std::thread& spawner : spawners) spawner.join();
  const bool all_done = WaitFor([&] { return counters.completed.load() == total; },
                                std::chrono::seconds(600));
  ASSERT_TRUE(all_done) << "completed " << counters.completed.load() << " of " << total
                        << " (a lost wake-up leaves tasks suspended); live tasks "
                        << scheduler->LiveTaskCount();
  EXPECT_EQ(counters.completed.load(), total);
  EXPECT_EQ(counters.event_waits.load(), expected_event_waits);
  EXPECT_EQ(counters.children.load(), expected_children);
  ASSERT_TRUE(WaitFor([&] { return scheduler->LiveTaskCount() == 0; }));
}

// A task spawned by a task that then keeps its worker busy must be stolen by
// another worker (woken for it if asleep), not wait behind the busy one.
TEST(ThreadPoolSchedulerStressTest, WorkQueuedBehindABusyWorkerIsStolen) {
  auto scheduler = MakePool(2);
  for (int round = 0; round < 200; ++round) {
    auto ran = std::make_shared<std::atomic<bool>>(false);
    Task<bool> busy = Spawn(*scheduler, [ran, scheduler = scheduler.get()]() -> Co<bool> {
      Spawn(*scheduler, [ran]() -> Co<void> {
        ran->store(true);
        co_return;
      }).Detach();
      // Holds this worker until the child ran elsewhere (or gives up).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!ran->load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      co_return ran->load();
    });
    absl::StatusOr<bool> stolen = BlockOn(*scheduler, busy);
    ASSERT_TRUE(stolen.ok()) << stolen.status();
    ASSERT_TRUE(*stolen) << "round " << round << ": the child waited behind its busy parent";
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// -----------------------------------------------------------------------------
// Shutdown
// -----------------------------------------------------------------------------

struct ShutdownCounters {
  std::atomic<int> frames{0};      // frames created
  std::atomic<int> destroyed{0};   // frames destroyed
  std::atomic<int> suspended{0};   // tasks that reached their wait
  std::atomic<int> resurrected_ran{0};
};

// Counts a coroutine frame from its creation to its destruction, whether or
// not the body ever ran: pass it by value as a parameter (the frame keeps its
// own copy).
class FrameToken {
 public:
  explicit FrameToken(ShutdownCounters* counters) : counters_(counters) {
    counters_->frames.fetch_add(1);
  }
  FrameToken(FrameToken&& other) noexcept : counters_(std::exchange(other.counters_, nullptr)) {}
  FrameToken& operator=(FrameToken&&) = delete;
  ~FrameToken() {
    if (counters_ != nullptr) counters_->destroyed.fetch_add(1);
  }

 private:
  ShutdownCounters* counters_;
};

Co<void> CountsRun(FrameToken, ShutdownCounters* counters) {
  counters->resurrected_ran.fetch_add(1);
  co_return;
}

// On destruction (during shutdown) spawns a task and wakes waiters: neither
// may run.
class Resurrector {
 public:
  Resurrector(Scheduler* scheduler, Event* event, ShutdownCounters* counters)
      : scheduler_(scheduler), event_(event), counters_(counters) {}
  Resurrector(const Resurrector&) = delete;
  Resurrector& operator=(const Resurrector&) = delete;
  ~Resurrector() {
    Spawn(*scheduler_, CountsRun(FrameToken(counters_), counters_)).Detach();
    event_->Set();
  }

 private:
  Scheduler* scheduler_;
  Event* event_;
  ShutdownCounters* counters_;
};

Co<void> SleepsForever(FrameToken, ShutdownCounters* counters) {
  counters->suspended.fetch_add(1);
  co_await Sleep(std::chrono::hours(1));
  ADD_FAILURE() << "slept an hour";
}

Co<void> WaitsForever(FrameToken, Event* event, ShutdownCounters* counters, bool resurrect) {
  std::optional<Resurrector> resurrector;
  if (resurrect) resurrector.emplace(CurrentScheduler(), event, counters);
  counters->suspended.fetch_add(1);
  co_await event->Wait();
}

Co<void> AwaitsChild(FrameToken, Scheduler* scheduler, ShutdownCounters* counters) {
  Task<void> child = Spawn(*scheduler, SleepsForever(FrameToken(counters), counters));
  counters->suspended.fetch_add(1);
  co_await child;
}

Co<void> YieldsForever(FrameToken, ShutdownCounters* counters) {
  counters->suspended.fetch_add(1);
  for (;;) co_await Yield();
}

Co<void> NeverRuns(FrameToken) { co_return; }

TEST(ThreadPoolSchedulerShutdownTest, TenThousandSuspendedTasksAreCancelledAndFreed) {
  ShutdownCounters counters;
  Event never("never");
  Event resurrect_target("resurrect-target");
  std::vector<Task<void>> kept;  // some handles outlive the scheduler
  std::vector<Waker> kept_wakers;
  {
    auto scheduler = MakePool(4);
    int suspended_expected = 0;
    for (int i = 0; i < 10'000; ++i) {
      Task<void> task;
      switch (i % 4) {
        case 0:
          task = Spawn(*scheduler, SleepsForever(FrameToken(&counters), &counters));
          suspended_expected += 1;
          break;
        case 1:
          task = Spawn(*scheduler,
                       WaitsForever(FrameToken(&counters), &never, &counters, i % 8 == 1));
          suspended_expected += 1;
          break;
        case 2:
          task = Spawn(*scheduler, AwaitsChild(FrameToken(&counters), scheduler.get(), &counters));
          suspended_expected += 2;  // the task and its sleeping child
          break;
        case 3:
          task = Spawn(*scheduler, WaitsForever(FrameToken(&counters), &resurrect_target,
                                                &counters, false));
          suspended_expected += 1;
          break;
      }
      if (i % 100 == 0) {
        kept.push_back(std::move(task));
      } else {
        task.Detach();
      }
    }
    // Busy tasks, so some work is queued at shutdown.
    for (int i = 0; i < 64; ++i) {
      Spawn(*scheduler, YieldsForever(FrameToken(&counters), &counters)).Detach();
    }
    suspended_expected += 64;
    // Foreground tasks nobody ever drains.
    for (int i = 0; i < 100; ++i) {
      SpawnForeground(*scheduler, NeverRuns(FrameToken(&counters))).Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return counters.suspended.load() == suspended_expected; }))
        << counters.suspended.load() << " of " << suspended_expected;
    // Wakers held outside, for after the scheduler is gone.
    for (Task<void>& task : kept) kept_wakers.push_back(Waker::ForTask(task.state()));
    EXPECT_GE(scheduler->LiveTaskCount(), 10'000u);
  }  // the scheduler is destroyed here
  EXPECT_EQ(counters.resurrected_ran.load(), 0);
  EXPECT_EQ(counters.destroyed.load(), counters.frames.load());
  // 10,000 tasks, 2,500 children, 64 busy, 100 foreground, and one task
  // spawned by each of the 1,250 resurrectors.
  EXPECT_EQ(counters.frames.load(), 10'000 + 2'500 + 64 + 100 + 1'250);
  for (Task<void>& task : kept) {
    EXPECT_TRUE(task.IsFinished());
    EXPECT_TRUE(task.IsCancelled());
  }
  for (const Waker& waker : kept_wakers) waker.Wake();  // no-ops
  never.Set();
  kept.clear();
  kept_wakers.clear();
}

TEST(ThreadPoolSchedulerShutdownTest, PlainObjectOnTheStackShutsDownToo) {
  std::atomic<int> destroyed{0};
  std::atomic<int> asleep{0};
  {
    ThreadPoolScheduler scheduler({.worker_threads = 2});
    for (int i = 0; i < 100; ++i) {
      Spawn(scheduler, [&]() -> Co<void> {
        FrameGuard guard(&destroyed);
        ++asleep;
        co_await Sleep(std::chrono::hours(1));
      }).Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return asleep.load() == 100; }));
    EXPECT_EQ(scheduler.LiveTaskCount(), 100u);
  }
  EXPECT_EQ(destroyed.load(), 100);
}

// A task that holds the last reference to the scheduler (as executors do)
// completes on a worker: the scheduler is destroyed on a helper thread.
TEST(ThreadPoolSchedulerShutdownTest, TaskHoldingTheLastReferenceCompletesOnAWorker) {
  std::atomic<int> destroyed{0};
  std::weak_ptr<ThreadPoolScheduler> weak;
  {
    auto scheduler = MakePool();
    weak = scheduler;
    Spawn(*scheduler, [scheduler, &destroyed]() -> Co<void> {
      FrameGuard guard(&destroyed);
      co_await Sleep(milliseconds(5));
      co_await Yield();
    }).Detach();
  }
  ASSERT_TRUE(WaitFor([&] { return weak.expired(); }));
  ThreadPoolScheduler::JoinDeferredDestructions();
  EXPECT_EQ(destroyed.load(), 1);
}

// The handle of a suspended task holding the last reference is dropped on a
// thread outside the scheduler: the scheduler shuts down from inside that
// task's teardown and is freed when the teardown ends.
TEST(ThreadPoolSchedulerShutdownTest, DroppingTheHandleOfTheLastReferenceHolderIsSafe) {
  std::atomic<int> destroyed{0};
  std::atomic<int> others_destroyed{0};
  std::atomic<bool> asleep{false};
  std::weak_ptr<ThreadPoolScheduler> weak;
  Task<void> holder;
  {
    auto scheduler = MakePool();
    weak = scheduler;
    for (int i = 0; i < 10; ++i) {
      Spawn(*scheduler, [&others_destroyed]() -> Co<void> {
        FrameGuard guard(&others_destroyed);
        co_await Sleep(std::chrono::hours(1));
      }).Detach();
    }
    holder = Spawn(*scheduler, [scheduler, &destroyed, &asleep]() -> Co<void> {
      FrameGuard guard(&destroyed);
      asleep = true;
      co_await Sleep(std::chrono::hours(1));
    });
  }
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !holder.state()->running(); }));
  EXPECT_FALSE(weak.expired());
  holder = Task<void>();  // cancels: the frame drops the last reference
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(others_destroyed.load(), 10);
}

// A foreground task holding the last reference completes inside Run() on the
// main thread: Run returns Aborted and the scheduler is destroyed after it.
TEST(ThreadPoolSchedulerShutdownTest, ForegroundTaskHoldingTheLastReferenceEndsTheLoop) {
  std::atomic<int> destroyed{0};
  ThreadPoolScheduler* raw;
  {
    auto scheduler = MakePool();
    raw = scheduler.get();
    SpawnForeground(*scheduler, [scheduler, &destroyed]() -> Co<void> {
      FrameGuard guard(&destroyed);
      co_await Yield();
    }).Detach();
  }
  absl::Status status = raw->Run();  // `raw` must not be used after this
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  ThreadPoolScheduler::JoinDeferredDestructions();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(ThreadPoolSchedulerShutdownTest, SchedulingDuringShutdownDropsTheWork) {
  ShutdownCounters counters;
  Event event("wake-during-shutdown");
  {
    auto scheduler = MakePool();
    for (int i = 0; i < 100; ++i) {
      Spawn(*scheduler, WaitsForever(FrameToken(&counters), &event, &counters, /*resurrect=*/true))
          .Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return counters.suspended.load() == 100; }));
  }
  EXPECT_EQ(counters.resurrected_ran.load(), 0);
  EXPECT_EQ(counters.destroyed.load(), counters.frames.load());
}

}  // namespace
}  // namespace simsched
