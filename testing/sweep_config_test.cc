#include "testing/sweep_config.h"

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/internal/capture_failures.h"

namespace simsched::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fake environment.
struct Env {
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

absl::StatusOr<SweepConfig> Parse(const Env& env, uint64_t default_iterations = 100) {
  return SweepConfigFromEnvironment(default_iterations, env.lookup());
}

TEST(SweepConfigTest, DefaultsComeFromTheTest) {
  absl::StatusOr<SweepConfig> config = Parse(Env{}, 250);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->iterations, 250u);
  EXPECT_EQ(config->start_seed, 0u);
  EXPECT_FALSE(config->single_seed.has_value());
  EXPECT_FALSE(config->collect_all);
  EXPECT_FALSE(config->check_determinism);
  EXPECT_EQ(config->total_shards, 1u);
}

TEST(SweepConfigTest, ReadsEveryVariable) {
  Env env{{{"SIMSCHED_ITERATIONS", "7"},
           {"SIMSCHED_START_SEED", "1000"},
           {"SIMSCHED_TIME_BUDGET", "1500ms"},
           {"SIMSCHED_COLLECT_ALL", "1"},
           {"SIMSCHED_CHECK_DETERMINISM", "true"},
           {"SIMSCHED_LOG", "full"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->iterations, 7u);
  EXPECT_EQ(config->start_seed, 1000u);
  EXPECT_EQ(config->time_budget, std::chrono::milliseconds(1500));
  EXPECT_TRUE(config->collect_all);
  EXPECT_TRUE(config->check_determinism);
  EXPECT_TRUE(config->full_log);
  EXPECT_THAT(SweepSeeds(*config), ElementsAre(1000, 1001, 1002, 1003, 1004, 1005, 1006));
}

TEST(SweepConfigTest, SingleSeedRunsOnlyThatSeed) {
  Env env{{{"SIMSCHED_SEED", "18446744073709551615"}, {"SIMSCHED_ITERATIONS", "50"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(SweepSeeds(*config), ElementsAre(UINT64_MAX));
}

TEST(SweepConfigTest, SingleSeedRunsOnShardZeroOnly) {
  Env env{{{"SIMSCHED_SEED", "5"}, {"GTEST_TOTAL_SHARDS", "3"}, {"GTEST_SHARD_INDEX", "1"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(SweepSeeds(*config).empty());
}

TEST(SweepConfigTest, KubernetesJobCompletionIndexIsTheShardIndex) {
  Env env{{{"SIMSCHED_TOTAL_SHARDS", "4"}, {"JOB_COMPLETION_INDEX", "2"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->shard_index, 2u);
  EXPECT_EQ(config->total_shards, 4u);
  // An explicit index wins over the job's.
  env.vars["SIMSCHED_SHARD_INDEX"] = "1";
  EXPECT_EQ(Parse(env)->shard_index, 1u);
}

TEST(SweepConfigTest, JobCompletionIndexAloneDoesNotShard) {
  // A pod of an unsharded Job: no total, so the index is not a shard.
  Env env{{{"JOB_COMPLETION_INDEX", "3"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->total_shards, 1u);
  EXPECT_EQ(config->shard_index, 0u);
}

TEST(SweepConfigTest, JobCompletionIndexOutOfRangeIsAnError) {
  Env env{{{"SIMSCHED_TOTAL_SHARDS", "2"}, {"JOB_COMPLETION_INDEX", "5"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("shard variables are inconsistent"));
}

TEST(SweepConfigTest, ThreeShardsCoverEachSeedExactlyOnce) {
  std::map<uint64_t, int> seen;
  for (int shard = 0; shard < 3; ++shard) {
    Env env{{{"SIMSCHED_TOTAL_SHARDS", "3"},
             {"SIMSCHED_SHARD_INDEX", std::to_string(shard)},
             {"SIMSCHED_ITERATIONS", "100"},
             {"SIMSCHED_START_SEED", "40"}}};
    absl::StatusOr<SweepConfig> config = Parse(env);
    ASSERT_TRUE(config.ok());
    for (uint64_t seed : SweepSeeds(*config)) ++seen[seed];
  }
  ASSERT_EQ(seen.size(), 100u);
  EXPECT_EQ(seen.begin()->first, 40u);
  EXPECT_EQ(seen.rbegin()->first, 139u);
  for (const auto& [seed, count] : seen) EXPECT_EQ(count, 1) << "seed " << seed;
}

struct BadValue {
  const char* name;
  const char* value;
  const char* expected_text;
};

class SweepConfigBadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(SweepConfigBadValueTest, IsRejectedWithTheVariableAndTheAcceptedForm) {
  const BadValue& bad = GetParam();
  Env env{{{bad.name, bad.value}}};
  if (std::string(bad.name) == "GTEST_SHARD_INDEX") env.vars["GTEST_TOTAL_SHARDS"] = "3";
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_FALSE(config.ok()) << bad.name << "=" << bad.value << " was accepted";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(bad.name));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(bad.expected_text));
}

INSTANTIATE_TEST_SUITE_P(
    EveryVariable, SweepConfigBadValueTest,
    ::testing::Values(BadValue{"SIMSCHED_ITERATIONS", "abc", "positive whole number"},
                      BadValue{"SIMSCHED_ITERATIONS", "0", "zero would test nothing"},
                      BadValue{"SIMSCHED_ITERATIONS", "12x", "positive whole number"},
                      BadValue{"SIMSCHED_ITERATIONS", "-5", "positive whole number"},
                      BadValue{"SIMSCHED_ITERATIONS", " 5", "positive whole number"},
                      BadValue{"SIMSCHED_SEED", "18446744073709551616",
                               "0 to 18446744073709551615"},
                      BadValue{"SIMSCHED_SEED", "0x10", "whole number"},
                      BadValue{"SIMSCHED_START_SEED", "99999999999999999999999", "whole number"},
                      BadValue{"SIMSCHED_TIME_BUDGET", "30", "with a unit"},
                      BadValue{"SIMSCHED_TIME_BUDGET", "-3s", "positive duration"},
                      BadValue{"SIMSCHED_TIME_BUDGET", "soon", "e.g. 30s"},
                      BadValue{"SIMSCHED_COLLECT_ALL", "yes", "1 or 0"},
                      BadValue{"SIMSCHED_CHECK_DETERMINISM", "2", "1 or 0"},
                      BadValue{"SIMSCHED_LOG", "verbose", "short or full"},
                      BadValue{"GTEST_TOTAL_SHARDS", "three", "number of shards"},
                      BadValue{"GTEST_SHARD_INDEX", "3", "0 <= index < total"}),
    [](const ::testing::TestParamInfo<BadValue>& info) {
      return std::string(info.param.name) + "_" + std::to_string(info.index);
    });

TEST(SweepConfigTest, StartSeedThatRunsPastTheLargestSeedIsRejected) {
  Env env{{{"SIMSCHED_START_SEED", "18446744073709551600"}, {"SIMSCHED_ITERATIONS", "100"}}};
  absl::StatusOr<SweepConfig> config = Parse(env);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("past the largest seed"));
}

TEST(SweepConfigTest, ParseUint64IsStrict) {
  EXPECT_EQ(ParseUint64("0"), 0u);
  EXPECT_EQ(ParseUint64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint64("18446744073709551616").has_value());
  EXPECT_FALSE(ParseUint64("+1").has_value());
  EXPECT_FALSE(ParseUint64("1 ").has_value());
  EXPECT_FALSE(ParseUint64("").has_value());
}

TEST(SweepSeedsTest, GeneratedSeedsMatchTheListAcrossShards) {
  for (uint64_t shards : {1, 3, 7}) {
    for (uint64_t shard = 0; shard < shards; ++shard) {
      SweepConfig config{
          .iterations = 20, .start_seed = 5, .shard_index = shard, .total_shards = shards};
      std::vector<uint64_t> generated;
      for (uint64_t j = 0; j < SweepSeedCount(config); ++j) {
        generated.push_back(SweepSeedAt(config, j));
      }
      EXPECT_EQ(generated, SweepSeeds(config)) << "shard " << shard << " of " << shards;
    }
  }
}

TEST(SweepSeedsTest, MaximalIterationCountNeitherOverflowsNorAllocates) {
  SweepConfig config{.iterations = UINT64_MAX, .shard_index = 2, .total_shards = 3};
  // Indices 2, 5, ..., below 2^64-1 (= 0 mod 3): (2^64-1)/3 of them.
  EXPECT_EQ(SweepSeedCount(config), UINT64_MAX / 3);
  EXPECT_EQ(SweepSeedAt(config, 0), 2u);
  EXPECT_EQ(SweepSeedAt(config, SweepSeedCount(config) - 1), UINT64_MAX - 1);
  config.shard_index = 0;
  config.total_shards = 1;
  EXPECT_EQ(SweepSeedCount(config), UINT64_MAX);
  config.start_seed = UINT64_MAX;
  EXPECT_EQ(SweepSeedAt(config, 1), 0u);  // wraps
}

TEST(SweepSeedsTest, SingleSeedRunsOnShardZeroOnly) {
  SweepConfig config{.single_seed = 9, .shard_index = 0, .total_shards = 2};
  EXPECT_EQ(SweepSeedCount(config), 1u);
  EXPECT_EQ(SweepSeedAt(config, 0), 9u);
  config.shard_index = 1;
  EXPECT_EQ(SweepSeedCount(config), 0u);
}

}  // namespace
}  // namespace simsched::testing

namespace simsched::testing {
namespace {

TEST(SweepConfigStrategyTest, StrategyComesFromTheEnvironmentAndIsValidated) {
  absl::StatusOr<SweepConfig> none = Parse(Env{});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->strategy.has_value());
  absl::StatusOr<SweepConfig> pct = Parse(Env{{{"SIMSCHED_STRATEGY", "pct:3"}}});
  ASSERT_TRUE(pct.ok());
  EXPECT_EQ(pct->strategy, "pct:3");
  absl::StatusOr<SweepConfig> bad = Parse(Env{{{"SIMSCHED_STRATEGY", "pcd:3"}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("SIMSCHED_STRATEGY=\"pcd:3\" is not valid"));
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown strategy \"pcd\""));
}

TEST(SweepConfigTraceFileTest, TraceFileNeedsOneSeedAndAPath) {
  absl::StatusOr<SweepConfig> none = Parse(Env{});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->trace_file.has_value());
  absl::StatusOr<SweepConfig> traced =
      Parse(Env{{{"SIMSCHED_SEED", "7"}, {"SIMSCHED_TRACE_FILE", "/tmp/t.jsonl"}}});
  ASSERT_TRUE(traced.ok()) << traced.status();
  EXPECT_EQ(traced->trace_file, "/tmp/t.jsonl");
  absl::StatusOr<SweepConfig> sweep = Parse(Env{{{"SIMSCHED_TRACE_FILE", "/tmp/t.jsonl"}}});
  ASSERT_FALSE(sweep.ok());
  EXPECT_THAT(sweep.status().message(), HasSubstr("set SIMSCHED_SEED too"));
}

// Regression: an empty SIMSCHED_TRACE_FILE was an error while every other
// SIMSCHED_* variable set empty means unset (docs/testing.md), so a harness
// test clearing it failed every sweep.
TEST(SweepConfigTraceFileTest, EmptyTraceFileMeansNoTraceWithOrWithoutASeed) {
  for (const Env& env : {Env{{{"SIMSCHED_SEED", "7"}, {"SIMSCHED_TRACE_FILE", ""}}},
                         Env{{{"SIMSCHED_TRACE_FILE", ""}}}}) {
    absl::StatusOr<SweepConfig> config = Parse(env);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_FALSE(config->trace_file.has_value());
  }
}

}  // namespace
}  // namespace simsched::testing

namespace simsched::testing {
namespace {

using ::simsched::testing::test_internal::ScopedEnv;

// One rule everywhere: a SIMSCHED_* variable set to "" is treated as unset.
TEST(EmptyEnvironmentValueTest, EveryVariableSetEmptyMeansUnset) {
  Env env;
  for (const char* name :
       {"SIMSCHED_ITERATIONS", "SIMSCHED_SEED", "SIMSCHED_START_SEED", "SIMSCHED_TIME_BUDGET",
        "SIMSCHED_COLLECT_ALL", "SIMSCHED_CHECK_DETERMINISM", "SIMSCHED_LOG", "SIMSCHED_STRATEGY",
        "SIMSCHED_TRACE_FILE", "SIMSCHED_TOTAL_SHARDS", "SIMSCHED_SHARD_INDEX",
        "GTEST_TOTAL_SHARDS", "GTEST_SHARD_INDEX"}) {
    env.vars[name] = "";
  }
  absl::StatusOr<SweepConfig> config = Parse(env, 250);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->iterations, 250u);
  EXPECT_FALSE(config->single_seed.has_value());
  EXPECT_EQ(config->start_seed, 0u);
  EXPECT_FALSE(config->time_budget.has_value());
  EXPECT_FALSE(config->collect_all);
  EXPECT_FALSE(config->check_determinism);
  EXPECT_FALSE(config->full_log);
  EXPECT_FALSE(config->strategy.has_value());
  EXPECT_FALSE(config->trace_file.has_value());
  EXPECT_EQ(config->total_shards, 1u);
}

TEST(EmptyEnvironmentValueTest, EmptySingleSeedLeavesTheSweepAndOtherVariablesApply) {
  absl::StatusOr<SweepConfig> config =
      Parse(Env{{{"SIMSCHED_SEED", ""}, {"SIMSCHED_ITERATIONS", "3"}}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(SweepSeeds(*config), ElementsAre(0, 1, 2));
}

TEST(EmptyEnvironmentValueTest, EnvironmentValueReadsTheProcessEnvironment) {
  ScopedEnv env{{"SIMSCHED_TEST_EMPTY", ""}, {"SIMSCHED_TEST_SET", "x"}};
  EXPECT_EQ(EnvironmentValue("SIMSCHED_TEST_EMPTY"), nullptr);
  EXPECT_EQ(EnvironmentValue("SIMSCHED_TEST_NEVER_SET"), nullptr);
  ASSERT_NE(EnvironmentValue("SIMSCHED_TEST_SET"), nullptr);
  EXPECT_STREQ(EnvironmentValue("SIMSCHED_TEST_SET"), "x");
}

TEST(EmptyEnvironmentValueTest, EnvironmentUint64DefaultsWhenUnsetOrEmptyAndRejectsJunk) {
  {
    ScopedEnv env{{"SIMSCHED_RACE_ITERATIONS", ""}};
    EXPECT_EQ(EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 2000).value_or(0), 2000u);
  }
  EXPECT_EQ(EnvironmentUint64("SIMSCHED_TEST_NEVER_SET", 7).value_or(0), 7u);
  {
    ScopedEnv env{{"SIMSCHED_RACE_ITERATIONS", "12"}};
    EXPECT_EQ(EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 2000).value_or(0), 12u);
  }
  {
    // Before this rule, atoi turned "lots" into 0 iterations: a race test
    // that silently tested nothing.
    ScopedEnv env{{"SIMSCHED_RACE_ITERATIONS", "lots"}};
    absl::StatusOr<uint64_t> bad = EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 2000);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bad.status().message(), HasSubstr("SIMSCHED_RACE_ITERATIONS=\"lots\""));
    EXPECT_THAT(bad.status().message(), HasSubstr("whole number"));
  }
}

TEST(SeedsFromEnvironmentTest, DefaultsThenCountAndStartThenOneSeed) {
  absl::StatusOr<std::vector<uint64_t>> seeds = SeedsFromEnvironment("SIMSCHED_TEST_SFE", 3, 1);
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  EXPECT_THAT(*seeds, ElementsAre(1u, 2u, 3u));
  {
    ScopedEnv env{{"SIMSCHED_TEST_SFE_SEEDS", "2"}, {"SIMSCHED_TEST_SFE_START_SEED", "40"}};
    seeds = SeedsFromEnvironment("SIMSCHED_TEST_SFE", 3, 1);
    ASSERT_TRUE(seeds.ok()) << seeds.status();
    EXPECT_THAT(*seeds, ElementsAre(40u, 41u));
  }
  {
    ScopedEnv env{{"SIMSCHED_TEST_SFE_SEEDS", "2"}, {"SIMSCHED_TEST_SFE_SEED", "17"}};
    seeds = SeedsFromEnvironment("SIMSCHED_TEST_SFE", 3, 1);
    ASSERT_TRUE(seeds.ok()) << seeds.status();
    EXPECT_THAT(*seeds, ElementsAre(17u));
  }
  {
    ScopedEnv env{{"SIMSCHED_TEST_SFE_SEEDS", ""}, {"SIMSCHED_TEST_SFE_SEED", ""}};
    seeds = SeedsFromEnvironment("SIMSCHED_TEST_SFE", 2, 0);
    ASSERT_TRUE(seeds.ok()) << seeds.status();
    EXPECT_THAT(*seeds, ElementsAre(0u, 1u));
  }
}

TEST(SeedsFromEnvironmentTest, ZeroJunkAndOverflowAreErrorsNamingTheVariable) {
  for (const auto& [name, value, says] :
       {std::tuple{"SIMSCHED_TEST_SFE_SEEDS", "0", "would run nothing"},
        std::tuple{"SIMSCHED_TEST_SFE_SEEDS", "many", "whole number"},
        std::tuple{"SIMSCHED_TEST_SFE_START_SEED", "-1", "whole number"},
        std::tuple{"SIMSCHED_TEST_SFE_START_SEED", "18446744073709551615",
                   "runs past the last seed"}}) {
    ScopedEnv env{{name, value}};
    absl::StatusOr<std::vector<uint64_t>> seeds = SeedsFromEnvironment("SIMSCHED_TEST_SFE", 3);
    ASSERT_FALSE(seeds.ok()) << name << "=" << value;
    EXPECT_EQ(seeds.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(seeds.status().message(), HasSubstr(name));
    EXPECT_THAT(seeds.status().message(), HasSubstr(says));
  }
}

}  // namespace
}  // namespace simsched::testing
