// Properties (sim/properties.h) and strategies in the harness: always and
// unreachable fail the seed at once with their name; sometimes and reachable
// are tallied over the sweep and fail it when never satisfied; outside a
// simulation nothing is evaluated. Strategies: per test, by environment, in
// every report and replay line.

#include "sim/properties.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "testing/internal/capture_failures.h"
#include "testing/internal/property_tally.h"
#include "testing/sim_test.h"

namespace simsched::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using test_internal::CaptureFailures;
using test_internal::ScopedEnv;

// A body whose second task violates an always-property on some seeds.
void RacyBody(Sim& sim) {
  auto balance = std::make_shared<int>(100);
  for (int i = 0; i < 2; ++i) {
    Spawn(sim.scheduler(), [balance]() -> Co<void> {
      const bool enough = *balance >= 60;
      SIMSCHED_SOMETIMES(enough, "a withdrawal finds enough money");
      co_await Yield();
      if (enough) *balance -= 60;
      SIMSCHED_ALWAYS(*balance >= 0, "balance never negative");
      co_await Yield();
      SIMSCHED_REACHABLE("withdrawal finished");
    }).Detach();
  }
}

TEST(PropertiesTest, AViolatedAlwaysFailsTheSeedAtOnceWithItsName) {
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Props.Always", RacyBody, SimTestOptions{.iterations = 50, .strategy = "random"},
               "//testing:fake", "", SourceLocation::current());
  });
  ASSERT_GE(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("SIMSCHED_ALWAYS(\"balance never negative\") failed: "
                                     "*balance >= 0 is false"));
  EXPECT_THAT(failures[0], ContainsRegex("in task [0-9]+ spawned at"));
  // Stopped at once: the violating task never reaches its last step.
  EXPECT_THAT(failures[0], Not(HasSubstr("simsched stopped the run")));
  EXPECT_THAT(failures[0], HasSubstr("under strategy random"));
}

TEST(PropertiesTest, UnreachableFailsTheSeedNamingIt) {
  std::vector<std::string> failures = CaptureFailures([] {
    RunSimTest("Props.Unreachable", [](Sim& sim) {
      Spawn(sim.scheduler(), []() -> Co<void> {
        co_await Yield();
        SIMSCHED_UNREACHABLE("the impossible branch");
      }).Detach();
    }, SimTestOptions{.iterations = 5, .strategy = "random"}, "", "", SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("SIMSCHED_UNREACHABLE(\"the impossible branch\") was reached"));
}

TEST(PropertiesTest, ASometimesThatNoSeedSatisfiedFailsTheSweepNamingIt) {
  auto body = [](Sim& sim) {
    Spawn(sim.scheduler(), []() -> Co<void> {
      co_await Yield();
      SIMSCHED_SOMETIMES(false, "the rare path");
      SIMSCHED_SOMETIMES(true, "the common path");
    }).Detach();
  };
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Props.Sometimes", body, SimTestOptions{.iterations = 20}, "", "",
               SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("no seed of the sweep satisfied"));
  EXPECT_THAT(failures[0], HasSubstr("\"the rare path\""));
  EXPECT_THAT(failures[0], Not(HasSubstr("the common path")));

  std::vector<std::string> warned = CaptureFailures([&] {
    RunSimTest("Props.SometimesWarn", body,
               SimTestOptions{.iterations = 20, .sometimes_warn_only = true}, "", "",
               SourceLocation::current());
  });
  EXPECT_TRUE(warned.empty());
  ScopedEnv shard{{"SIMSCHED_TOTAL_SHARDS", "2"}, {"SIMSCHED_SHARD_INDEX", "1"}};
  std::vector<std::string> sharded = CaptureFailures([&] {
    RunSimTest("Props.SometimesShard", body, SimTestOptions{.iterations = 20}, "", "",
               SourceLocation::current());
  });
  EXPECT_TRUE(sharded.empty()) << "one shard cannot know what the others satisfied";
}

TEST(PropertiesTest, TheTableCountsSeedsAndTheFirstSatisfyingSeed) {
  properties_internal::PropertyTable table;
  properties_internal::SeedPropertyRecorder recorder([](std::string, SourceLocation) {});
  recorder.OnProperty(PropertyKind::kSometimes, false, "p", "x", SourceLocation::current());
  table.AddSeed(4, recorder.results());
  properties_internal::SeedPropertyRecorder second([](std::string, SourceLocation) {});
  second.OnProperty(PropertyKind::kSometimes, false, "p", "x", SourceLocation::current());
  second.OnProperty(PropertyKind::kSometimes, true, "p", "x", SourceLocation::current());
  table.AddSeed(9, second.results());
  ASSERT_EQ(table.rows().count("p"), 1u);
  const auto& row = table.rows().at("p");
  EXPECT_EQ(row.seeds_evaluated, 2u);
  EXPECT_EQ(row.seeds_held, 1u);
  EXPECT_EQ(row.first_seed, 9u);
  EXPECT_THAT(table.Format(), ContainsRegex("\"p\" +sometimes +2 +1  9 "));
  // Round trip through the summary-file JSON, merging two shards.
  properties_internal::PropertyTable merged;
  const std::string line = absl::StrCat("{\"properties\": ", table.ToJson(), "}");
  ASSERT_TRUE(merged.MergeJsonLine(line).ok());
  ASSERT_TRUE(merged.MergeJsonLine(line).ok());
  EXPECT_EQ(merged.rows().at("p").seeds_evaluated, 4u);
  EXPECT_EQ(merged.rows().at("p").first_seed, 9u);
  EXPECT_TRUE(merged.Unsatisfied().empty());
}

// A declared property that no seed evaluated gets a row with no seeds,
// marked NEVER REACHED, and survives the summary-file round trip.
TEST(PropertiesTest, ADeclaredPropertyNoSeedReachedIsReported) {
  properties_internal::SeedPropertyRecorder recorder([](std::string, SourceLocation) {});
  recorder.OnProperty(PropertyKind::kReachable, true, "reached", "reachable",
                      SourceLocation::current());
  properties_internal::PropertyTable table;
  table.AddSeed(3, recorder.results());
  table.AddDeclared({{PropertyKind::kReachable, "reached", "a.cc", 1},
                     {PropertyKind::kSometimes, "never reached", "b.cc", 7},
                     {PropertyKind::kAlways, "a safety property", "b.cc", 9}});
  EXPECT_THAT(table.NeverReached(), ::testing::ElementsAre("never reached"));
  EXPECT_THAT(table.Unsatisfied(), ::testing::ElementsAre("never reached"));
  EXPECT_EQ(table.rows().count("a safety property"), 0u) << "always fails its seed instead";
  EXPECT_EQ(table.rows().at("reached").seeds_evaluated, 1u) << "counts kept";
  EXPECT_THAT(table.Format(),
              ContainsRegex("\"never reached\" +sometimes +0 +0  - +b.cc:7  NEVER REACHED"));
  properties_internal::PropertyTable merged;
  ASSERT_TRUE(merged.MergeJsonLine(absl::StrCat("{\"properties\": ", table.ToJson(), "}")).ok());
  EXPECT_THAT(merged.NeverReached(), ::testing::ElementsAre("never reached"));
}

// Across shards a property reached in any shard counts as reached: each
// shard's program line lists every declared property, with no seeds where
// that shard never reached it.
TEST(PropertiesTest, MergedShardsCountAPropertyReachedInAnyShard) {
  const std::vector<DeclaredProperty> declared = {
      {PropertyKind::kReachable, "only shard 1", "p.cc", 3},
      {PropertyKind::kSometimes, "no shard", "p.cc", 4}};
  properties_internal::PropertyTable merged;
  for (int shard = 0; shard < 3; ++shard) {
    properties_internal::SeedPropertyRecorder recorder([](std::string, SourceLocation) {});
    if (shard == 1) {
      recorder.OnProperty(PropertyKind::kReachable, true, "only shard 1", "reachable",
                          SourceLocation::current());
    }
    properties_internal::PropertyTable sweep;
    sweep.AddSeed(static_cast<uint64_t>(shard), recorder.results());
    properties_internal::ProgramPropertyTally program;
    program.AddSweep("p.cc", false, sweep);
    const properties_internal::PropertyTable table = program.Table(declared);
    EXPECT_EQ(table.NeverReached().size(), shard == 1 ? 1u : 2u);
    ASSERT_TRUE(
        merged.MergeJsonLine(absl::StrCat("{\"program\": \"p\", \"properties\": ",
                                          table.ToJson(), "}"))
            .ok());
  }
  EXPECT_THAT(merged.NeverReached(), ::testing::ElementsAre("no shard"));
  EXPECT_EQ(merged.rows().at("only shard 1").seeds_evaluated, 1u);
  EXPECT_EQ(merged.rows().at("only shard 1").first_seed, 1u);
}

// A never-reached property belongs to the sweeps of its own file (or, if
// none ran there, to all of them): it only warns when all of those asked to.
TEST(PropertiesTest, ANeverReachedPropertyWarnsOnlyWhenItsOwnersAskedTo) {
  properties_internal::PropertyTable empty;
  properties_internal::ProgramPropertyTally program;
  program.AddSweep("quiet.cc", true, empty);
  program.AddSweep("strict.cc", false, empty);
  program.AddSweep("mixed.cc", true, empty);
  program.AddSweep("mixed.cc", false, empty);
  EXPECT_TRUE(program.WarnOnly("quiet.cc"));
  EXPECT_FALSE(program.WarnOnly("strict.cc"));
  EXPECT_FALSE(program.WarnOnly("mixed.cc"));
  EXPECT_FALSE(program.WarnOnly("library.cc")) << "not every sweep asked for a warning";
  properties_internal::ProgramPropertyTally quiet;
  quiet.AddSweep("quiet.cc", true, empty);
  EXPECT_TRUE(quiet.WarnOnly("library.cc"));
}

TEST(StrategyInHarnessTest, EnvironmentOverridesTheTestAndReportsNameIt) {
  ScopedEnv env{{"SIMSCHED_STRATEGY", "pct:2:k=7"}, {"SIMSCHED_COLLECT_ALL", "1"}};
  std::vector<std::string> strategies;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Props.Strategy", [&](Sim& sim) {
      strategies.push_back(sim.scheduler().strategy().ToString());
      ADD_FAILURE() << "fail";
    }, SimTestOptions{.iterations = 2, .strategy = "pos"}, "//testing:fake", "",
               SourceLocation::current());
  });
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(strategies[0], "pct:2:k=7");
  EXPECT_THAT(failures[0], HasSubstr("under strategy pct:2:k=7"));
  EXPECT_THAT(failures[0], HasSubstr("--test_env=SIMSCHED_SEED=0 "
                                     "--test_env=SIMSCHED_STRATEGY=pct:2:k=7"));
  EXPECT_THAT(failures[0], HasSubstr("SIMSCHED_SEED=0 SIMSCHED_STRATEGY=pct:2:k=7 "));
}

TEST(StrategyInHarnessTest, MixGivesEachSeedItsOwnStrategyWithACalibratedK) {
  std::set<std::string> seen;
  RunSimTest("Props.Mix", [&](Sim& sim) {
    seen.insert(sim.scheduler().strategy().ToString());
    for (int i = 0; i < 3; ++i) {
      Spawn(sim.scheduler(), []() -> Co<void> { co_await Yield(); }).Detach();
    }
  }, SimTestOptions{.iterations = 60}, "", "", SourceLocation::current());
  // Three tasks of two steps: k is 6 on every calibration seed.
  EXPECT_THAT(seen, ::testing::IsSupersetOf({"random", "pos", "pct:2:k=6", "pct:3:k=6"}));
}

TEST(StrategyInHarnessTest, ABadStrategyIsAClearErrorAndRunsNothing) {
  int runs = 0;
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Props.BadStrategy", [&](Sim&) { ++runs; },
               SimTestOptions{.strategy = "pct:many"}, "", "", SourceLocation::current());
  });
  EXPECT_EQ(runs, 0);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("the test's .strategy is not valid"));
  EXPECT_THAT(failures[0], HasSubstr("\"pct:many\""));
}

}  // namespace
}  // namespace simsched::testing
