// The harness end to end: runs simulation test binaries as a user (or CI)
// would, with environment variables and shards, and checks what they print
// and what they write to the undeclared-outputs directory.

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Extracts the JSON array `key` from one summary line as strings.
std::vector<std::string> JsonArray(const std::string& line, const std::string& key) {
  std::vector<std::string> items;
  const std::string marker = "\"" + key + "\": [";
  size_t start = line.find(marker);
  if (start == std::string::npos) return items;
  start += marker.size();
  const size_t end = line.find(']', start);
  std::stringstream s(line.substr(start, end - start));
  for (std::string item; std::getline(s, item, ',');) {
    item.erase(0, item.find_first_not_of(" \""));
    item.erase(item.find_last_not_of(" \"") + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::string Match(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern)) || m.size() < 2) return "";
  return m[1];
}

const char kBank[] = "testing/examples/bank_sim_test";
const char kProbe[] = "testing/internal/sweep_probe_sim_test";
const char kNondeterministic[] = "testing/internal/nondeterministic_sim_test";
const char kCrash[] = "testing/internal/crash_sim_test";

TEST(HarnessIntegrationTest, PlantedBugFailsOnSomeSeedsAndPassesOnOthers) {
  const std::string out = TempDir("planted_all");
  Result r = RunCommand(absl::StrCat("SIMSCHED_COLLECT_ALL=1 TEST_UNDECLARED_OUTPUTS_DIR=", out),
                 Runfile(kBank) + " --gtest_filter=BankTest.TransfersNeverOverdraw");
  EXPECT_NE(r.exit_code, 0) << r.output;
  const std::string failed = Match(r.output, "300 seeds run \\(0 regression\\), ([0-9]+) failed");
  ASSERT_FALSE(failed.empty()) << r.output;
  EXPECT_GT(std::stoi(failed), 0);
  EXPECT_LT(std::stoi(failed), 300) << "the bug must depend on the schedule";
  // The trace tells the story: where each task resumed and what woke it.
  EXPECT_THAT(r.output, ::testing::ContainsRegex(
                            "resumed after Sleep at testing/examples/bank.cc:[0-9]+ \\(FraudCheck\\), "
                            "woken by a timer"));
  EXPECT_THAT(r.output, HasSubstr("started (spawned at testing/examples/bank.cc:"));
  // One machine-readable line per failing seed, each well formed.
  std::vector<std::string> lines = Lines(ReadFile(out + "/simsched_failures.jsonl"));
  EXPECT_EQ(lines.size(), static_cast<size_t>(std::stoi(failed)));
  const std::regex json_line(
      "\\{\"test\": \"BankTest.TransfersNeverOverdraw\", \"seed\": [0-9]+, \"step\": [0-9]+, "
      "\"virtual_time_ns\": [0-9]+, \"trace_hash\": \"0x[0-9a-f]{16}\", \"strategy\": "
      "\"[a-z0-9:=]+\", \"regression\": false, \"site\": \"testing/examples/bank_sim_test.cc:[0-9]+\", "
      "\"message\": \"(?:[^\"\\\\]|\\\\.)*account [0-9] is overdrawn: balance -[0-9]+(?:[^\"\\\\]|\\\\.)*\", "
      "\"replay_bazel\": \"bazel test //testing/examples:bank_sim_test [^\"]*\", "
      "\"replay_binary\": \"SIMSCHED_SEED=[0-9]+ SIMSCHED_STRATEGY=[a-z0-9:=]+ [^\"]*\"\\}");
  for (const std::string& line : lines) EXPECT_TRUE(std::regex_match(line, json_line)) << line;
}

TEST(HarnessIntegrationTest, ReplayCommandRunAsPrintedReproducesTheFailureAndTraceHash) {
  Result sweep = RunCommand("", Runfile(kBank) + " --gtest_filter=BankTest.TransfersNeverOverdraw");
  ASSERT_NE(sweep.exit_code, 0) << sweep.output;
  const std::string seed = Match(sweep.output, "failed on seed ([0-9]+)");
  const std::string hash = Match(sweep.output, "with trace hash (0x[0-9a-f]{16})");
  const std::string replay = Match(sweep.output, "\n  (SIMSCHED_SEED=[0-9]+ [^\n]+)\n");
  ASSERT_FALSE(seed.empty()) << sweep.output;
  ASSERT_FALSE(hash.empty()) << sweep.output;
  ASSERT_THAT(replay, HasSubstr("bazel-bin/testing/examples/bank_sim_test "
                                "--gtest_filter=BankTest.TransfersNeverOverdraw"));
  EXPECT_THAT(sweep.output,
              HasSubstr(absl::StrCat("bazel test //testing/examples:bank_sim_test "
                                     "--test_filter=BankTest.TransfersNeverOverdraw "
                                     "--test_env=SIMSCHED_SEED=",
                                     seed)));
  // A workspace-like directory where the printed relative path resolves.
  const std::string workspace = TempDir("replay_workspace");
  std::system(absl::StrCat("mkdir -p '", workspace, "/bazel-bin/testing/examples' && ln -s '",
                           Runfile(kBank), "' '", workspace, "/bazel-bin/", kBank, "'")
                  .c_str());
  Result replayed = RunCommand("", replay, workspace);
  EXPECT_NE(replayed.exit_code, 0) << replayed.output;
  EXPECT_EQ(Match(replayed.output, "failed on seed ([0-9]+)"), seed) << replayed.output;
  EXPECT_EQ(Match(replayed.output, "with trace hash (0x[0-9a-f]{16})"), hash);
  EXPECT_THAT(replayed.output, HasSubstr("1 seeds run"));
  EXPECT_THAT(replayed.output, HasSubstr("replaying SIMSCHED_SEED"));
}

TEST(HarnessIntegrationTest, FixedHandlerPassesTheSameSweep) {
  Result r = RunCommand("", Runfile(kBank) + " --gtest_filter=BankTest.FixedTransfersNeverOverdraw");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("300 seeds run (0 regression), 0 failed"));
}

TEST(HarnessIntegrationTest, ThreeShardsTogetherRunEachSeedExactlyOnce) {
  std::map<std::string, int> seen;
  for (int shard = 0; shard < 3; ++shard) {
    const std::string out = TempDir(absl::StrCat("shard_", shard));
    const std::string status_file = out + "/shard_status";
    Result r = RunCommand(absl::StrCat("GTEST_TOTAL_SHARDS=3 GTEST_SHARD_INDEX=", shard,
                                " TEST_SHARD_STATUS_FILE=", status_file,
                                " TEST_UNDECLARED_OUTPUTS_DIR=", out),
                   Runfile(kProbe));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(access(status_file.c_str(), F_OK), 0) << "Bazel's shard status file not touched";
    // One line per test, then one for the whole program (its properties).
    std::vector<std::string> lines = Lines(ReadFile(out + "/simsched_summary.jsonl"));
    ASSERT_EQ(lines.size(), 2u) << "every shard runs the test (seeds are sharded, not tests)";
    EXPECT_EQ(lines[0].rfind("{\"test\": ", 0), 0u) << lines[0];
    EXPECT_EQ(lines[1].rfind("{\"program\": ", 0), 0u) << lines[1];
    std::vector<std::string> seeds = JsonArray(lines[0], "seeds");
    // Shard 0 also runs the two regression seeds, first.
    const size_t skip = shard == 0 ? 2 : 0;
    for (size_t i = skip; i < seeds.size(); ++i) ++seen[seeds[i]];
  }
  ASSERT_EQ(seen.size(), 30u);
  for (int seed = 0; seed < 30; ++seed) EXPECT_EQ(seen[std::to_string(seed)], 1) << seed;
}

TEST(HarnessIntegrationTest, GtestFilterStillSelectsTests) {
  const std::string out = TempDir("filter");
  Result r = RunCommand("TEST_UNDECLARED_OUTPUTS_DIR=" + out,
                 Runfile(kProbe) + " --gtest_filter=NoSuchTest.*");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(out + "/simsched_summary.jsonl"), "");
}

TEST(HarnessIntegrationTest, RegressionSeedsFromTheSeedFileRunFirst) {
  const std::string out = TempDir("regression");
  Result r = RunCommand("TEST_UNDECLARED_OUTPUTS_DIR=" + out, Runfile(kProbe));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> seeds =
      JsonArray(Lines(ReadFile(out + "/simsched_summary.jsonl"))[0], "seeds");
  ASSERT_GE(seeds.size(), 4u);
  EXPECT_EQ(seeds[0], "1000");
  EXPECT_EQ(seeds[1], "77");
  EXPECT_EQ(seeds[2], "0");
  EXPECT_EQ(seeds.size(), 32u);
}

TEST(HarnessIntegrationTest, ASeedRunAloneGivesTheSameTraceHashAsInsideASweep) {
  const std::string sweep_out = TempDir("sweep_hashes");
  ASSERT_EQ(RunCommand("TEST_UNDECLARED_OUTPUTS_DIR=" + sweep_out, Runfile(kProbe)).exit_code, 0);
  const std::string line = Lines(ReadFile(sweep_out + "/simsched_summary.jsonl"))[0];
  std::vector<std::string> seeds = JsonArray(line, "seeds");
  std::vector<std::string> hashes = JsonArray(line, "trace_hashes");
  ASSERT_EQ(seeds.size(), hashes.size());
  for (const char* seed : {"17", "29"}) {
    const auto it = std::find(seeds.begin(), seeds.end(), seed);
    ASSERT_NE(it, seeds.end());
    const std::string alone_out = TempDir(std::string("alone_") + seed);
    ASSERT_EQ(RunCommand(absl::StrCat("SIMSCHED_SEED=", seed, " TEST_UNDECLARED_OUTPUTS_DIR=", alone_out),
                  Runfile(kProbe))
                  .exit_code,
              0);
    std::vector<std::string> alone =
        JsonArray(Lines(ReadFile(alone_out + "/simsched_summary.jsonl"))[0], "trace_hashes");
    ASSERT_EQ(alone.size(), 1u) << "a replay runs exactly one seed, no regression seeds";
    EXPECT_EQ(alone[0], hashes[it - seeds.begin()]) << "seed " << seed;
  }
}

TEST(HarnessIntegrationTest, DeterminismCheckCatchesAWallClockRead) {
  Result unchecked = RunCommand("", Runfile(kNondeterministic) +
                                 " --gtest_filter=Nondeterministic.ReadsTheWallClock");
  EXPECT_EQ(unchecked.exit_code, 0) << "without the check nothing notices: " << unchecked.output;
  Result r = RunCommand("SIMSCHED_CHECK_DETERMINISM=1",
                 Runfile(kNondeterministic) + " --gtest_filter=Nondeterministic.ReadsTheWallClock");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is not deterministic on seed"));
  EXPECT_THAT(r.output, HasSubstr("the runs diverge at step"));
  EXPECT_THAT(r.output, HasSubstr("first run:"));
  EXPECT_THAT(r.output, HasSubstr("second run:"));
}

TEST(HarnessIntegrationTest, DeterminismCheckCatchesPointerHashSetIteration) {
  Result r = RunCommand("SIMSCHED_CHECK_DETERMINISM=1",
                 Runfile(kNondeterministic) +
                     " --gtest_filter=Nondeterministic.IteratesPointerHashSet");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is not deterministic on seed"));
}

TEST(HarnessIntegrationTest, DeterminismCheckPassesACleanTest) {
  Result r = RunCommand("SIMSCHED_CHECK_DETERMINISM=1",
                 Runfile(kNondeterministic) + " --gtest_filter=Nondeterministic.CleanControl");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(HarnessIntegrationTest, BadEnvironmentValueFailsTheTestWithItsMessage) {
  Result r = RunCommand("SIMSCHED_TIME_BUDGET=forever", Runfile(kProbe));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("SIMSCHED_TIME_BUDGET=\"forever\" is not valid"));
  EXPECT_THAT(r.output, HasSubstr("e.g. 30s"));
}

TEST(HarnessIntegrationTest, TimeBudgetStopsTheSweepAndSaysHowFarItGot) {
  Result r = RunCommand("SIMSCHED_ITERATIONS=100000000 SIMSCHED_TIME_BUDGET=300ms", Runfile(kProbe));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the time budget (SIMSCHED_TIME_BUDGET) ran out after"));
  EXPECT_THAT(r.output, HasSubstr("the next would have been"));
}

// A crash inside a seed names the seed: the report comes from the signal
// handler, before the process dies (as it did before: still a failure).
TEST(HarnessIntegrationTest, ASegfaultInsideASeedPrintsTheSeedAndItsReplayCommands) {
  Result r = RunCommand("", Runfile(kCrash) + " --gtest_filter=CrashTest.SegfaultOnSeed3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("simsched: CRASH: SIGSEGV (segmentation fault) in "
                                  "CrashTest.SegfaultOnSeed3 on seed 3 (strategy random) at step "));
  EXPECT_THAT(r.output, HasSubstr(", virtual time +0ns"));
  EXPECT_THAT(r.output, HasSubstr("  bazel test //testing/internal:crash_sim_test "
                                  "--test_filter=CrashTest.SegfaultOnSeed3 "
                                  "--test_env=SIMSCHED_SEED=3 --test_env=SIMSCHED_STRATEGY=random "
                                  "--test_output=all"));
  EXPECT_THAT(r.output, HasSubstr("  SIMSCHED_SEED=3 SIMSCHED_STRATEGY=random "
                                  "bazel-bin/testing/internal/crash_sim_test "
                                  "--gtest_filter=CrashTest.SegfaultOnSeed3"));
  // The step is the one the crash happened in: after the task's three yields.
  const std::string step = Match(r.output, "on seed 3 \\(strategy random\\) at step ([0-9]+)");
  EXPECT_EQ(step, "4") << r.output;
}

TEST(HarnessIntegrationTest, StdTerminateInsideASeedPrintsTheSeedOnce) {
  Result r = RunCommand("", Runfile(kCrash) + " --gtest_filter=CrashTest.TerminateOnSeed3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("simsched: CRASH: std::terminate in CrashTest.TerminateOnSeed3 "
                                  "on seed 3 (strategy random)"));
  EXPECT_THAT(r.output,
              HasSubstr("SIMSCHED_SEED=3 SIMSCHED_STRATEGY=random bazel-bin/testing/internal/crash_sim_test"));
  // terminate -> abort -> SIGABRT is reported once, not twice.
  EXPECT_EQ(r.output.find("simsched: CRASH:"), r.output.rfind("simsched: CRASH:")) << r.output;
}

TEST(HarnessIntegrationTest, TheCrashingSeedReplayedAloneCrashesTheSameWay) {
  Result r = RunCommand("SIMSCHED_SEED=3",
                        Runfile(kCrash) + " --gtest_filter=CrashTest.SegfaultOnSeed3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("on seed 3 (strategy random) at step 4,"));
  Result other = RunCommand("SIMSCHED_SEED=4",
                            Runfile(kCrash) + " --gtest_filter=CrashTest.SegfaultOnSeed3");
  EXPECT_EQ(other.exit_code, 0) << other.output;
}

// Seeds are generated, not stored: the largest iteration count costs no
// memory up front, and the time budget stops the sweep close to its value.
// (Bounds on the sweep as a whole, not a measurement of the code's speed.)
TEST(HarnessIntegrationTest, MaximalIterationsWithATimeBudgetEndInTimeAndInConstantMemory) {
  // Measured from a fresh child process, whose only waited-for child is the
  // sweep: RUSAGE_CHILDREN then reports the sweep's own peak RSS, not that
  // of some earlier, bigger child of this test (a sanitizer crash report).
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    Result r = RunCommand("SIMSCHED_ITERATIONS=18446744073709551615 SIMSCHED_TIME_BUDGET=2s",
                          Runfile(kProbe));
    struct rusage usage = {};
    getrusage(RUSAGE_CHILDREN, &usage);
    const std::string report = absl::StrCat(r.exit_code, "\n", usage.ru_maxrss, "\n", r.output);
    size_t written = 0;
    while (written < report.size()) {
      const ssize_t n = write(fds[1], report.data() + written, report.size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) report.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::stringstream lines(report);
  std::string exit_code, max_rss_kib;
  std::getline(lines, exit_code);
  std::getline(lines, max_rss_kib);
  const std::string output = report;
  EXPECT_EQ(exit_code, "0") << output;
  EXPECT_THAT(output, HasSubstr("the time budget (SIMSCHED_TIME_BUDGET) ran out after"));
  EXPECT_THAT(output, HasSubstr(" of 18446744073709551615 seeds"));
  EXPECT_LT(seconds, 3.0) << output;
  // ru_maxrss is in KiB. Sanitizers add a constant of their own: ASan keeps
  // up to 256 MB of freed memory in quarantine, TSan its shadow memory.
#if defined(SIMSCHED_ASAN)
  constexpr long kBoundKib = (100 + 256) * 1024;
#elif defined(SIMSCHED_TSAN)
  constexpr long kBoundKib = 1024 * 1024;
#else
  constexpr long kBoundKib = 100 * 1024;
#endif
  ASSERT_FALSE(max_rss_kib.empty()) << output;
  EXPECT_LT(std::stol(max_rss_kib), kBoundKib) << "peak RSS " << max_rss_kib << " KiB";
}

}  // namespace
