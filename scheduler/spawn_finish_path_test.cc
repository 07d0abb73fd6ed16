// A task's spawn and its finish on the TestScheduler, the short paths
// against the general ones.
//
// Spawn: a background task spawned on the owner thread without trace
// recording is queued by the scheduler's StartSpawnedTask (one call: id,
// live index, the strategy's enqueue hook, the push), where the general path
// is OnTaskSpawned then ScheduleSelf (the virtual Schedule, its thread and
// trace checks). Both must give the same decisions: the same trace hash, the
// same tasks seen by a TaskObserver in the same order, under every strategy,
// for spawns from plain code before Run(), between Step()s and after a run,
// and from tasks during Run(); against trace recording (the general path
// for every spawn) and a decorator (whose tasks take the general path), and
// against hashes recorded before the short path existed.
//
// Finish: a task's frames are destroyed without a reference held for the
// destruction unless it is deferred past the nesting bound; a completing
// task whose parameters own a chain of tasks longer than that bound
// destroys each once, and one owning its own handle frees itself safely.

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/internal/frame_destruction.h"
#include "scheduler/internal/testing/forwarding_scheduler.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

// How spawns reach the TestScheduler: directly (the short path for
// background work), with trace recording (every spawn the general way), or
// through a decorator (its tasks are not the TestScheduler's own).
enum class Drive { kPlain, kRecordTrace, kDecorator };

class LogObserver : public TaskObserver {
 public:
  void OnTaskSpawned(TaskId task, TaskId parent) override {
    log.push_back("spawn " + std::to_string(task.value) + " by " +
                  std::to_string(parent.value));
  }
  void OnTaskFinished(TaskId task) override { log.push_back("end " + std::to_string(task.value)); }
  std::vector<std::string> log;
};

struct RunResult {
  uint64_t hash = 0;
  uint64_t steps = 0;
  std::vector<std::string> events;  // the observer's log
  bool ok = false;
  bool operator==(const RunResult&) const = default;
};

void PrintTo(const RunResult& r, std::ostream* os) {
  *os << "{hash " << r.hash << ", steps " << r.steps << ", " << r.events.size()
      << " events, ok " << r.ok << "}";
}

Co<void> Yielder(int yields) {
  for (int i = 0; i < yields; ++i) co_await Yield();
}

// Spawns children from inside a task (the direct path while Run() drives),
// one of them awaited, one sleeping.
Co<void> Spawner(Scheduler& s, int n) {
  for (int i = 0; i < n; ++i) {
    Spawn(s, Yielder(i + 1)).Detach();
    co_await Yield();
  }
  Task<void> child = Spawn(s, [&s]() -> Co<void> {
    co_await Sleep(std::chrono::microseconds(3));
    Spawn(s, Yielder(2)).Detach();  // spawned by a task woken by a timer
  });
  SpawnLabeled(s, "io", Yielder(2)).Detach();
  co_await child;
}

RunResult RunScenario(const std::string& strategy, uint64_t seed, Drive drive) {
  std::shared_ptr<TestScheduler> test = TestScheduler::Create(
      {.seed = seed, .strategy = strategy, .record_trace = drive == Drive::kRecordTrace});
  LogObserver observer;
  test->SetTaskObserver(&observer);
  std::unique_ptr<internal::ForwardingScheduler> decorator;
  if (drive == Drive::kDecorator) decorator = std::make_unique<internal::ForwardingScheduler>(test);
  Scheduler& s = decorator != nullptr ? static_cast<Scheduler&>(*decorator) : *test;

  // From plain code before Run(): background work (the short path),
  // interleaved with labeled and foreground work (the general path).
  for (int i = 0; i < 12; ++i) {
    if (i % 5 == 3) {
      SpawnLabeled(s, "io", Yielder(i % 3)).Detach();
    } else if (i % 7 == 5) {
      SpawnForeground(s, Yielder(1)).Detach();
    } else if (i % 4 == 0) {
      Spawn(s, Spawner(s, i / 4 + 1)).Detach();
    } else {
      Spawn(s, Yielder(i % 4)).Detach();
    }
  }
  Task<int> held = Spawn(s, []() -> Co<int> {
    co_await Sleep(std::chrono::microseconds(1));
    co_return 7;
  });
  bool ok = test->Run().ok();
  ok = ok && held.IsFinished();

  // After a run, and between single steps.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) Spawn(s, Yielder(i)).Detach();
    test->Step();
    Spawn(s, Spawner(s, round + 1)).Detach();
    test->Step();
    test->Step();
  }
  ok = ok && test->Run().ok();
  test->SetTaskObserver(nullptr);
  return {test->TraceHash(), test->step_count(), observer.log, ok};
}

const std::vector<std::string>& Strategies() {
  static const std::vector<std::string> strategies = {"random", "fifo", "pct:3", "pos",
                                                      "mix"};
  return strategies;
}

TEST(SpawnPathTest, DirectSpawnMakesTheSameDecisionsAsTheGeneralPath) {
  for (const std::string& strategy : Strategies()) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const RunResult plain = RunScenario(strategy, seed, Drive::kPlain);
      ASSERT_TRUE(plain.ok) << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kRecordTrace))
          << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kDecorator))
          << strategy << " seed " << seed;
    }
  }
}

// Recorded with the code before the short spawn path (every spawn through
// OnTaskSpawned and the virtual Schedule). Never edit these to make the test
// pass: a different hash means the spawn path changed a decision.
TEST(SpawnPathTest, TraceHashesAreThoseOfTheGeneralPath) {
  struct Golden {
    const char* strategy;
    uint64_t seed;
    uint64_t hash;
    uint64_t steps;
  };
  const Golden goldens[] = {
      {"random", 0, 0xfc97fc2e53f00854ULL, 141},
      {"random", 1, 0x69d60b40f0b185e2ULL, 141},
      {"random", 2, 0x89d2749c813e53f1ULL, 141},
      {"fifo", 0, 0x1ef4154101479ff7ULL, 141},
      {"pct:3", 0, 0x9926847701946076ULL, 141},
      {"pct:3", 1, 0x130d96f1da0f8014ULL, 141},
      {"pct:3", 2, 0xed7eeecc79eec8a6ULL, 141},
      {"pos", 0, 0xfbae1b9d8f3a8f89ULL, 141},
      {"pos", 1, 0xf821148587b91064ULL, 141},
      {"pos", 2, 0x7d2521bf79d89c93ULL, 141},
      {"mix", 0, 0x3fba058fa1782a82ULL, 141},
  };
  for (const Golden& g : goldens) {
    const RunResult plain = RunScenario(g.strategy, g.seed, Drive::kPlain);
    EXPECT_TRUE(plain.ok) << g.strategy << " seed " << g.seed;
    EXPECT_EQ(plain.hash, g.hash) << g.strategy << " seed " << g.seed;
    EXPECT_EQ(plain.steps, g.steps) << g.strategy << " seed " << g.seed;
  }
}

// A spawn from another OS thread takes the general path: without parking it
// fails the run (the task is dropped, not run); with parking it runs.
TEST(SpawnPathTest, ASpawnFromAnotherThreadTakesTheCheckedPath) {
  for (const bool allow_parking : {false, true}) {
    // Counts the dropped task's frame: the shutdown destroys it (with no
    // task live and nothing queued, only the inbox holds it).
    struct CountsDestruction {
      explicit CountsDestruction(int* count) : destroyed(count) {}
      CountsDestruction(const CountsDestruction&) = delete;
      ~CountsDestruction() { ++*destroyed; }
      int* destroyed;
    };
    int destroyed = 0;
    bool ran = false;
    {
      TestScheduler s({.seed = 1, .allow_parking = allow_parking});
      std::thread other([&] {
        Spawn(s, [&ran, guard = std::make_shared<CountsDestruction>(&destroyed)]() -> Co<void> {
          ran = true;
          co_return;
        }).Detach();
      });
      other.join();
      const absl::Status status = s.Run();
      if (allow_parking) {
        EXPECT_TRUE(status.ok()) << status;
        EXPECT_TRUE(ran);
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
        EXPECT_NE(status.message().find("from another OS thread"), std::string::npos) << status;
        EXPECT_FALSE(ran);
      }
    }
    EXPECT_EQ(destroyed, 1) << "the task's frame (and its captures) must be gone";
  }
}

// --- Finish -----------------------------------------------------------------

// Records its depth when destroyed.
struct DepthRecord {
  std::vector<int>* order;
  int depth;
  ~DepthRecord() { order->push_back(depth); }
};

// Sleeps forever, its frame owning `child` (a parameter lives until the
// frame is destroyed) and a record of its depth.
Co<void> Holder(Task<void> child, std::vector<int>* order, int depth) {
  DepthRecord record{order, depth};
  co_await Sleep(std::chrono::hours(1));
  (void)child;
}

// Returns after a millisecond (when every holder sleeps in its hour); its
// frame, destroyed when it completes, owns `child` (a parameter lives until
// then): completing cancels the whole chain below.
Co<void> CompleteOwning(Task<void> child) {
  co_await Sleep(std::chrono::milliseconds(1));
  (void)child;
}

TEST(FinishPathTest, ACompletingTaskDestroysAnOwnedChainPastTheNestingBoundOnce) {
  // Each task's frame owns the next one's handle: completing the top task
  // destroys its frame, which cancels the next, whose frame destruction
  // cancels the next... deeper than the nesting bound, so some of those
  // destructions are deferred until the outermost one ends.
  constexpr int kDepth = 3 * internal::kMaxNestedDestroyDepth + 7;
  for (const bool plain_spawn : {true, false}) {
    TestScheduler s({.seed = 4, .record_trace = !plain_spawn});
    std::vector<int> order;
    Task<void> chain;
    for (int depth = 0; depth < kDepth; ++depth) {
      chain = Spawn(s, Holder(std::move(chain), &order, depth));
    }
    Task<void> top = Spawn(s, CompleteOwning(std::move(chain)));
    ASSERT_TRUE(s.Run().ok());
    EXPECT_TRUE(top.IsFinished());
    EXPECT_FALSE(top.IsCancelled());
    ASSERT_EQ(order.size(), size_t{kDepth});
    std::vector<bool> seen(kDepth, false);
    for (int depth : order) {
      ASSERT_FALSE(seen[depth]) << "depth " << depth << " destroyed twice";
      seen[depth] = true;
    }
    // Within the bound, as a call stack unwinds: each holder's local before
    // the holder it owns (its parameter, destroyed after its locals).
    for (int i = 0; i < 100; ++i) ASSERT_EQ(order[i], kDepth - 1 - i) << "position " << i;
    EXPECT_EQ(s.LiveTaskCount(), 0u);
  }
}

TEST(FinishPathTest, ATaskWhoseFrameOwnsItsOwnHandleFreesItselfOnce) {
  // The frame holds the only handle to its own task: finishing destroys the
  // frame, which drops the handle (a cancel of a finishing task, and a
  // release) while the task's own reference still keeps the block alive.
  TestScheduler s({.seed = 2});
  auto slot = std::make_shared<Task<void>>();
  std::weak_ptr<Task<void>> watch = slot;
  *slot = Spawn(s, [slot]() mutable -> Co<void> {
    co_await Yield();
    slot.reset();  // the lambda's copy stays in the frame until it is destroyed
  });
  slot.reset();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

// The short finish (PollEnded, for a confined task whose root returned)
// against the general one (a TestScheduler that allows parking is not
// thread-confined, so its tasks finish through Complete, DestroyFrame and
// Finish): results, exceptions, joiners registered before and after the
// end, a detached task's exception, and the same decisions.

Co<int> IntAfterYield(int value) {
  co_await Yield();
  co_return value;
}
Co<std::string> StringAfterYield() {
  co_await Yield();
  co_return std::string(100, 'x');  // on the heap: a leak shows under LSan
}
int g_referenced = 7;
Co<int&> ReferenceAfterYield() {
  co_await Yield();
  co_return g_referenced;
}
Co<int> ThrowsAfterYield(int yields) {
  for (int i = 0; i < yields; ++i) co_await Yield();
  throw std::runtime_error("int boom");
}
Co<void> VoidThrowsAfterYield() {
  co_await Yield();
  throw std::runtime_error("void boom");
}

struct FinishResult {
  std::vector<std::string> log;
  uint64_t hash = 0;
  bool operator==(const FinishResult&) const = default;
};

FinishResult RunFinishScenario(bool confined, uint64_t seed) {
  TestScheduler s({.seed = seed, .allow_parking = !confined});
  FinishResult result;
  std::vector<std::string>& log = result.log;
  Spawn(s, [&]() -> Co<void> {
    // Awaited while running (the joiner is registered when the task ends)
    // and after it ended (no joiner).
    Task<int> a = Spawn(s, IntAfterYield(42));
    Task<std::string> b = Spawn(s, StringAfterYield());
    Task<int&> c = Spawn(s, ReferenceAfterYield());
    Task<int> d = Spawn(s, ThrowsAfterYield(1));
    Task<void> e = Spawn(s, VoidThrowsAfterYield());
    Task<int> late = Spawn(s, IntAfterYield(5));
    log.push_back("a " + std::to_string(co_await a));
    log.push_back("b " + std::to_string((co_await b).size()));
    int& ref = co_await c;
    log.push_back(std::string("c ") + (&ref == &g_referenced ? "same" : "other"));
    try {
      co_await d;
      log.push_back("d returned");
    } catch (const std::runtime_error& error) {
      log.push_back(std::string("d ") + error.what());
    }
    try {
      co_await e;
      log.push_back("e returned");
    } catch (const std::runtime_error& error) {
      log.push_back(std::string("e ") + error.what());
    }
    for (int i = 0; i < 5; ++i) co_await Yield();
    log.push_back(late.IsFinished() ? "late finished" : "late running");
    log.push_back("late " + std::to_string(co_await late));
  }).Detach();
  const absl::Status status = s.Run();
  log.push_back(status.ok() ? "ok" : "failed");
  log.push_back("live " + std::to_string(s.LiveTaskCount()));
  result.hash = s.TraceHash();
  return result;
}

TEST(FinishPathTest, TheShortFinishGivesWhatTheGeneralOneGives) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const FinishResult confined = RunFinishScenario(/*confined=*/true, seed);
    EXPECT_EQ(confined, RunFinishScenario(/*confined=*/false, seed)) << "seed " << seed;
    const std::vector<std::string> expected_prefix = {
        "a 42", "b 100", "c same", "d int boom", "e void boom"};
    ASSERT_GE(confined.log.size(), expected_prefix.size() + 4);
    EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), confined.log.begin()))
        << "seed " << seed;
    EXPECT_EQ(confined.log[expected_prefix.size() + 1], "late 5");
    EXPECT_EQ(confined.log.end()[-2], "ok");
    EXPECT_EQ(confined.log.back(), "live 0");
  }
}

TEST(FinishPathTest, ADetachedTaskThatThrowsFailsTheRunOnEitherFinish) {
  for (const bool confined : {true, false}) {
    TestScheduler s({.seed = 3, .allow_parking = !confined});
    Spawn(s, ThrowsAfterYield(2)).Detach();
    const absl::Status status = s.Run();
    EXPECT_FALSE(status.ok()) << "confined " << confined;
    EXPECT_NE(std::string(status.message()).find("int boom"), std::string::npos)
        << status.message();
    EXPECT_EQ(s.LiveTaskCount(), 0u);
  }
}

TEST(FinishPathTest, AnExceptionOfATaskDetachedAfterItEndedIsReportedOnce) {
  // The task ends (short finish) while its handle is held; detaching then
  // reports through the logger and does not fail the run or leak.
  TestScheduler s({.seed = 5});
  Task<int> task = Spawn(s, ThrowsAfterYield(0));
  ASSERT_TRUE(s.Run().ok());
  ASSERT_TRUE(task.IsFinished());
  EXPECT_FALSE(task.IsCancelled());
  task.Detach();
  EXPECT_TRUE(s.Run().ok());
}

TEST(FinishPathTest, AFinishingFrameThatCancelsATaskOfItsOwnSchedulerMidFinish) {
  // The finishing task's frame owns a sleeping sibling's handle: destroying
  // the frame (inside the short finish) cancels the sibling, a nested
  // destruction, before the finishing task is marked completed.
  for (const bool confined : {true, false}) {
    TestScheduler s({.seed = 6, .allow_parking = !confined});
    std::vector<int> order;
    Task<void> sleeper = Spawn(s, Holder(Task<void>(), &order, 1));
    Task<void> top = Spawn(s, CompleteOwning(std::move(sleeper)));
    ASSERT_TRUE(s.Run().ok());
    EXPECT_TRUE(top.IsFinished());
    EXPECT_FALSE(top.IsCancelled());
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_EQ(s.LiveTaskCount(), 0u);
  }
}

// --- Timers -----------------------------------------------------------------

TEST(NextTimerTest, CancellingTheEarliestTimerDoesNotMoveTimeToIt) {
  // Run() advances virtual time to the earliest live timer. Cancelling the
  // earliest one leaves a stale cached deadline, which must be refreshed,
  // not jumped to.
  TestScheduler s({.seed = 1});
  TimerId early;
  bool fired_early = false;
  Spawn(s, [&]() -> Co<void> {
    early = s.StartTimer(s.Now() + std::chrono::milliseconds(1), Waker());
    co_await Sleep(std::chrono::milliseconds(5));
  }).Detach();
  Spawn(s, [&]() -> Co<void> {
    co_await Yield();
    s.CancelTimer(early);
    co_await Sleep(std::chrono::milliseconds(3));
    fired_early = s.Elapsed() == std::chrono::milliseconds(3);
  }).Detach();
  ASSERT_TRUE(s.Run().ok());
  EXPECT_TRUE(fired_early) << "the task after the cancelled timer woke at the wrong time";
  EXPECT_EQ(s.Elapsed(), std::chrono::milliseconds(5));
}

TEST(NextTimerTest, TimeStepsAreTheSameWithAndWithoutCancellations) {
  // Timers that are started and cancelled around the live ones must leave
  // the sequence of virtual times (each hashed into the trace) unchanged.
  auto run = [](bool with_cancelled) {
    TestScheduler s({.seed = 9});
    std::vector<int64_t> woke;
    for (int i = 0; i < 20; ++i) {
      Spawn(s, [&s, &woke, i, with_cancelled]() -> Co<void> {
        if (with_cancelled) {
          const TimerId decoy = s.StartTimer(s.Now() + std::chrono::microseconds(i), Waker());
          co_await Yield();
          s.CancelTimer(decoy);
        }
        co_await Sleep(std::chrono::microseconds(3 * i + 2));
        woke.push_back(s.Elapsed().count());
      }).Detach();
    }
    EXPECT_TRUE(s.Run().ok());
    std::sort(woke.begin(), woke.end());
    return woke;
  };
  EXPECT_EQ(run(false), run(true));
}

}  // namespace
}  // namespace simsched
