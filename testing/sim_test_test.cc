// The harness's own behaviour, in process: SIM_TESTs that pass, and
// RunSimTest driven directly with its failures captured and inspected.

#include "testing/sim_test.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "testing/internal/capture_failures.h"

namespace simsched::testing {
namespace {

using ::testing::ContainsRegex;
using test_internal::CaptureFailures;
using test_internal::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::Not;

// --- SIM_TESTs that pass: the everyday form. ---

SIM_TEST(SimTestTest, BodyGetsAFreshSchedulerPerSeed, .iterations = 20) {
  EXPECT_EQ(sim.scheduler().step_count(), 0u);
  EXPECT_EQ(sim.scheduler().LiveTaskCount(), 0u);
  EXPECT_EQ(sim.scheduler().Elapsed(), Duration::zero());
}

SIM_TEST(SimTestTest, ExpectationsWorkInsideSpawnedCoroutines) {
  Event ready("ready");
  int value = 0;
  sim.background().Spawn([&]() -> Co<void> {
    co_await ready.Wait();
    EXPECT_EQ(value, 42);
  }).Detach();
  sim.background().Spawn([&]() -> Co<void> {
    co_await SimulateRandomDelay();
    value = 42;
    ready.Set();
  }).Detach();
  // The tasks refer to this body's locals, so run them before returning.
  ASSERT_TRUE(sim.scheduler().Run().ok());
}

// Counts, across seeds, the detached tasks that finished only after their
// body had returned (RunSimTest below drives the harness directly so the
// count can be checked once every seed has run).
void SpawnTasksThatOutliveTheBody(Sim& sim, int& finished_after_body) {
  // State owned by the tasks themselves may outlive the body.
  auto ready = std::make_shared<Event>("ready");
  auto body_returned = std::make_shared<bool>(false);
  sim.background().Spawn([ready, body_returned, &finished_after_body]() -> Co<void> {
    co_await ready->Wait();
    EXPECT_TRUE(ready->IsSet());
    if (*body_returned) ++finished_after_body;
  }).Detach();
  sim.background().Spawn([ready]() -> Co<void> {
    co_await Yield();
    ready->Set();
  }).Detach();
  // Nothing has run yet: the body only spawned.
  EXPECT_EQ(sim.scheduler().step_count(), 0u);
  *body_returned = true;
}

TEST(RunSimTestTest, TasksLeftRunningAreRunByTheHarnessAfterTheBody) {
  int finished_after_body = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.RunAfterBody",
               [&](Sim& sim) { SpawnTasksThatOutliveTheBody(sim, finished_after_body); },
               SimTestOptions{.iterations = 10, .print_summary = false, .strategy = "random"}, "", "",
               SourceLocation::current());
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(finished_after_body, 10) << "one waiting task per seed must finish after the body";

  // The contrast: without run_after_body the same tasks are cancelled with
  // the seed's scheduler and never finish.
  finished_after_body = 0;
  failures = CaptureFailures([&] {
    RunSimTest("Direct.NoRunAfterBody",
               [&](Sim& sim) { SpawnTasksThatOutliveTheBody(sim, finished_after_body); },
               SimTestOptions{.iterations = 10, .run_after_body = false, .print_summary = false,
                              .strategy = "random"},
               "", "", SourceLocation::current());
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(finished_after_body, 0);
}

// The seeds of a sweep share one reused scheduler (TestSchedulerPool); what
// one seed leaves behind must not reach the next. Each seed checks it starts
// clean, then leaves junk: a lane, a deprioritized label, an idle task still
// suspended, a pending timer's task cancelled. Its trace hash must equal the
// one it gets when run alone (SIMSCHED_SEED, a fresh scheduler).
struct JunkSeed {
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
};

JunkSeed RunAndLeaveJunk(Sim& sim) {
  TestScheduler& s = sim.scheduler();
  EXPECT_EQ(s.LaneCount(), 1u);
  EXPECT_EQ(s.step_count(), 0u);
  EXPECT_EQ(s.LiveTaskCount(), 0u);
  EXPECT_EQ(s.Elapsed(), Duration::zero());
  EXPECT_TRUE(s.status().ok());
  EXPECT_EQ(s.poll_cost_model(), nullptr);
  ForegroundExecutor lane = ForegroundExecutor::ForNewLane(sim.scheduler_ptr(), "junk");
  for (int i = 0; i < 3; ++i) {
    SpawnLabeled(s, TaskLabel("junk"), [&s]() -> Co<void> {
      for (uint64_t n = s.rng().Below(4); n > 0; --n) co_await Yield();
    }).Detach();
    lane.Spawn([]() -> Co<void> { co_await Yield(); }).Detach();
  }
  EXPECT_TRUE(s.Run().ok());
  JunkSeed seen{s.TraceHash(), s.step_count()};
  s.Deprioritize(TaskLabel("junk"));
  auto never = std::make_shared<Event>("never");
  Task<void> idle = Spawn(s, [never]() -> Co<void> { co_await never->Wait(); });
  s.AllowIdle(idle.id());
  idle.Detach();
  Spawn(s, []() -> Co<void> { co_await Sleep(std::chrono::hours(1)); }).Detach();
  return seen;
}

TEST(RunSimTestTest, SeedsOfASweepShareNothingThroughTheReusedScheduler) {
  std::map<uint64_t, JunkSeed> swept;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.Junk", [&](Sim& sim) { swept[sim.seed()] = RunAndLeaveJunk(sim); },
               SimTestOptions{.iterations = 30, .run_after_body = false, .print_summary = false},
               "", "", SourceLocation::current());
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
  ASSERT_EQ(swept.size(), 30u);
  for (uint64_t seed : {0, 1, 7, 18, 29}) {
    const std::string seed_text = std::to_string(seed);
    ScopedEnv env{{"SIMSCHED_SEED", seed_text.c_str()}};
    std::optional<JunkSeed> alone;
    failures = CaptureFailures([&] {
      RunSimTest("Direct.Junk", [&](Sim& sim) { alone = RunAndLeaveJunk(sim); },
                 SimTestOptions{.iterations = 30, .run_after_body = false, .print_summary = false},
                 "", "", SourceLocation::current());
    });
    EXPECT_THAT(failures, ::testing::IsEmpty());
    ASSERT_TRUE(alone.has_value());
    EXPECT_EQ(alone->trace_hash, swept[seed].trace_hash) << "seed " << seed;
    EXPECT_EQ(alone->steps, swept[seed].steps) << "seed " << seed;
  }
}

TEST(RunSimTestTest, ASchedulerTheTestKeepsIsNotReusedByTheNextSeed) {
  std::vector<std::shared_ptr<TestScheduler>> kept;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.Keep",
               [&](Sim& sim) {
                 for (int i = 0; i < 5; ++i) {
                   Spawn(sim.scheduler(), []() -> Co<void> { co_await Yield(); }).Detach();
                 }
                 if (sim.seed() % 2 == 0) kept.push_back(sim.scheduler_ptr());
               },
               SimTestOptions{.iterations = 10, .print_summary = false, .strategy = "random"},
               "", "", SourceLocation::current());
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
  ASSERT_EQ(kept.size(), 5u);
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i]->seed(), 2 * i) << "a later seed took over a scheduler the test kept";
    EXPECT_EQ(kept[i]->step_count(), 10u);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(kept[i].get(), kept[j].get());
  }
}

class CounterFixture : public SimFixture {
 public:
  void SetUp() override { counter_ = 10; }
  void TearDown() override { EXPECT_EQ(counter_, 11); }

 protected:
  int counter_ = 0;
};

SIM_TEST_F(CounterFixture, FixtureIsMadeFreshForEachSeed, .iterations = 5) {
  EXPECT_EQ(counter_, 10) << "a fixture object must not carry state between seeds";
  ++counter_;
  // The seed's scheduler is seeded with it, and the sweep starts at seed 0.
  EXPECT_EQ(sim().scheduler().seed(), sim().seed());
  EXPECT_LT(sim().seed(), 5u);
}

// --- RunSimTest driven directly. ---

TEST(RunSimTestTest, RunsTheConfiguredNumberOfDistinctSeeds) {
  std::set<uint64_t> seeds;
  RunSimTest("Direct.Count", [&](Sim& sim) { seeds.insert(sim.seed()); },
             SimTestOptions{.iterations = 37}, "", "", SourceLocation::current());
  ASSERT_EQ(seeds.size(), 37u);
  EXPECT_EQ(*seeds.begin(), 0u);
  EXPECT_EQ(*seeds.rbegin(), 36u);
}

TEST(RunSimTestTest, EnvironmentOverridesIterationsAndStartSeed) {
  ScopedEnv env{{"SIMSCHED_ITERATIONS", "3"}, {"SIMSCHED_START_SEED", "500"}};
  std::vector<uint64_t> seeds;
  RunSimTest("Direct.Env", [&](Sim& sim) { seeds.push_back(sim.seed()); },
             SimTestOptions{.iterations = 37, .strategy = "random"}, "", "", SourceLocation::current());
  EXPECT_EQ(seeds, (std::vector<uint64_t>{500, 501, 502}));
}

TEST(RunSimTestTest, BadEnvironmentValueFailsTheTestNamingTheVariable) {
  ScopedEnv env{{"SIMSCHED_ITERATIONS", "lots"}};
  int runs = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.BadEnv", [&](Sim&) { ++runs; }, SimTestOptions{}, "", "",
               SourceLocation::current());
  });
  EXPECT_EQ(runs, 0) << "never a silent default";
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("SIMSCHED_ITERATIONS=\"lots\""));
}

// A planted bug: two tasks race on a check-then-act; only some schedules
// interleave them badly.
void PlantedBugBody(Sim& sim) {
  auto balance = std::make_shared<int>(100);
  for (int i = 0; i < 2; ++i) {
    Spawn(sim.scheduler(), [balance]() -> Co<void> {
      const bool enough = *balance >= 60;
      co_await Yield();
      if (enough) *balance -= 60;
      EXPECT_GE(*balance, 0) << "overdrawn";
    }).Detach();
  }
}

TEST(RunSimTestTest, PlantedBugFailsOnSomeSeedsAndTheReportSaysHowToReplay) {
  ScopedEnv env{{"SIMSCHED_COLLECT_ALL", "1"}};
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Direct.PlantedBug", PlantedBugBody, SimTestOptions{.iterations = 40},
               "//testing:fake_target", "", SourceLocation::current());
  });
  ASSERT_GT(failures.size(), 0u) << "no seed exposed the race";
  ASSERT_LT(failures.size(), 40u) << "every seed failed: the bug is not schedule-dependent";
  const std::string& report = failures[0];
  EXPECT_THAT(report, ContainsRegex("Direct.PlantedBug failed on seed [0-9]+"));
  EXPECT_THAT(report, ContainsRegex("at step [0-9]+, virtual time \\+0s"));
  EXPECT_THAT(report, ContainsRegex("trace hash 0x[0-9a-f]{16}"));
  EXPECT_THAT(report, ContainsRegex("in task [0-9]+ spawned at .*sim_test_test.cc"));
  EXPECT_THAT(report, HasSubstr("overdrawn"));
  EXPECT_THAT(report, ContainsRegex("trace \\((all|last) [0-9]+ of [0-9]+ steps"));
  EXPECT_THAT(report, ContainsRegex("bazel test //testing:fake_target "
                                    "--test_filter=Direct.PlantedBug --test_env=SIMSCHED_SEED=[0-9]+"));
  EXPECT_THAT(report, ContainsRegex("SIMSCHED_SEED=[0-9]+ .* --gtest_filter=Direct.PlantedBug"));
}

TEST(RunSimTestTest, SweepStopsAtTheFirstFailingSeedByDefault) {
  int runs = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.Stop", [&](Sim&) {
      ++runs;
      ADD_FAILURE() << "always";
    }, SimTestOptions{.iterations = 10, .strategy = "random"}, "", "", SourceLocation::current());
  });
  EXPECT_EQ(failures.size(), 1u);
  EXPECT_EQ(runs, 2) << "the failing seed once, then once more to record its trace";
}

// One gtest interception serves a sweep's seeds (SweepReporter): every
// failure still goes to the seed it was raised in, the sweep's own reports
// (one per failing seed) reach gtest, and gtest's reporter chain is back as
// it was when RunSimTest returns.
TEST(RunSimTestTest, EachFailureIsChargedToTheSeedThatRaisedItAndReachesGtest) {
  ScopedEnv env{{"SIMSCHED_COLLECT_ALL", "1"}};
  // Seeds 3 and 4 fail (4 also in its frames' destructors, at shutdown);
  // seed 5, right after, passes.
  struct FailsWhenDestroyed {
    uint64_t seed;
    ~FailsWhenDestroyed() { ADD_FAILURE() << "destroyed in seed " << seed; }
  };
  auto body = [](Sim& sim) {
    const uint64_t seed = sim.seed();
    if (seed == 3) ADD_FAILURE() << "raised in seed " << seed;
    if (seed == 4) {
      Spawn(sim.scheduler(), [seed]() -> Co<void> {
        FailsWhenDestroyed guard{seed};
        co_await Event().Wait();  // never set: a deadlock, and shutdown destroys the frame
      }).Detach();
    }
  };
  std::vector<std::string> failures;
  ::testing::TestPartResultArray outer;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &outer);
    RunSimTest("Direct.Charged", body, SimTestOptions{.iterations = 8, .strategy = "random"}, "",
               "", SourceLocation::current());
    // The sweep's interception is gone: this reaches the scope's reporter.
    ADD_FAILURE() << "after the sweep";
  }
  for (int i = 0; i < outer.size(); ++i) failures.push_back(outer.GetTestPartResult(i).message());
  ASSERT_EQ(failures.size(), 3u) << ::testing::PrintToString(failures);
  EXPECT_THAT(failures[0], HasSubstr("Direct.Charged failed on seed 3"));
  EXPECT_THAT(failures[0], HasSubstr("raised in seed 3"));
  EXPECT_THAT(failures[0], Not(HasSubstr("seed 4")));
  EXPECT_THAT(failures[1], HasSubstr("Direct.Charged failed on seed 4"));
  EXPECT_THAT(failures[1], HasSubstr("destroyed in seed 4"));
  EXPECT_THAT(failures[1], Not(HasSubstr("seed 3")));
  EXPECT_THAT(failures[2], HasSubstr("after the sweep"));
}

TEST(RunSimTestTest, RegressionSeedsRunFirst) {
  std::vector<uint64_t> seeds;
  RunSimTest("Direct.Regression", [&](Sim& sim) { seeds.push_back(sim.seed()); },
             SimTestOptions{.iterations = 3, .regression_seeds = {99, 7}, .strategy = "random"}, "", "",
             SourceLocation::current());
  EXPECT_EQ(seeds, (std::vector<uint64_t>{99, 7, 0, 1, 2}));
}

TEST(RunSimTestTest, MalformedRegressionSeedFileIsAClearError) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/bad.seeds";
  std::ofstream(path) << "Direct.File 1\nDirect.File one\n";
  int runs = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.File", [&](Sim&) { ++runs; },
               SimTestOptions{.iterations = 3, .regression_seeds_file = path}, "", "",
               SourceLocation::current());
  });
  EXPECT_EQ(runs, 0);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr(path + ":2:"));
}

TEST(RunSimTestTest, RegressionSeedFileNamingAnUnknownTestIsAnErrorListingTheKnownOnes) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/typo.seeds";
  std::ofstream(path) << "Direct.Typo 1\nDirect.Tpyo 2\n";
  int runs = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.Typo", [&](Sim&) { ++runs; },
               SimTestOptions{.iterations = 3, .regression_seeds_file = path}, "", "",
               SourceLocation::current());
  });
  EXPECT_EQ(runs, 0);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr(path + ":2: no test named \"Direct.Tpyo\" in this binary"));
  EXPECT_THAT(failures[0], HasSubstr("RunSimTestTest.RegressionSeedsRunFirst"));
  EXPECT_THAT(failures[0], HasSubstr("Direct.Typo"));
}

TEST(RunSimTestTest, DirectoryGivenAsTheRegressionSeedFileIsAnError) {
  const std::string path = std::getenv("TEST_TMPDIR");
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Direct.Dir", [&](Sim&) {},
               SimTestOptions{.iterations = 1, .regression_seeds_file = path}, "", "",
               SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("is a directory"));
}

TEST(RunSimTestTest, UncaughtExceptionFromTheBodyFailsTheSeed) {
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Direct.Throws", [](Sim&) { throw std::runtime_error("kaput"); },
               SimTestOptions{.iterations = 2}, "", "", SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("uncaught exception from the test body: kaput"));
}

TEST(RunSimTestTest, DeadlockInTheSeedIsReportedWithTheWaitSite) {
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Direct.Deadlock", [](Sim& sim) {
      auto never = std::make_shared<Event>("never");
      Task<void> task = Spawn(sim.scheduler(), [never]() -> Co<void> { co_await never->Wait(); });
      absl::Status status = sim.scheduler().BlockOn(task);
      EXPECT_TRUE(status.ok()) << status.message();
    }, SimTestOptions{.iterations = 1}, "", "", SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("deadlock"));
  EXPECT_THAT(failures[0], HasSubstr("waiting on Event 'never'"));
}

TEST(RunSimTestTest, LogLinesAppearOnlyForTheFailingSeed) {
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Direct.Log", [](Sim& sim) {
      sim.Log("seed " + std::to_string(sim.seed()) + " says hi");
      if (sim.seed() == 3) ADD_FAILURE() << "seed three";
    }, SimTestOptions{.iterations = 5}, "", "", SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("[step 0 +0s] seed 3 says hi"));
  EXPECT_THAT(failures[0], ::testing::Not(HasSubstr("seed 2 says hi")));
}

TEST(RunSimTestTest, DeterminismCheckPassesACleanTest) {
  ScopedEnv env{{"SIMSCHED_CHECK_DETERMINISM", "1"}};
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Direct.Clean", [](Sim& sim) {
      for (int i = 0; i < 4; ++i) {
        Spawn(sim.scheduler(), []() -> Co<void> {
          co_await Yield();
          co_await Sleep(std::chrono::milliseconds(1));
        }).Detach();
      }
    }, SimTestOptions{.iterations = 20}, "", "", SourceLocation::current());
  });
  EXPECT_TRUE(failures.empty()) << failures[0];
}

}  // namespace
}  // namespace simsched::testing
