// Strategies and properties end to end, run as a user would: the bundled
// bank example swept under SIMSCHED_STRATEGY=pct:3 prints the strategy in
// its replay line and that line reproduces the trace hash; the property
// report merges the tallies of three shards.

#include <cstdlib>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/internal/run_command.h"

namespace {

using ::testing::HasSubstr;

using ::simsched::testing::test_internal::Result;
using ::simsched::testing::test_internal::RunCommand;
using ::simsched::testing::test_internal::Runfile;
using ::simsched::testing::test_internal::TempDir;

std::string Match(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern)) || m.size() < 2) return "";
  return m[1];
}

const char kBank[] = "testing/examples/bank_sim_test";

TEST(StrategyIntegrationTest, BankUnderPct3PrintsItsStrategyAndTheReplayLineReproducesTheHash) {
  Result sweep = RunCommand("SIMSCHED_STRATEGY=pct:3",
                            Runfile(kBank) + " --gtest_filter=BankTest.TransfersNeverOverdraw");
  ASSERT_NE(sweep.exit_code, 0) << sweep.output;
  const std::string seed = Match(sweep.output, "failed on seed ([0-9]+)");
  const std::string hash = Match(sweep.output, "with trace hash (0x[0-9a-f]{16})");
  const std::string strategy = Match(sweep.output, "under strategy (pct:3:k=[0-9]+)\n");
  const std::string replay = Match(sweep.output, "\n  (SIMSCHED_SEED=[0-9]+ [^\n]+)\n");
  ASSERT_FALSE(strategy.empty()) << sweep.output;
  EXPECT_THAT(replay, HasSubstr(absl::StrCat("SIMSCHED_SEED=", seed, " SIMSCHED_STRATEGY=",
                                             strategy, " ")));
  EXPECT_THAT(sweep.output, HasSubstr(absl::StrCat("--test_env=SIMSCHED_STRATEGY=", strategy)));
  const std::string workspace = TempDir("replay_workspace");
  std::system(absl::StrCat("mkdir -p '", workspace, "/bazel-bin/testing/examples' && ln -s '",
                           Runfile(kBank), "' '", workspace, "/bazel-bin/", kBank, "'")
                  .c_str());
  Result replayed = RunCommand("", replay, workspace);
  EXPECT_NE(replayed.exit_code, 0) << replayed.output;
  EXPECT_EQ(Match(replayed.output, "failed on seed ([0-9]+)"), seed) << replayed.output;
  EXPECT_EQ(Match(replayed.output, "with trace hash (0x[0-9a-f]{16})"), hash);
  EXPECT_THAT(replayed.output, HasSubstr("under strategy " + strategy));
}

TEST(StrategyIntegrationTest, ABadStrategyVariableFailsWithItsMessage) {
  Result r = RunCommand("SIMSCHED_STRATEGY=fastest", Runfile(kBank));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("SIMSCHED_STRATEGY=\"fastest\" is not valid"));
  EXPECT_THAT(r.output, HasSubstr("Accepted: random, fifo, pos, mix, pct"));
}

TEST(StrategyIntegrationTest, PropertyReportMergesShards) {
  std::string dirs;
  for (int shard = 0; shard < 3; ++shard) {
    const std::string out = TempDir(absl::StrCat("property_shard_", shard));
    Result r = RunCommand(absl::StrCat("GTEST_TOTAL_SHARDS=3 GTEST_SHARD_INDEX=", shard,
                                       " TEST_UNDECLARED_OUTPUTS_DIR=", out),
                          Runfile("testing/internal/property_probe_sim_test"));
    ASSERT_EQ(r.exit_code, 0) << "a shard never fails for a sometimes-property: " << r.output;
    EXPECT_THAT(r.output, HasSubstr("properties over this sweep"));
    // One shard cannot know what the others reached: a warning naming it.
    EXPECT_THAT(r.output, HasSubstr("warning: no seed of any test in this program reached"));
    EXPECT_THAT(r.output, HasSubstr("not a failure: this is one shard"));
    absl::StrAppend(&dirs, " '", out, "'");
  }
  Result report = RunCommand("", Runfile("testing/property_report") + dirs);
  EXPECT_EQ(report.exit_code, 1) << report.output;
  // Per shard: two sweeps and the program's line.
  EXPECT_THAT(report.output, HasSubstr("9 summary lines from 3 files"));
  EXPECT_THAT(report.output, testing::ContainsRegex("\"only seed 7\" +sometimes +12 +1  7 "));
  EXPECT_THAT(report.output, testing::ContainsRegex("\"small seeds\" +always +12 +12 "));
  EXPECT_THAT(report.output,
              HasSubstr("UNSATISFIED: PropertyProbe.Tallies: no seed of any shard satisfied "
                        "\"no seed\""));
  EXPECT_THAT(report.output, testing::Not(HasSubstr("satisfied \"only seed 7\"")));
  // Declared properties: reached in one shard of three counts as reached.
  EXPECT_THAT(report.output,
              testing::ContainsRegex("NEVER REACHED: property_probe_sim_test: no seed of any "
                                     "test in any shard reached \"never reached\" "
                                     "\\(testing/internal/property_probe_sim_test.cc:[0-9]+\\)"));
  EXPECT_THAT(report.output, testing::ContainsRegex(
                                 "\"reached only by seed 7\" +reachable +1 +1  7 "));
  EXPECT_THAT(report.output, testing::Not(HasSubstr("reached \"reached only by seed 7\"")));
}

TEST(StrategyIntegrationTest, APropertyNoSeedReachedFailsTheProgramNamingIt) {
  const std::string out = TempDir("property_one_shard");
  Result r = RunCommand(absl::StrCat("TEST_UNDECLARED_OUTPUTS_DIR=", out),
                        Runfile("testing/internal/property_probe_sim_test"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("properties declared in this program, over its 2 sweeps"));
  EXPECT_THAT(r.output, testing::ContainsRegex("\"never reached\" +reachable +0 +0  - +"
                                               "testing/internal/property_probe_sim_test.cc:"
                                               "[0-9]+  NEVER REACHED"));
  EXPECT_THAT(r.output, testing::ContainsRegex(
                            "no seed of any test in this program reached these properties[^\n]*"
                            "\n  \"never reached\" \\(reachable, "
                            "testing/internal/property_probe_sim_test.cc:[0-9]+\\)"));
  EXPECT_THAT(r.output, testing::Not(HasSubstr("\"reached only by seed 7\" (reachable")));
  // The same program, filtered to one test, cannot judge: a warning.
  Result filtered = RunCommand("", Runfile("testing/internal/property_probe_sim_test") +
                                       " --gtest_filter=PropertyProbe.Reaches");
  EXPECT_EQ(filtered.exit_code, 0) << filtered.output;
  EXPECT_THAT(filtered.output, HasSubstr("not every test of the program ran"));
  // The report over this one file agrees.
  Result report = RunCommand("", Runfile("testing/property_report") + " '" + out + "'");
  EXPECT_EQ(report.exit_code, 1) << report.output;
  EXPECT_THAT(report.output, HasSubstr("reached \"never reached\""));
}

}  // namespace
