// The TestScheduler's fast step (uniform, PCT and POS picks with one limit
// compare standing for the per-step checks) against its general step: the
// same seed must give the same decisions either way. Trace recording and a
// poll cost model turn every step into a general one (and trace recording
// also turns off direct enqueue), so a run with either must hash the same as
// a plain run. Also: what ends a run (a failure, the budget) stops it at the
// same step, work the fast step does not pick (lanes, due timers) is still
// picked when it appears mid-run, and steps with one task queued (which the
// run loops take without the generator's output) pick what the general
// step picks.

#include <chrono>
#include <coroutine>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/outcome.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

const std::vector<std::string>& Strategies() {
  static const std::vector<std::string> strategies = {
      "random", "fifo", "pct:3", "pct:5:k=40", "pos", "mix", "mix:k=60"};
  return strategies;
}

// How a run is driven: the plain fast path, or one that forces the general
// step (trace recording; a poll cost model that charges nothing), or one
// step at a time through Step() (the fast step outside the run loops).
enum class Drive { kPlain, kRecordTrace, kZeroCostModel, kStepByStep };

class ZeroCost : public PollCostModel {
 public:
  Duration PollCost(TaskId) override { return Duration::zero(); }
};

// Wakes through a slot: a consuming wake or a copy, as primitives do.
struct Slot {
  Waker waiter;
  int value = 0;
};
struct TakeSlot {
  Slot& slot;
  bool await_ready() const { return slot.value != 0; }
  void await_suspend(std::coroutine_handle<>) {
    DescribeWait("TakeSlot");
    slot.waiter = CurrentWaker();
  }
  int await_resume() { return std::exchange(slot.value, 0); }
};

// Suspends on a timer that is due at once (deadline: now): the timer fires
// at the start of the next step, which the fast step cannot do.
struct DueTimer {
  TestScheduler& s;
  bool await_ready() const { return false; }
  void await_suspend(std::coroutine_handle<>) { s.StartTimer(s.Now(), CurrentWaker()); }
  void await_resume() const {}
};

struct RunResult {
  absl::StatusCode code;
  uint64_t hash;
  uint64_t steps;
  bool operator==(const RunResult&) const = default;
};

void PrintTo(const RunResult& r, std::ostream* os) {
  *os << "{code " << static_cast<int>(r.code) << ", hash " << r.hash << ", steps " << r.steps
      << "}";
}

// A mix of what a step meets: yields, spawns from tasks, joins, events,
// consuming and copied wakes, sleeps, due timers, labels (one deprioritized)
// and lane work that appears mid-run. Optionally a task fails the run at its
// 7th poll.
RunResult RunScenario(const std::string& strategy, uint64_t seed, Drive drive,
                      uint64_t max_steps = 0, bool fail = false) {
  TestScheduler s({.seed = seed,
                   .strategy = strategy,
                   .max_steps = max_steps,
                   .record_trace = drive == Drive::kRecordTrace});
  ZeroCost zero_cost;
  if (drive == Drive::kZeroCostModel) s.SetPollCostModel(&zero_cost);
  s.Deprioritize(TaskLabel("low"));
  Event ready("ready");
  Slot slots[3];
  for (int i = 0; i < 3; ++i) {
    Spawn(s, [&, i]() -> Co<void> {
      for (int round = 0; round < 4; ++round) {
        co_await ready.Wait();
        co_await TakeSlot{slots[i]};
        if (round % 2 == 0) co_await Sleep(std::chrono::microseconds(round + i));
        if (round == 1) co_await DueTimer{s};
        for (int y = 0; y < i + 2; ++y) co_await Yield();
      }
    }).Detach();
  }
  for (int i = 0; i < 4; ++i) {
    Spawn(s, [&, i]() -> Co<void> {
      for (int y = 0; y < 10 + 3 * i; ++y) {
        co_await Yield();
        if (fail && i == 2 && y == 6) s.Fail("the scenario's planned failure");
        if (y == 4 + i) {
          // Lane work queued from inside a background task, mid-run.
          SpawnForeground(s, [&]() -> Co<void> {
            co_await Yield();
            co_return;
          }).Detach();
        }
      }
      Task<int> child = Spawn(s, [&]() -> Co<int> {
        co_await Yield();
        co_return i;
      });
      EXPECT_EQ(co_await child, i);
    }).Detach();
  }
  SpawnLabeled(s, "low", [&]() -> Co<void> {
    co_await ready.Wait();
    co_await Yield();
  }).Detach();
  SpawnLabeled(s, "io", [&]() -> Co<void> {
    for (int y = 0; y < 5; ++y) co_await Yield();
  }).Detach();
  SpawnForeground(s, [&]() -> Co<void> {
    co_await Yield();
    ready.Set();
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 3; ++i) {
        while (slots[i].value != 0) co_await Yield();
        slots[i].value = round + 1;
        if (slots[i].waiter) {
          if ((round + i) % 2 == 0) {
            std::move(slots[i].waiter).Wake();
          } else {
            slots[i].waiter.Wake("a slot put");
            slots[i].waiter = Waker();
          }
        }
      }
      co_await Sleep(std::chrono::microseconds(10));
    }
  }).Detach();
  absl::Status status;
  if (drive == Drive::kStepByStep) {
    // Step() neither advances time nor checks the budget: do what Run() does.
    for (;;) {
      if (!s.status().ok()) {
        status = s.status();
        break;
      }
      if (max_steps != 0 && s.step_count() >= max_steps) {
        status = absl::ResourceExhaustedError("budget");
        break;
      }
      if (s.Step()) continue;
      status = s.Run();  // advances time to the next timer (or ends the run)
      break;
    }
  } else {
    status = s.Run();
  }
  return {status.code(), s.TraceHash(), s.step_count()};
}

TEST(FastStepTest, FastAndGeneralStepsMakeTheSameDecisions) {
  for (const std::string& strategy : Strategies()) {
    for (uint64_t seed = 0; seed < 30; ++seed) {
      const RunResult plain = RunScenario(strategy, seed, Drive::kPlain);
      ASSERT_EQ(plain.code, absl::StatusCode::kOk) << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kRecordTrace))
          << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kZeroCostModel))
          << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kStepByStep))
          << strategy << " seed " << seed;
    }
  }
}

TEST(FastStepTest, AFailureRecordedMidRunStopsTheRunAtThatStep) {
  for (const std::string& strategy : Strategies()) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      const RunResult plain = RunScenario(strategy, seed, Drive::kPlain, 0, /*fail=*/true);
      EXPECT_EQ(plain.code, absl::StatusCode::kAborted) << strategy << " seed " << seed;
      EXPECT_EQ(plain, RunScenario(strategy, seed, Drive::kRecordTrace, 0, true))
          << strategy << " seed " << seed;
    }
  }
  // And the step is the failing one: nothing runs after it.
  for (const std::string& strategy : Strategies()) {
    TestScheduler s({.seed = 3, .strategy = strategy});
    uint64_t failed_at = 0;
    for (int i = 0; i < 5; ++i) {
      Spawn(s, [&, i]() -> Co<void> {
        for (int y = 0; y < 50; ++y) {
          co_await Yield();
          if (i == 3 && y == 20) {
            failed_at = s.step_count();
            s.Fail("stop here");
          }
        }
      }).Detach();
    }
    const absl::Status status = s.Run();
    EXPECT_TRUE(IsTestFailure(status)) << strategy << ": " << status;
    EXPECT_NE(failed_at, 0u) << strategy;
    EXPECT_EQ(s.step_count(), failed_at) << strategy;
  }
}

TEST(FastStepTest, TheStepBudgetStopsTheRunAtTheSameStep) {
  for (const std::string& strategy : Strategies()) {
    for (uint64_t budget : {1u, 17u, 60u}) {
      const RunResult plain = RunScenario(strategy, 5, Drive::kPlain, budget);
      EXPECT_EQ(plain.code, absl::StatusCode::kResourceExhausted) << strategy << " " << budget;
      EXPECT_EQ(plain.steps, budget) << strategy;
      EXPECT_EQ(plain, RunScenario(strategy, 5, Drive::kRecordTrace, budget))
          << strategy << " " << budget;
    }
  }
}

// Background tasks spin until lane work queued by one of them has run: the
// fast step must hand the pick back to the general step as soon as a lane
// has work (else the spin would end only at its cap).
TEST(FastStepTest, LaneWorkQueuedFromATaskIsPicked) {
  for (const char* strategy : {"random", "pos"}) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      TestScheduler s({.seed = seed, .strategy = strategy});
      bool lane_ran = false;
      int spins = 0;
      for (int i = 0; i < 3; ++i) {
        Spawn(s, [&, i]() -> Co<void> {
          if (i == 0) {
            co_await Yield();
            SpawnForeground(s, [&]() -> Co<void> {
              lane_ran = true;
              co_return;
            }).Detach();
          }
          while (!lane_ran && spins < 10'000) {
            ++spins;
            co_await Yield();
          }
        }).Detach();
      }
      ASSERT_TRUE(s.Run().ok());
      EXPECT_TRUE(lane_ran) << strategy << " seed " << seed;
      EXPECT_LT(spins, 1'000) << strategy << " seed " << seed;
    }
  }
}

// A timer that is already due when a task starts it fires before the next
// pick, so the woken task competes at once (the others spin until it runs).
TEST(FastStepTest, ATimerDueWhenStartedFiresBeforeTheNextPick) {
  for (const char* strategy : {"random", "pos", "pct:3"}) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      TestScheduler s({.seed = seed, .strategy = strategy});
      bool woke = false;
      int spins = 0;
      Spawn(s, [&]() -> Co<void> {
        co_await DueTimer{s};
        woke = true;
      }).Detach();
      for (int i = 0; i < 2; ++i) {
        Spawn(s, [&]() -> Co<void> {
          while (!woke && spins < 10'000) {
            ++spins;
            co_await Yield();
          }
        }).Detach();
      }
      ASSERT_TRUE(s.Run().ok());
      EXPECT_TRUE(woke) << strategy << " seed " << seed;
      // Time never moves here: only firing the due timer at a step can wake it.
      EXPECT_EQ(s.Elapsed(), Duration::zero());
      if (strategy != std::string("pct:3")) {
        // (PCT may starve it behind a spinner until its priority steps end.)
        EXPECT_LT(spins, 1'000) << strategy << " seed " << seed;
      }
    }
  }
}

// Chains of wakes with one task queued (a ping-pong through slots: each
// task wakes the other and suspends), which the run loops step without the
// generator's output or a swap (UniformFastStepLoop), between phases with
// several tasks queued, re-queues with one task queued (a yield alone), and
// a task cancelled while it is the only one queued (the fast poll leaves it
// to the general one). The uniform pick must be what the general step
// makes, step for step, and the generator's sequence after a chain must be
// the same: the order in which the yielders after the chain finish says so.
struct ChainResult {
  RunResult run;
  std::vector<int> finish_order;
  int messages = 0;
  bool operator==(const ChainResult&) const = default;
};

void PrintTo(const ChainResult& r, std::ostream* os) {
  PrintTo(r.run, os);
  *os << " messages " << r.messages << " order";
  for (int i : r.finish_order) *os << " " << i;
}

ChainResult RunChainScenario(uint64_t seed, Drive drive) {
  TestScheduler s({.seed = seed, .record_trace = drive == Drive::kRecordTrace});
  ZeroCost zero_cost;
  if (drive == Drive::kZeroCostModel) s.SetPollCostModel(&zero_cost);
  ChainResult result;
  Slot to_pong;
  Slot to_ping;
  const auto put = [](Slot& slot, int value) {
    slot.value = value;
    if (slot.waiter) std::move(slot.waiter).Wake();
  };
  Spawn(s, [&]() -> Co<void> {
    for (int phase = 0; phase < 3; ++phase) {
      for (int i = 1; i <= 40; ++i) {  // a chain: one task queued at each pick
        put(to_pong, i);
        ++result.messages;
        const int reply = co_await TakeSlot{to_ping};
        EXPECT_EQ(reply, i + 1);
        if (i % 10 == 0) co_await Yield();  // a re-queue with one task queued
      }
      // Several tasks queued: their finishing order is the generator's.
      std::vector<Task<void>> yielders;
      for (int t = 0; t < 5; ++t) {
        yielders.push_back(Spawn(s, [&, t, phase]() -> Co<void> {
          for (int y = 0; y < 3; ++y) co_await Yield();
          result.finish_order.push_back(phase * 10 + t);
        }));
      }
      for (Task<void>& yielder : yielders) co_await yielder;
      // A task cancelled while it is the only one queued: woken by this
      // task, then cancelled before anything polls it.
      Slot doomed_slot;
      Task<void> doomed = Spawn(s, [&]() -> Co<void> {
        co_await TakeSlot{doomed_slot};
        ADD_FAILURE() << "a cancelled task ran";
      });
      co_await Yield();  // the doomed task runs to its wait (one or two queued)
      put(doomed_slot, 1);
      doomed.Cancel();
      co_await Sleep(std::chrono::microseconds(1));  // only the doomed task is queued
    }
    put(to_pong, -1);
  }).Detach();
  Spawn(s, [&]() -> Co<void> {
    for (;;) {
      const int value = co_await TakeSlot{to_pong};
      if (value < 0) co_return;
      put(to_ping, value + 1);
      ++result.messages;
    }
  }).Detach();
  absl::Status status;
  if (drive == Drive::kStepByStep) {
    for (;;) {
      if (s.Step()) continue;
      status = s.Run();
      break;
    }
  } else {
    status = s.Run();
  }
  result.run = {status.code(), s.TraceHash(), s.step_count()};
  return result;
}

TEST(FastStepTest, StepsWithOneTaskQueuedMakeTheSameDecisions) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const ChainResult plain = RunChainScenario(seed, Drive::kPlain);
    ASSERT_EQ(plain.run.code, absl::StatusCode::kOk) << "seed " << seed;
    EXPECT_EQ(plain.messages, 3 * 40 * 2) << "seed " << seed;
    EXPECT_EQ(plain.finish_order.size(), 15u) << "seed " << seed;
    EXPECT_EQ(plain, RunChainScenario(seed, Drive::kRecordTrace)) << "seed " << seed;
    EXPECT_EQ(plain, RunChainScenario(seed, Drive::kZeroCostModel)) << "seed " << seed;
    EXPECT_EQ(plain, RunChainScenario(seed, Drive::kStepByStep)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace simsched
