#include "testing/sim_test.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest-spi.h"
#include "scheduler/strategy.h"
#include "sim/properties.h"
#include "scheduler/internal/test_scheduler_pool.h"
#include "testing/internal/program_properties.h"
#include "testing/internal/progress_file.h"
#include "testing/internal/property_tally.h"
#include "testing/internal/seed_report.h"
#include "testing/internal/crash_reporter.h"
#include "testing/internal/trace_writer.h"
#include "testing/regression_seeds.h"
#include "testing/sweep_config.h"

namespace simsched::testing {
namespace {

using sim_test_internal::BinaryPath;
using sim_test_internal::CapturedFailure;
using sim_test_internal::CompareRuns;
using sim_test_internal::DescribeFailedSeed;
using sim_test_internal::FailureSite;
using sim_test_internal::ProgressFile;
using sim_test_internal::Replay;
using sim_test_internal::ReplayCommands;
using sim_test_internal::SeedRun;
using sim_test_internal::WriteRunTrace;

// Starts the status with which a violated always-property stops the run; the
// violation itself is already a captured failure.
constexpr char kStoppedByProperty[] = "simsched stopped the run at a violated property: ";

// Seeds whose step counts (under `random`) give PCT its k when the strategy
// does not say: fixed, so every shard and every replay computes the same k.
constexpr uint64_t kCalibrationSeeds = 3;

class SeedContext;
thread_local SeedContext* current_seed = nullptr;

// Collects the failures raised on this thread while a seed runs, and notes
// the simsched task each was raised in. Not a gtest reporter itself: the
// sweep's one SweepReporter hands it what it intercepts, so that a seed costs
// no reporter swap in gtest.
class SeedContext {
 public:
  explicit SeedContext(SeedRun& run) : run_(run) {
    previous_ = std::exchange(current_seed, this);
  }
  ~SeedContext() { current_seed = previous_; }
  SeedContext(const SeedContext&) = delete;
  SeedContext& operator=(const SeedContext&) = delete;

  void Report(const ::testing::TestPartResult& result) {
    if (result.type() == ::testing::TestPartResult::kSuccess ||
        result.type() == ::testing::TestPartResult::kSkip) {
      return;
    }
    CapturedFailure failure;
    failure.fatal = result.fatally_failed();
    failure.file = result.file_name() != nullptr ? result.file_name() : "";
    failure.line = result.line_number();
    failure.message = result.message();
    if (const internal::TaskHeader* task = internal::current_task) {
      failure.task = task->metadata.DebugString();
      failure.task_id = task->metadata.id;
    }
    Add(std::move(failure));
  }

  void Add(CapturedFailure failure) {
    if (scheduler_ != nullptr) {
      failure.step = scheduler_->step_count();
      failure.time = scheduler_->Elapsed();
    } else {  // in the scheduler's shutdown: the run's end
      failure.step = run_.steps;
      failure.time = run_.elapsed;
    }
    if (run_.failures.empty() && scheduler_ != nullptr) {
      run_.first_failure_step = scheduler_->step_count();
      run_.first_failure_time = scheduler_->Elapsed();
    }
    fatal_ |= failure.fatal;
    run_.failures.push_back(std::move(failure));
  }

  void set_scheduler(TestScheduler* scheduler) { scheduler_ = scheduler; }
  bool fatal() const { return fatal_; }

 private:
  SeedRun& run_;
  SeedContext* previous_;
  TestScheduler* scheduler_ = nullptr;
  bool fatal_ = false;
};

// Intercepts gtest failures on this thread from a sweep's first seed until
// the sweep's own code reports something (Uninstall) or the sweep ends: one
// reporter swap a sweep, not one a seed. A failure raised while a seed runs
// goes to that seed's SeedContext (current_seed: the innermost seed, so a
// failure is never charged to another); one raised between seeds is kept and
// handed to gtest's reporter when the interception ends, so none is lost.
// Ends on every way out of RunSimTest, exceptions included (a destructor).
class SweepReporter {
 public:
  SweepReporter() = default;
  SweepReporter(const SweepReporter&) = delete;
  SweepReporter& operator=(const SweepReporter&) = delete;
  ~SweepReporter() { Uninstall(); }

  // Before each seed.
  void Install() {
    if (!interceptor_.has_value()) interceptor_.emplace(&between_seeds_);
  }
  // Before the sweep reports anything to gtest itself.
  void Uninstall() {
    if (!interceptor_.has_value()) return;
    interceptor_.reset();  // gtest's previous reporter is back
    std::vector<::testing::TestPartResult> results = std::move(between_seeds_);
    between_seeds_.clear();
    for (const ::testing::TestPartResult& result : results) {
      ::testing::internal::AssertHelper(result.type(), result.file_name(), result.line_number(),
                                        result.message()) = ::testing::Message();
    }
  }

 private:
  class Interceptor : public ::testing::ScopedFakeTestPartResultReporter {
   public:
    explicit Interceptor(std::vector<::testing::TestPartResult>* between_seeds)
        : ScopedFakeTestPartResultReporter(INTERCEPT_ONLY_CURRENT_THREAD, &unused_),
          between_seeds_(between_seeds) {}
    void ReportTestPartResult(const ::testing::TestPartResult& result) override {
      if (current_seed != nullptr) return current_seed->Report(result);
      between_seeds_->push_back(result);
    }

   private:
    ::testing::TestPartResultArray unused_;  // (the base's array: never written)
    std::vector<::testing::TestPartResult>* between_seeds_;
  };

  std::vector<::testing::TestPartResult> between_seeds_;
  std::optional<Interceptor> interceptor_;
};

// `pool` (may be null: a fresh scheduler) lends the seed its scheduler. The
// determinism check's second run passes none, so it also runs on a scheduler
// at a new address.
SeedRun RunSeed(const SimBody& body, uint64_t seed, const SimTestOptions& options,
                const std::string& strategy, bool record_trace, size_t perturb_bytes,
                simsched::internal::TestSchedulerPool* pool, SweepReporter& reporter) {
  reporter.Install();
  SeedRun run;
  run.seed = seed;
  // The determinism check's second run shifts the heap, so any decision that
  // depends on addresses (or on hash order of pointers) comes out different.
  std::unique_ptr<char[]> perturbation;
  if (perturb_bytes > 0) perturbation = std::make_unique<char[]>(perturb_bytes);
  SeedContext context(run);
  TestScheduler* running = nullptr;
  properties_internal::SeedPropertyRecorder recorder(
      [&](std::string message, SourceLocation where) {
        std::string task;
        if (const internal::TaskHeader* header = internal::current_task) {
          task = header->metadata.DebugString();
        }
        if (running != nullptr) {
          running->Fail(absl::AbortedError(absl::StrCat(kStoppedByProperty, message)));
        }
        context.Add({false, where.file_name(), static_cast<int>(where.line()), std::move(message),
                     std::move(task), {}});
      });
  simsched::internal::ScopedPropertySink property_sink(&recorder);
  {
    TestSchedulerOptions scheduler_options{.seed = seed,
                                           .randomize_order = options.randomize_order,
                                           .strategy = strategy,
                                           .max_steps = options.max_steps,
                                           .record_trace = record_trace,
                                           .allow_idle_tasks = options.allow_idle_tasks};
    std::shared_ptr<TestScheduler> scheduler =
        pool != nullptr ? pool->Acquire(std::move(scheduler_options))
                        : TestScheduler::Create(std::move(scheduler_options));
    context.set_scheduler(scheduler.get());
    running = scheduler.get();
    sim_test_internal::CrashReporter::BeginSeed(seed, strategy.c_str(), scheduler.get());
    {
      Sim sim(scheduler);
      try {
        body(sim);
      } catch (const std::exception& e) {
        context.Add({true, "", 0, absl::StrCat("uncaught exception from the test body: ", e.what()),
                     "", {}});
      } catch (...) {
        context.Add({true, "", 0, "uncaught exception (not a std::exception) from the test body",
                     "", {}});
      }
      // A run stopped by a violated property was reported by the recorder.
      auto stopped_by_property = [](const absl::Status& status) {
        return std::string(status.message()).rfind(kStoppedByProperty, 0) == 0;
      };
      if (!context.fatal() && options.run_after_body) {
        if (absl::Status status = scheduler->Run();
            !status.ok() && !stopped_by_property(status)) {
          context.Add({true, "", 0, std::string(status.message()), "", {}});
        }
      } else if (absl::Status status = scheduler->status();
                 !status.ok() && !stopped_by_property(status)) {
        context.Add({true, "", 0, std::string(status.message()), "", {}});
      } else if (!context.fatal() && status.ok()) {
        // The body drove the scheduler itself; tasks it left suspended with
        // nothing to wake them are still a deadlock.
        if (absl::Status stuck = scheduler->CheckNoStuckTasks(); !stuck.ok()) {
          context.Add({true, "", 0, std::string(stuck.message()), "", {}});
        }
      }
      run.log = sim.log();
    }
    run.steps = scheduler->step_count();
    run.elapsed = scheduler->Elapsed();
    run.trace_hash = scheduler->TraceHash();
    run.trace = scheduler->trace();
    if (record_trace) {
      run.task_events = scheduler->task_events();
      run.notes = scheduler->trace_notes();
      for (LaneId lane = 0; lane < scheduler->LaneCount(); ++lane) {
        run.lanes.emplace_back(scheduler->LaneName(lane));
      }
    }
    context.set_scheduler(nullptr);
    running = nullptr;
  }  // the scheduler's shutdown runs frame destructors: still intercepted
  run.properties = recorder.results();
  sim_test_internal::CrashReporter::EndSeed();
  return run;
}

using sim_test_internal::JsonEscape;

void AppendToUndeclaredOutput(const char* file, const std::string& line) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::ofstream out(absl::StrCat(dir, "/", file), std::ios::app);
  out << line << "\n";
}

// Prints the sweep's property table and fails the test for a sometimes- or
// reachable-property no seed satisfied (unless the test asked for a warning,
// one seed was replayed, the sweep already failed, or it is one shard of
// several: then //testing:property_report gives the verdict over all shards).
void ReportProperties(const char* test_name, const properties_internal::PropertyTable& table,
                      const SimTestOptions& options, const SweepConfig& config,
                      bool sweep_failed, const std::function<void(const std::string&)>& fail) {
  if (table.empty()) return;
  std::printf("simsched: %s: properties over this sweep:\n%s", test_name,
              table.Format().c_str());
  const std::vector<std::string> unsatisfied = table.Unsatisfied();
  if (unsatisfied.empty()) return;
  std::string names;
  for (const std::string& name : unsatisfied) absl::StrAppend(&names, "\n  \"", name, "\"");
  const char* why_not = config.single_seed.has_value() ? "one seed was replayed"
                        : config.total_shards > 1
                            ? "this is one shard; run //testing:property_report over all "
                              "shards' summary files for the verdict"
                        : sweep_failed ? "the sweep already failed"
                        : options.sometimes_warn_only ? ".sometimes_warn_only is set"
                                                      : nullptr;
  if (why_not != nullptr) {
    std::printf("simsched: %s: warning: no seed satisfied%s\n(not a failure: %s)\n", test_name,
                names.c_str(), why_not);
    return;
  }
  fail(absl::StrCat("simsched: ", test_name,
                    ": no seed of the sweep satisfied these properties (a path the test was "
                    "meant to explore was never taken: more seeds, another strategy, or a "
                    "test that can no longer reach it):",
                    names));
}

}  // namespace

Sim::Sim(std::shared_ptr<TestScheduler> scheduler) : scheduler_(std::move(scheduler)) {}

void Sim::Log(std::string_view message) {
  log_.push_back(absl::StrCat("[step ", scheduler_->step_count(), " ",
                              FormatDuration(scheduler_->Elapsed()), "] ", std::string(message)));
}

void RunSimTest(const char* test_name, const SimBody& body, SimTestOptions options,
                const char* bazel_target_macro, const char* seeds_file_macro,
                SourceLocation where) {
  SweepReporter reporter;  // installed by the first seed
  auto fail = [&](const std::string& message) {
    reporter.Uninstall();  // to gtest itself (the next seed installs it again)
    ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line())) << message;
  };
  absl::StatusOr<SweepConfig> config_or =
      SweepConfigFromEnvironment(options.iterations, [](const char* name) { return std::getenv(name); });
  if (!config_or.ok()) return fail(absl::StrCat("simsched: ", config_or.status().message()));
  const SweepConfig config = *config_or;

  std::string bazel_target = bazel_target_macro;
  if (bazel_target.empty()) {
    if (const char* target = std::getenv("TEST_TARGET")) bazel_target = target;
  }
  // A crash inside a seed names the seed (sim_test_main installs these too).
  sim_test_internal::InstallCrashHandlers();
  const std::string binary_path = BinaryPath(bazel_target);  // for replay lines
  sim_test_internal::CrashReporter::BeginTest(test_name, bazel_target, binary_path);
  // Written to only under `bazel test` (TEST_UNDECLARED_OUTPUTS_DIR).
  const bool write_outputs = EnvironmentValue("TEST_UNDECLARED_OUTPUTS_DIR") != nullptr;

  // The strategy: SIMSCHED_STRATEGY, else the test's, else mix (fifo for
  // randomize_order = false). Each seed runs under its resolved form.
  const std::string strategy_text =
      config.strategy.value_or(!options.strategy.empty() ? options.strategy
                               : options.randomize_order ? "mix"
                                                         : "fifo");
  absl::StatusOr<StrategySpec> spec = ParseStrategy(strategy_text);
  if (!spec.ok()) {
    return fail(absl::StrCat("simsched: the test's .strategy is not valid: ",
                             spec.status().message()));
  }
  // One scheduler serves every seed in turn (see TestSchedulerPool).
  simsched::internal::TestSchedulerPool pool;
  auto strategy_for = [&](uint64_t seed) {
    StrategySpec resolved = ResolveStrategy(*spec, seed);
    if (resolved.is_pct() && resolved.run_length == 0) {
      // PCT's k, measured once, the first time a seed needs it: the median
      // step count of fixed calibration seeds under random (so every shard
      // and every replay gets the same k). Their outcome is not reported.
      RunLengthEstimator estimator;
      for (uint64_t calibration = 0; calibration < kCalibrationSeeds; ++calibration) {
        estimator.Observe(
            RunSeed(body, calibration, options, "random", false, 0, &pool, reporter).steps);
      }
      spec->run_length = estimator.Estimate();
      resolved.run_length = spec->run_length;
    }
    return resolved.ToString();
  };
  properties_internal::PropertyTable properties;

  // Regression seeds first (shard 0 only, so shards together run each seed
  // once), unless one seed is being replayed.
  std::vector<uint64_t> regression;
  if (!config.single_seed.has_value() && config.shard_index == 0) {
    regression = options.regression_seeds;
    std::string seeds_file = options.regression_seeds_file;
    if (const char* env = EnvironmentValue("SIMSCHED_REGRESSION_SEEDS"); seeds_file.empty() && env) {
      seeds_file = env;
    }
    if (seeds_file.empty()) seeds_file = seeds_file_macro;
    if (!seeds_file.empty()) {
      std::vector<std::string> known_tests;
      const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
      for (int s = 0; s < unit.total_test_suite_count(); ++s) {
        const ::testing::TestSuite& suite = *unit.GetTestSuite(s);
        for (int t = 0; t < suite.total_test_count(); ++t) {
          known_tests.push_back(absl::StrCat(suite.name(), ".", suite.GetTestInfo(t)->name()));
        }
      }
      // (RunSimTest may be called for a name gtest does not know.)
      if (std::find(known_tests.begin(), known_tests.end(), test_name) == known_tests.end()) {
        known_tests.push_back(test_name);
      }
      absl::StatusOr<std::vector<uint64_t>> from_file =
          LoadRegressionSeeds(seeds_file, test_name, known_tests);
      if (!from_file.ok()) return fail(absl::StrCat("simsched: ", from_file.status().message()));
      regression.insert(regression.end(), from_file->begin(), from_file->end());
    }
  }
  // Seeds are generated one at a time, never stored: constant memory for any
  // SIMSCHED_ITERATIONS (the summary file lists at most kListedSeeds).
  const uint64_t sweep_count = SweepSeedCount(config);
  const uint64_t total = sweep_count > UINT64_MAX - regression.size()
                             ? UINT64_MAX
                             : regression.size() + sweep_count;
  constexpr size_t kListedSeeds = 10000;

  const auto wall_start = std::chrono::steady_clock::now();  // for the time budget only
  uint64_t ran = 0;
  uint64_t ran_regression = 0;
  uint64_t failed_count = 0;
  uint64_t last_seed = 0;
  std::vector<uint64_t> listed_seeds;
  std::vector<uint64_t> listed_hashes;
  std::vector<uint64_t> listed_failed;
  std::string budget_note;
  ProgressFile progress(test_name, total);
  std::string strategy_text_cache;
  for (uint64_t i = 0; i < total; ++i) {
    if (i > 0) progress.Update(ran, failed_count, /*last=*/false);
    const bool is_regression = i < regression.size();
    const uint64_t seed =
        is_regression ? regression[i] : SweepSeedAt(config, i - regression.size());
    if (config.time_budget.has_value() && ran > 0 &&
        std::chrono::steady_clock::now() - wall_start >= *config.time_budget) {
      budget_note = absl::StrCat("simsched: ", test_name, ": the time budget (SIMSCHED_TIME_BUDGET) ran out after ",
                                 ran, " of ", total, " seeds; the last seed run was ",
                                 last_seed, ", the next would have been ", seed);
      break;
    }
    // Only mix resolves differently per seed; the others are resolved once
    // (after PCT's calibration, if any).
    if (strategy_text_cache.empty() || spec->kind == StrategyKind::kMix) {
      strategy_text_cache = strategy_for(seed);
    }
    const std::string& strategy = strategy_text_cache;
    const bool write_trace = config.trace_file.has_value();
    SeedRun run = RunSeed(body, seed, options, strategy,
                          /*record_trace=*/config.check_determinism || write_trace, 0, &pool,
                          reporter);
    if (write_trace) {
      if (absl::Status written = WriteRunTrace(*config.trace_file, test_name, strategy, run);
          !written.ok()) {
        fail(absl::StrCat("simsched: ", written.message()));
      }
    }
    properties.AddSeed(seed, run.properties);
    ++ran;
    if (is_regression) ++ran_regression;
    last_seed = seed;
    if (listed_seeds.size() < kListedSeeds) {
      listed_seeds.push_back(seed);
      listed_hashes.push_back(run.trace_hash);
    }
    auto note_failed = [&] {
      ++failed_count;
      if (listed_failed.size() < kListedSeeds) listed_failed.push_back(seed);
    };
    // Replay lines and the seed's origin are words for failure reports only.
    auto replay_for = [&] { return Replay(test_name, bazel_target, binary_path, seed, strategy); };

    if (config.check_determinism) {
      // Perturb the heap by a seed-dependent amount for the second run, on a
      // fresh scheduler (not the pooled one: a new address too).
      SeedRun second = RunSeed(body, seed, options, strategy, /*record_trace=*/true,
                               64 * (1 + seed % 97), /*pool=*/nullptr, reporter);
      if (std::optional<std::string> difference = CompareRuns(run, second)) {
        note_failed();
        const ReplayCommands replay = replay_for();
        fail(absl::StrCat("simsched: ", test_name, " is not deterministic on seed ", seed,
                          " (SIMSCHED_CHECK_DETERMINISM ran it twice, shifting the heap "
                          "between runs): ",
                          *difference,
                          "\n  A decision depends on something outside the seed: the wall "
                          "clock, pointer values, hash-set order, a real thread, or state "
                          "left over between seeds.\nreplay this seed (with the check on):\n",
                          replay.bazel.empty()
                              ? ""
                              : absl::StrCat("  ", replay.bazel,
                                             " --test_env=SIMSCHED_CHECK_DETERMINISM=1\n"),
                          "  SIMSCHED_CHECK_DETERMINISM=1 ", replay.binary));
        if (!config.collect_all) break;
        continue;
      }
    }
    if (!run.failed()) continue;

    note_failed();
    const std::string origin =
        is_regression ? std::string("a regression seed")
                      : config.single_seed.has_value()
                            ? std::string("replaying SIMSCHED_SEED")
                            : absl::StrCat("run ", seed - config.start_seed + 1, " of ",
                                           config.iterations, " in the sweep");
    const ReplayCommands replay = replay_for();
    // Passing seeds run without a trace (it costs time); replay this one with
    // the trace on for the report. Same seed, same schedule.
    SeedRun traced = write_trace ? run
                                 : RunSeed(body, seed, options, strategy, /*record_trace=*/true,
                                           0, &pool, reporter);
    fail(DescribeFailedSeed(test_name, run, traced, origin, config, replay, strategy));
    AppendToUndeclaredOutput(
        "simsched_failures.jsonl",
        absl::StrCat("{\"test\": \"", JsonEscape(test_name), "\", \"seed\": ", seed,
                     ", \"step\": ", run.first_failure_step,
                     ", \"virtual_time_ns\": ", run.first_failure_time.count(),
                     ", \"trace_hash\": \"", absl::StrFormat("0x%016x", run.trace_hash),
                     "\", \"strategy\": \"", strategy, "\", \"regression\": ", is_regression ? "true" : "false",
                     ", \"site\": \"", JsonEscape(FailureSite(run.failures.front())),
                     "\", \"message\": \"", JsonEscape(run.failures.front().message), "\"",
                     ", \"replay_bazel\": \"", JsonEscape(replay.bazel),
                     "\", \"replay_binary\": \"", JsonEscape(replay.binary), "\"}"));
    if (!config.collect_all) {
      if (i + 1 < total) {
        std::printf("simsched: %s: stopped at the first failing seed (%llu); "
                    "SIMSCHED_COLLECT_ALL=1 runs the rest\n",
                    test_name, static_cast<unsigned long long>(seed));
      }
      break;
    }
  }

  reporter.Uninstall();  // the seeds are done: what follows reports to gtest
  progress.Update(ran, failed_count, /*last=*/true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!budget_note.empty()) std::printf("%s\n", budget_note.c_str());
  ReportProperties(test_name, properties, options, config, failed_count > 0, fail);
  properties_internal::RecordSweep(
      {.test_file = where.file_name(),
       .warn_only = options.sometimes_warn_only,
       .shard_index = config.shard_index,
       .total_shards = config.total_shards,
       .replayed_one_seed = config.single_seed.has_value()},
      properties, [](const std::string& line) {
        AppendToUndeclaredOutput("simsched_summary.jsonl", line);
      });
  // A replayed seed runs on one shard; the others have nothing to say.
  const bool idle_replay_shard = config.single_seed.has_value() && ran == 0;
  if (options.print_summary && !idle_replay_shard) {
    std::printf("simsched: %s: %llu seeds run (%llu regression), %llu failed, shard %llu of %llu, "
                "%.0f seeds/s, strategy %s%s\n",
                test_name, static_cast<unsigned long long>(ran),
                static_cast<unsigned long long>(ran_regression),
                static_cast<unsigned long long>(failed_count),
                static_cast<unsigned long long>(config.shard_index),
                static_cast<unsigned long long>(config.total_shards),
                seconds > 0 ? static_cast<double>(ran) / seconds : 0.0,
                spec->ToString().c_str(),
                config.check_determinism
                    ? absl::StrCat("; determinism checked (each seed run twice) on ", ran,
                                   " seeds")
                          .c_str()
                    : "");
  }
  if (!write_outputs) return;  // nowhere to write the summary line
  std::string seeds_json, hashes_json, failed_json;
  for (size_t i = 0; i < listed_seeds.size(); ++i) {
    absl::StrAppend(&seeds_json, i ? ", " : "", listed_seeds[i]);
    absl::StrAppend(&hashes_json, i ? ", \"0x" : "\"0x", absl::Hex(listed_hashes[i], absl::kZeroPad16),
                    "\"");
  }
  for (size_t i = 0; i < listed_failed.size(); ++i) absl::StrAppend(&failed_json, i ? ", " : "", listed_failed[i]);
  AppendToUndeclaredOutput(
      "simsched_summary.jsonl",
      absl::StrCat("{\"test\": \"", JsonEscape(test_name), "\", \"shard_index\": ",
                   config.shard_index, ", \"total_shards\": ", config.total_shards,
                   ", \"regression_seeds\": ", regression.size(), ", \"seeds_run\": ", ran,
                   ", \"start_seed\": ", config.start_seed, ", \"iterations\": ", config.iterations,
                   ", \"single_seed\": ", config.single_seed.has_value() ? "true" : "false",
                   ", \"seeds\": [", seeds_json,
                   "], \"trace_hashes\": [", hashes_json, "], \"failed_seeds\": [", failed_json,
                   "], \"seeds_listed_up_to\": ", kListedSeeds,
                   ", \"time_budget_exhausted\": ", budget_note.empty() ? "false" : "true",
                   ", \"strategy\": \"", spec->ToString(), "\", \"properties\": ",
                   properties.ToJson(), "}"));
}

bool CurrentSeedHasFatalFailure() { return current_seed != nullptr && current_seed->fatal(); }

}  // namespace simsched::testing
