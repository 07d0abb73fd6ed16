// Scheduling strategies: parsing, mix resolution, PCT's run-length estimate,
// and what each strategy does to a run (priorities, change points, lanes,
// deprioritized labels, spin loops, determinism).

#include "scheduler/strategy.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StrategyTest, ParsesEveryFormAndPrintsItBack) {
  for (const char* text : {"random", "fifo", "pos", "mix", "pct:3", "pct:1", "pct:20",
                           "pct:2:k=500", "mix:k=40"}) {
    absl::StatusOr<StrategySpec> spec = ParseStrategy(text);
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.status();
    EXPECT_EQ(spec->ToString(), text);
  }
  absl::StatusOr<StrategySpec> pct = ParseStrategy("pct");
  ASSERT_TRUE(pct.ok());
  EXPECT_EQ(pct->ToString(), "pct:3");
  absl::StatusOr<StrategySpec> pct_k = ParseStrategy("pct:k=9");
  ASSERT_TRUE(pct_k.ok());
  EXPECT_EQ(pct_k->ToString(), "pct:3:k=9");
  absl::StatusOr<StrategySpec> largest = ParseStrategy("pct:2:k=1000000000000");
  ASSERT_TRUE(largest.ok()) << largest.status();
  EXPECT_EQ(largest->run_length, StrategySpec::kMaxRunLength);
}

TEST(StrategyTest, BadValuesAreClearErrors) {
  for (const char* text : {"", "rand", "pct:0", "pct:21", "pct:x", "pct:3:k=0", "pct:3:k=",
                           "pct:3:q=4", "pct:3:k=5:extra", "random:2", "pos:k=5", "PCT:3",
                           "pct:-1", "pct: 3", "pct:3:k=18446744073709551615",
                           "mix:k=1000000000001"}) {
    absl::StatusOr<StrategySpec> spec = ParseStrategy(text);
    ASSERT_FALSE(spec.ok()) << "accepted \"" << text << "\"";
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr("bad scheduling strategy"));
    EXPECT_THAT(spec.status().message(), HasSubstr("Accepted: random, fifo, pos, mix, pct"));
  }
}

TEST(StrategyTest, MixPicksEveryStrategyFromTheSeedAloneAndKeepsK) {
  StrategySpec mix{.kind = StrategyKind::kMix, .run_length = 77};
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const StrategySpec a = ResolveStrategy(mix, seed);
    EXPECT_EQ(a, ResolveStrategy(mix, seed));
    EXPECT_NE(a.kind, StrategyKind::kMix);
    if (a.is_pct()) {
      EXPECT_EQ(a.run_length, 77u);
    }
    seen.insert(a.ToString());
  }
  EXPECT_THAT(seen, ElementsAre("pct:2:k=77", "pct:3:k=77", "pct:4:k=77", "pos", "random"));
  StrategySpec pct{.kind = StrategyKind::kPct, .depth = 2};
  EXPECT_EQ(ResolveStrategy(pct, 5), pct);
}

TEST(StrategyTest, RunLengthEstimateIsTheMedianOfTheFirstRuns) {
  RunLengthEstimator estimator;
  EXPECT_EQ(estimator.Estimate(), StrategySpec::kDefaultRunLength);
  estimator.Observe(10);
  EXPECT_EQ(estimator.Estimate(), 10u);
  estimator.Observe(1000);
  estimator.Observe(30);
  EXPECT_EQ(estimator.Estimate(), 30u);
  for (size_t i = 0; i < RunLengthEstimator::kCalibrationRuns; ++i) estimator.Observe(50);
  const uint64_t frozen = estimator.Estimate();
  EXPECT_EQ(frozen, 50u);
  for (int i = 0; i < 40; ++i) estimator.Observe(100000);
  EXPECT_EQ(estimator.Estimate(), frozen) << "the estimate freezes after calibration";
}

// Three tasks of six steps each; returns the task letter of every step.
std::string RunThreeWorkers(const std::string& strategy, uint64_t seed, uint64_t* hash = nullptr) {
  TestScheduler s({.seed = seed, .strategy = strategy});
  std::string order;
  for (char name : {'a', 'b', 'c'}) {
    Spawn(s, [&order, name]() -> Co<void> {
      for (int i = 0; i < 6; ++i) {
        order.push_back(name);
        co_await Yield();
      }
    }).Detach();
  }
  EXPECT_TRUE(s.Run().ok()) << strategy;
  if (hash != nullptr) *hash = s.TraceHash();
  return order;
}

size_t Switches(const std::string& order) {
  size_t switches = 0;
  for (size_t i = 1; i < order.size(); ++i) switches += order[i] != order[i - 1] ? 1 : 0;
  return switches;
}

TEST(StrategyTest, PctDepthOneRunsEachTaskToTheEndByPriority) {
  std::set<std::string> orders;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const std::string order = RunThreeWorkers("pct:1", seed);
    ASSERT_EQ(order.size(), 21u - 3u);
    EXPECT_EQ(Switches(order), 2u) << order << " seed " << seed;
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 6u) << "every priority order of three tasks appears";
}

TEST(StrategyTest, PctChangePointsPreemptAtMostDepthMinusOneTimes) {
  size_t preempted_runs = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const std::string order = RunThreeWorkers("pct:3:k=18", seed);
    // Two completions switch tasks; each of the two change points adds at
    // most two more switches (the demoted task comes back later).
    EXPECT_LE(Switches(order), 2u + 2u * 2u) << order;
    preempted_runs += Switches(order) > 2 ? 1 : 0;
  }
  EXPECT_GT(preempted_runs, 50u) << "change points inside the run preempt its task";
}

// Regression: the task demoted at the later change point must be able to
// resume first. PCT gives change point k_i priority i, the k_i drawn
// independently; simsched used to rank demotions by time (earlier higher),
// so a run "x y z y x" (x and y both preempted, then y back before x) never
// happened under pct:3, and bugs that need it were out of PCT's reach.
TEST(StrategyTest, PctTheLaterDemotedTaskCanResumeFirst) {
  size_t later_first = 0, earlier_first = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const std::string order = RunThreeWorkers("pct:3:k=18", seed);
    std::string runs;  // one letter per run of steps
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || order[i] != order[i - 1]) runs.push_back(order[i]);
    }
    if (runs.size() != 5 || runs[0] == runs[1] || runs[2] == runs[0] || runs[2] == runs[1]) {
      continue;
    }
    if (runs[3] == runs[1] && runs[4] == runs[0]) ++later_first;
    if (runs[3] == runs[0] && runs[4] == runs[1]) ++earlier_first;
  }
  EXPECT_GT(later_first, 5u);
  EXPECT_GT(earlier_first, 5u);
}

TEST(StrategyTest, EveryStrategyIsAFunctionOfTheSeed) {
  for (const char* strategy : {"random", "fifo", "pct:2", "pct:4:k=10", "pos", "mix"}) {
    std::set<uint64_t> hashes;
    for (uint64_t seed = 0; seed < 30; ++seed) {
      uint64_t a = 0, b = 0;
      EXPECT_EQ(RunThreeWorkers(strategy, seed, &a), RunThreeWorkers(strategy, seed, &b));
      EXPECT_EQ(a, b) << strategy << " seed " << seed;
      hashes.insert(a);
    }
    if (std::string(strategy) != "fifo") {
      EXPECT_GT(hashes.size(), 5u) << strategy;
    }
  }
}

TEST(StrategyTest, DefaultsKeepTheirMeaning) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    uint64_t implicit = 0, explicit_random = 0;
    RunThreeWorkers("", seed, &implicit);
    RunThreeWorkers("random", seed, &explicit_random);
    EXPECT_EQ(implicit, explicit_random);
  }
  EXPECT_EQ(RunThreeWorkers("fifo", 3), "abcabcabcabcabcabc");
  TestScheduler fifo({.randomize_order = false});
  EXPECT_EQ(fifo.strategy().ToString(), "fifo");
  TestScheduler mix({.seed = 9, .strategy = "mix"});
  EXPECT_EQ(mix.strategy(), ResolveStrategy({.kind = StrategyKind::kMix}, 9));
}

TEST(StrategyTest, ABadStrategyFailsTheRunWithTheReason) {
  TestScheduler s({.seed = 1, .strategy = "pct:zero"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("TestSchedulerOptions::strategy"));
  EXPECT_THAT(s.status().message(), HasSubstr("\"pct:zero\""));
  EXPECT_EQ(s.Run().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StrategyTest, LanesStayFifoAndDeprioritizedWorkWaitsUnderEveryStrategy) {
  for (const char* strategy : {"pct:1", "pct:3", "pos", "fifo"}) {
    for (uint64_t seed = 0; seed < 30; ++seed) {
      auto s = TestScheduler::Create({.seed = seed, .strategy = strategy});
      auto lane = ForegroundExecutor::ForNewLane(s, "client");
      BackgroundExecutor background(s);
      const TaskLabel slow("slow");
      background.Deprioritize(slow);
      std::vector<int> lane_order;
      std::vector<char> kinds;
      background.SpawnLabeled(slow, [&]() -> Co<void> {
        kinds.push_back('d');
        co_return;
      }).Detach();
      for (int i = 0; i < 4; ++i) {
        lane.Spawn([&, i]() -> Co<void> {
          lane_order.push_back(i);
          kinds.push_back('l');
          co_return;
        }).Detach();
        background.Spawn([&]() -> Co<void> {
          kinds.push_back('b');
          co_await Yield();
          kinds.push_back('b');
        }).Detach();
      }
      ASSERT_TRUE(s->Run().ok());
      EXPECT_THAT(lane_order, ElementsAre(0, 1, 2, 3)) << strategy << " seed " << seed;
      ASSERT_EQ(kinds.size(), 13u);
      EXPECT_EQ(kinds.back(), 'd') << strategy << " seed " << seed;
    }
  }
}

// Regression: with the only lane blocked in BlockOn and just deprioritized
// work runnable, the priority pick must take the deprioritized task (it once
// looked only at the empty background queue and the blocked lane).
TEST(StrategyTest, ABlockedLaneLeavesDeprioritizedWorkToThePriorityPick) {
  for (const char* strategy : {"pct:2", "pos"}) {
    auto s = TestScheduler::Create({.seed = 3, .strategy = strategy});
    ForegroundExecutor main(s);
    BackgroundExecutor background(s);
    const TaskLabel slow("slow");
    background.Deprioritize(slow);
    auto done = std::make_shared<bool>(false);
    main.Spawn([s, background, slow, done]() -> Co<void> {
      Task<void> low = background.SpawnLabeled(slow, [done]() -> Co<void> {
        *done = true;
        co_return;
      });
      // A second lane task queued behind this one keeps the lane non-empty.
      EXPECT_TRUE(s->BlockOn(low).ok());
      co_return;
    }).Detach();
    main.Spawn([]() -> Co<void> { co_return; }).Detach();
    ASSERT_TRUE(s->Run().ok()) << strategy;
    EXPECT_TRUE(*done) << strategy;
  }
}

TEST(StrategyTest, PctStillEndsASpinLoop) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TestScheduler s({.seed = seed, .strategy = "pct:2:k=10", .max_steps = 100'000});
    bool flag = false;
    Spawn(s, [&]() -> Co<void> {
      while (!flag) co_await Yield();
    }).Detach();
    Spawn(s, [&]() -> Co<void> {
      co_await Yield();
      flag = true;
    }).Detach();
    EXPECT_TRUE(s.Run().ok()) << "seed " << seed;
  }
}

TEST(StrategyTest, TimersFireInDeadlineOrderUnderPriorityStrategies) {
  for (const char* strategy : {"pct:3", "pos"}) {
    TestScheduler s({.seed = 4, .strategy = strategy});
    std::vector<int> fired;
    for (int ms : {30, 10, 20}) {
      Spawn(s, [&fired, ms]() -> Co<void> {
        co_await Sleep(std::chrono::milliseconds(ms));
        fired.push_back(ms);
      }).Detach();
    }
    ASSERT_TRUE(s.Run().ok());
    EXPECT_THAT(fired, ElementsAre(10, 20, 30)) << strategy;
  }
}

TEST(StrategyTest, ReportsNameTheStrategy) {
  TestScheduler pct({.seed = 2, .strategy = "pct:2:k=50"});
  EXPECT_THAT(pct.RunSummary(), HasSubstr("strategy pct:2:k=50"));
  TestScheduler random({.seed = 2});
  EXPECT_THAT(random.RunSummary(), ::testing::Not(HasSubstr("strategy")));
}

}  // namespace
}  // namespace simsched
