// File: testing/sim_test.h
// -----------------------------------------------------------------------------
//
// Simulation tests that read like ordinary GoogleTest. `SIM_TEST(Suite, Name)`
// runs its body once per seed of a sweep, each time with a fresh seeded
// `TestScheduler`; EXPECT/ASSERT work as usual, including inside the
// coroutines the body spawns (use EXPECT_* there: ASSERT_* `return`s, which a
// coroutine cannot). After the body returns, the scheduler runs until no work
// and no timers remain, so spawned tasks get to fail too; tasks still
// suspended then (nothing can wake them) fail the seed as a deadlock, with a
// wait-for report, unless the test allows idle tasks (`.allow_idle_tasks`).
//
// Each seed runs under a scheduling strategy (`.strategy`, default "mix":
// random, PCT and POS chosen per seed; see scheduler/strategy.h).
// When a seed fails, the test fails once with everything needed to act:
// the seed, strategy, step, virtual time and trace hash; each failure with the task it
// happened in; the tail of the trace (SIMSCHED_LOG=full for all of it); the
// test's own `sim.Log()` lines; and a one-line command that replays exactly
// this test and seed, under Bazel and as a plain binary. Passing seeds print
// nothing. Seeds, shards, time budgets, determinism checks and regression
// seeds are controlled by environment variables (testing/sweep_config.h).
//
// Link tests with `//testing:sim_test_main` (the `sim_test` Bazel macro in
// testing/sim_test.bzl does this), which makes Bazel's sharding split seeds
// rather than tests.
//
// This header defines:
//   * `SIM_TEST(Suite, Name, options...)`, `SIM_TEST_F(Fixture, Name, options...)`
//   * `simsched::testing::Sim`              the per-seed context (`sim` in the body)
//   * `simsched::testing::SimTestOptions`   per-test defaults
//   * `simsched::testing::SimFixture`       base class for SIM_TEST_F fixtures
//
// Example:
//
//   SIM_TEST(BankTest, TransfersNeverOverdraw, .iterations = 500) {
//     Bank bank(sim.scheduler(), {.accounts = 3});
//     for (int i = 0; i < 6; ++i) {
//       simsched::Spawn(sim.scheduler(), bank.Transfer(0, 1, 30)).Detach();
//     }
//     ASSERT_TRUE(sim.scheduler().Run().ok());
//     EXPECT_GE(bank.Balance(0), 0) << "overdrawn";
//   }

#ifndef SIMSCHED_TESTING_SIM_TEST_H_
#define SIMSCHED_TESTING_SIM_TEST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "scheduler/test_scheduler.h"

namespace simsched::testing {

// SimTestOptions
//
// Per-test settings; environment variables override `iterations`.
struct SimTestOptions {
  // Seeds per run of the test (SIMSCHED_ITERATIONS overrides).
  uint64_t iterations = 100;
  // Passed to each seed's TestScheduler.
  uint64_t max_steps = 1'000'000;
  bool randomize_order = true;
  // Seeds that always run first, before the sweep (besides those in the
  // regression seed file).
  std::vector<uint64_t> regression_seeds = {};
  // Workspace-relative path of a regression seed file; defaults to the one
  // the `sim_test` macro found next to the test (`<target>.seeds`).
  std::string regression_seeds_file = "";
  // Run the scheduler to completion after the body returns.
  bool run_after_body = true;
  // Let tasks stay suspended forever when the seed ends (servers parked on
  // their queues on purpose). Off: such tasks fail the seed as a deadlock.
  // `sim.scheduler().AllowIdle(task)` allows one task instead.
  bool allow_idle_tasks = false;
  // Print the one-line summary ("N seeds run, ...") when the sweep ends.
  bool print_summary = true;
  // Scheduling strategy (scheduler/strategy.h): "random", "fifo", "pct:3",
  // "pos", "mix". Empty: "mix", or "fifo" when `randomize_order` is false.
  // SIMSCHED_STRATEGY overrides it.
  std::string strategy = "";
  // A SIMSCHED_SOMETIMES/REACHABLE property (sim/properties.h) that no seed
  // of the sweep satisfied fails the test; with this set, it only warns.
  bool sometimes_warn_only = false;
};

// Sim
//
// What a simulation test body works with: one seed's scheduler, executors
// and randomness. Made fresh for every seed.
class Sim {
 public:
  explicit Sim(std::shared_ptr<TestScheduler> scheduler);

  uint64_t seed() const { return scheduler_->seed(); }
  TestScheduler& scheduler() { return *scheduler_; }
  // The same scheduler, for APIs that share ownership of it, e.g.
  // `CloudSimulatedScheduler::Create(sim.scheduler_ptr())`.
  const std::shared_ptr<TestScheduler>& scheduler_ptr() const { return scheduler_; }
  BackgroundExecutor background() const { return BackgroundExecutor(scheduler_); }
  ForegroundExecutor foreground() const { return ForegroundExecutor(scheduler_); }
  // The seed's test-data stream (see TestScheduler::rng()).
  Rng& rng() { return scheduler_->rng(); }

  // Log()
  //
  // Records a line (prefixed with the step and virtual time) that is shown
  // only if this seed fails.
  void Log(std::string_view message);
  const std::vector<std::string>& log() const { return log_; }

  // Fail()
  //
  // Fails this seed with `message`, from the body or any task; the run stops
  // at once (see TestScheduler::Fail). No exception needed.
  void Fail(std::string_view message, SourceLocation location = SourceLocation::current()) {
    scheduler_->Fail(message, location);
  }

 private:
  std::shared_ptr<TestScheduler> scheduler_;
  std::vector<std::string> log_;
};

// SimFixture
//
// Base class for SIM_TEST_F fixtures. A new fixture object is made for every
// seed: SetUp(), the body, TearDown(), destruction. `sim()` is available in
// all of them.
class SimFixture {
 public:
  virtual ~SimFixture() = default;
  virtual void SetUp() {}
  virtual void TearDown() {}
  Sim& sim() { return *sim_; }

 private:
  friend class SimTestRunner;
  Sim* sim_ = nullptr;
};

// One seed's body, given the Sim.
using SimBody = std::function<void(Sim&)>;

// RunSimTest()
//
// The engine behind SIM_TEST: runs `body` over the configured seeds and
// reports failures through GoogleTest. `test_name` is "Suite.Name".
// `bazel_target` and `seeds_file` come from the sim_test macro (may be empty).
void RunSimTest(const char* test_name, const SimBody& body, SimTestOptions options,
                const char* bazel_target, const char* seeds_file, SourceLocation where);

}  // namespace simsched::testing

// The sim_test Bazel macro compiles these into each test; plain cc_tests
// fall back to what the environment says.
#ifndef SIMSCHED_TEST_TARGET
#define SIMSCHED_TEST_TARGET ""
#endif
#ifndef SIMSCHED_SEEDS_FILE
#define SIMSCHED_SEEDS_FILE ""
#endif

#define SIMSCHED_SIM_CLASS_(suite, name) suite##_##name##_SimBody

// SIM_TEST(Suite, Name, options...)
//
// Defines a simulation test. `sim` (a simsched::testing::Sim&) is in scope in
// the body. Optional designated initializers set SimTestOptions, e.g.
// `SIM_TEST(Chat, Delivers, .iterations = 1000)`.
#define SIM_TEST(suite, name, ...)                                                    \
  struct SIMSCHED_SIM_CLASS_(suite, name) {                                           \
    static void Body(::simsched::testing::Sim& sim);                                  \
  };                                                                                  \
  TEST(suite, name) {                                                                 \
    ::simsched::testing::RunSimTest(                                                  \
        #suite "." #name, &SIMSCHED_SIM_CLASS_(suite, name)::Body,                    \
        ::simsched::testing::SimTestOptions{__VA_ARGS__}, SIMSCHED_TEST_TARGET,       \
        SIMSCHED_SEEDS_FILE, ::simsched::SourceLocation::current());                  \
  }                                                                                   \
  void SIMSCHED_SIM_CLASS_(suite, name)::Body([[maybe_unused]] ::simsched::testing::Sim& sim)

// SIM_TEST_F(Fixture, Name, options...)
//
// As SIM_TEST, with `Fixture` (a subclass of simsched::testing::SimFixture)
// made fresh for each seed; the body is a member function of a subclass of
// it, so the fixture's members and `sim()` are in scope.
#define SIM_TEST_F(fixture, name, ...)                                                \
  class SIMSCHED_SIM_CLASS_(fixture, name) : public fixture {                         \
   public:                                                                            \
    void Body();                                                                      \
  };                                                                                  \
  TEST(fixture, name) {                                                               \
    ::simsched::testing::RunSimTest(                                                  \
        #fixture "." #name,                                                           \
        [](::simsched::testing::Sim& sim) {                                           \
          ::simsched::testing::SimTestRunner::RunFixture<SIMSCHED_SIM_CLASS_(fixture, \
                                                                             name)>(  \
              sim);                                                                   \
        },                                                                            \
        ::simsched::testing::SimTestOptions{__VA_ARGS__}, SIMSCHED_TEST_TARGET,       \
        SIMSCHED_SEEDS_FILE, ::simsched::SourceLocation::current());                  \
  }                                                                                   \
  void SIMSCHED_SIM_CLASS_(fixture, name)::Body()

namespace simsched::testing {

// True once an ASSERT_* (or other fatal failure) fired in the current seed.
bool CurrentSeedHasFatalFailure();

// For SIM_TEST_F: runs one seed of a fixture test.
class SimTestRunner {
 public:
  template <typename Test>
  static void RunFixture(Sim& sim) {
    Test test;
    test.sim_ = &sim;
    test.SetUp();
    if (!CurrentSeedHasFatalFailure()) test.Body();
    test.TearDown();
  }
};

}  // namespace simsched::testing

#endif  // SIMSCHED_TESTING_SIM_TEST_H_
