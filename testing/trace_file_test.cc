// SIMSCHED_TRACE_FILE: a replayed seed's events as JSON lines
// (testing/internal/trace_writer.h, docs/trace-format.md), driven through
// RunSimTest as a user's test would be.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/internal/capture_failures.h"
#include "testing/internal/trace_probe_program.h"
#include "testing/sim_test.h"

namespace simsched::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using test_internal::CaptureFailures;
using test_internal::ScopedEnv;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// The trace probe program: without its check, a passing run; with it, a
// failure inside a task.
void Passing(Sim& sim) { test_internal::TraceProbeProgram(sim, /*check_jobs=*/false); }
void Failing(Sim& sim) { test_internal::TraceProbeProgram(sim, /*check_jobs=*/true); }

TEST(TraceFileTest, SameSeedWritesTheSameFileByteForByte) {
  const std::string first = TempPath("trace_first.jsonl");
  const std::string second = TempPath("trace_second.jsonl");
  for (const std::string& path : {first, second}) {
    ScopedEnv env{{"SIMSCHED_SEED", "11"}, {"SIMSCHED_TRACE_FILE", path.c_str()}};
    EXPECT_THAT(CaptureFailures([] {
                  RunSimTest("Trace.Passing", &Passing, {}, "", "", SourceLocation::current());
                }),
                IsEmpty());
  }
  const std::string text = ReadFile(first);
  ASSERT_THAT(text, Not(IsEmpty()));
  EXPECT_EQ(text, ReadFile(second));
  EXPECT_THAT(text, HasSubstr("{\"event\": \"run\", \"format\": 1, \"test\": \"Trace.Passing\", "
                              "\"seed\": 11,"));
  EXPECT_THAT(text, HasSubstr("\"failed\": false"));
  EXPECT_THAT(text, HasSubstr("\"event\": \"spawn\""));
  EXPECT_THAT(text, HasSubstr("\"event\": \"complete\""));
  EXPECT_THAT(text, HasSubstr("\"label\": \"producer\""));
  EXPECT_THAT(text, HasSubstr("\"cause\": \"timer\""));
  EXPECT_THAT(text, HasSubstr("\"resumed_what\": \"Channel<int> 'jobs'"));
  EXPECT_THAT(text, HasSubstr("\"session\": 1"));
  EXPECT_THAT(text, HasSubstr("\"event\": \"fault\", "));
  EXPECT_THAT(text, HasSubstr("\"kind\": \"buggify.fired\""));
  EXPECT_THAT(text, HasSubstr("producer.extra_job"));
  EXPECT_THAT(text, Not(HasSubstr("\"event\": \"failure\"")));
}

TEST(TraceFileTest, AnotherSeedWritesAnotherSchedule) {
  const std::string a = TempPath("trace_seed_a.jsonl");
  const std::string b = TempPath("trace_seed_b.jsonl");
  for (const auto& [seed, path] : {std::pair{"1", a}, std::pair{"2", b}}) {
    ScopedEnv env{{"SIMSCHED_SEED", seed}, {"SIMSCHED_TRACE_FILE", path.c_str()}};
    CaptureFailures(
        [] { RunSimTest("Trace.Passing", &Passing, {}, "", "", SourceLocation::current()); });
  }
  EXPECT_NE(ReadFile(a), ReadFile(b));
}

TEST(TraceFileTest, FailuresAreEventsWithTheirTask) {
  const std::string path = TempPath("trace_failing.jsonl");
  ScopedEnv env{{"SIMSCHED_SEED", "3"}, {"SIMSCHED_TRACE_FILE", path.c_str()}};
  std::vector<std::string> failures = CaptureFailures(
      [] { RunSimTest("Trace.Failing", &Failing, {}, "", "", SourceLocation::current()); });
  ASSERT_EQ(failures.size(), 1u);
  const std::string text = ReadFile(path);
  EXPECT_THAT(text, HasSubstr("\"failed\": true"));
  EXPECT_THAT(text, HasSubstr("\"event\": \"failure\""));
  EXPECT_THAT(text, HasSubstr("the consumer received an unexpected job"));
  EXPECT_THAT(text, HasSubstr("\"task_text\": \"task 2 \\\"consumer\\\""));
}

TEST(TraceFileTest, NoFileWithoutTheVariable) {
  const std::string path = TempPath("trace_never.jsonl");
  std::remove(path.c_str());
  ScopedEnv env{{"SIMSCHED_SEED", "11"}};
  CaptureFailures(
      [] { RunSimTest("Trace.Passing", &Passing, {}, "", "", SourceLocation::current()); });
  EXPECT_FALSE(std::ifstream(path).good());
}

TEST(TraceFileTest, ASweepCannotBeTraced) {
  ScopedEnv env{{"SIMSCHED_TRACE_FILE", TempPath("trace_sweep.jsonl").c_str()}};
  std::vector<std::string> failures = CaptureFailures(
      [] { RunSimTest("Trace.Passing", &Passing, {}, "", "", SourceLocation::current()); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("set SIMSCHED_SEED too"));
}

TEST(TraceFileTest, AnUnwritablePathIsAClearFailure) {
  ScopedEnv env{{"SIMSCHED_SEED", "11"},
                {"SIMSCHED_TRACE_FILE", "/nonexistent-dir/trace.jsonl"}};
  std::vector<std::string> failures = CaptureFailures(
      [] { RunSimTest("Trace.Passing", &Passing, {}, "", "", SourceLocation::current()); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("/nonexistent-dir/trace.jsonl cannot be opened"));
}

}  // namespace
}  // namespace simsched::testing
