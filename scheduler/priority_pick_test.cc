// The priority pick of PCT and POS (TestScheduler::PickByPriority with
// internal::TopPriorities, scheduler/internal/top_priorities.h) must pick
// exactly what the old full scan picked, at every step of every seed.
//
//   * TopPrioritiesTest: the structure against the old scan (kept here as the
//     model) over thousands of seeded random sequences of enqueues, picks,
//     demotions, uniform removals, erasures and lane candidates, with
//     priorities from a small range so that ties are common. After every
//     operation both queues must hold the same tasks in the same order.
//   * PriorityPickTest: whole runs of a scenario with lanes, blocked lanes
//     (BlockOn with a budget, which takes a queued task out of the middle of
//     the background queue), deprioritized labels, timers, events and spawns,
//     under pct and pos, compared against trace hashes recorded with the old
//     scan (commit 73192e0, before TopPriorities existed).

// #include "scheduler/internal/top_priorities.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Whole runs against hashes recorded with the old scan.

// A seed-chosen scenario (its shape from its own Rng, not the scheduler's).
void SpawnScenario(const std::shared_ptr<TestScheduler>& s, uint64_t seed) {
  Rng shape(seed ^ 0x5eedULL);
  BackgroundExecutor background(s);
  const TaskLabel slow("slow");
  if (shape.Below(2) == 0) background.Deprioritize(slow);
  auto event = std::make_shared<Event>("go");
  // Nobody waits on the event forever.
  Spawn(*s, [event]() -> Co<void> {
    co_await Sleep(milliseconds(5));
    event->Set();
  }).Detach();
  const int tasks = 1 + static_cast<int>(shape.Below(14));
  // A quarter of the runs are long (past PCT's switch to uniform picks).
  const uint64_t max_rounds = shape.Below(4) == 0 ? 600 : 120;
  for (int t = 0; t < tasks; ++t) {
    const uint64_t task_seed = shape.Next64();
    Spawn(*s, [event, task_seed, max_rounds]() -> Co<void> {
      Rng r(task_seed);
      const int rounds = static_cast<int>(r.Below(max_rounds));
      for (int i = 0; i < rounds; ++i) {
        switch (r.Below(10)) {
          case 0: co_await Sleep(milliseconds(r.Below(3))); break;
          case 1:
            if (r.Below(4) == 0) {
              event->Set();
            } else if (!event->IsSet()) {
              co_await event->Wait();
            }
            break;
          default: co_await Yield(); break;
        }
      }
      event->Set();
    }).Detach();
  }
  const int low = static_cast<int>(shape.Below(4));
  for (int t = 0; t < low; ++t) {
    background.SpawnLabeled(slow, [rounds = shape.Below(5)]() -> Co<void> {
      for (uint64_t i = 0; i < rounds; ++i) co_await Yield();
    }).Detach();
  }
  const int lanes = static_cast<int>(shape.Below(3));
  for (int l = 0; l < lanes; ++l) {
    auto lane = ForegroundExecutor::ForNewLane(s, "lane" + std::to_string(l));
    const int lane_tasks = 1 + static_cast<int>(shape.Below(4));
    for (int t = 0; t < lane_tasks; ++t) {
      const uint64_t rounds = shape.Below(20);
      const bool blocks = shape.Below(3) == 0;
      const uint64_t budget = shape.Below(6);
      lane.Spawn([s, rounds, blocks, budget]() -> Co<void> {
        for (uint64_t i = 0; i < rounds; ++i) co_await Yield();
        if (blocks) {
          // Blocks the lane; a budgeted BlockOn first takes the awaited task
          // out of the background queue and polls it.
          Task<void> inner = Spawn(*s, [rounds]() -> Co<void> {
            for (uint64_t i = 0; i < rounds % 7; ++i) co_await Yield();
          });
          co_await Yield();
          (void)s->BlockOn(inner, BlockOnBudget{.max_steps = budget});
          (void)s->BlockOn(inner);
        }
      }).Detach();
    }
  }
}

// One hash over `seeds` runs: their trace hashes and step counts in order.
// `long_runs` counts the runs of more than 1,010 steps.
uint64_t SweepHash(const std::string& strategy, uint64_t seeds, int* long_runs) {
  uint64_t hash = 0;
  *long_runs = 0;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    auto s = TestScheduler::Create({.seed = seed, .strategy = strategy});
    SpawnScenario(s, seed);
    const absl::Status status = s->Run();
    EXPECT_TRUE(status.ok()) << strategy << " seed " << seed << ": " << status;
    hash = SplitMix64(hash ^ s->TraceHash()) ^ s->step_count();
    *long_runs += s->step_count() > 1010;
  }
  return hash;
}

TEST(PriorityPickTest, RunsPickWhatTheOldScanPicked) {
  // Recorded with the old scan (PickByPriority scanning every candidate).
  // k=40 puts the change points inside most runs; k=1 makes PCT switch to
  // uniform picks after 1,010 steps, which the longer runs pass.
  struct Golden {
    const char* strategy;
    uint64_t hash;
  };
  const Golden golden[] = {
      {"pct:2:k=40", 1879791113654180005ULL},
      {"pct:3:k=40", 7341536196926291099ULL},
      {"pct:4:k=1", 3977574689609191628ULL},
      {"pct:3", 1213825121438007965ULL},
      {"pos", 11440919300284323873ULL},
      {"mix:k=40", 17838803102827642558ULL},
  };
  for (const Golden& g : golden) {
    int long_runs = 0;
    EXPECT_EQ(SweepHash(g.strategy, 300, &long_runs), g.hash) << g.strategy;
    // Some runs outlive pct:4:k=1's strict priorities (10 * 1 + 1000 steps).
    EXPECT_GT(long_runs, 10) << g.strategy;
  }
}

}  // namespace
}  // namespace simsched
