// ThreadPoolScheduler: spawning and BlockOn, the main thread's loop and
// exceptions of detached tasks. Timers, lifecycle races, stress and shutdown
// have their own files (thread_pool_scheduler_*_test.cc).

#include "scheduler/thread_pool_scheduler.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/testing/pool_test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace simsched {
namespace {

using internal::MakePool;
using internal::SuspendOnce;
using internal::WaitFor;
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

Co<int> Twice(int x) {
  co_await Yield();
  co_return x * 2;
}

Co<void> Throws(std::string message) {
  co_await Yield();
  throw std::runtime_error(message);
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

TEST(ThreadPoolSchedulerTest, BlockOnOrRunUntilATaskOfAnotherPoolFailsClearly) {
  auto scheduler = MakePool();
  auto other = MakePool();
  Task<int> task = Spawn(*other, []() -> Co<int> { co_return 1; });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "belongs to another scheduler"))
      << result.status();
  absl::Status run = scheduler->RunUntil(task);
  EXPECT_EQ(run.code(), absl::StatusCode::kInvalidArgument) << run;
  // On its own pool it is fine.
  absl::StatusOr<int> own = BlockOn(*other, task);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, 1);
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

}  // namespace
}  // namespace simsched
