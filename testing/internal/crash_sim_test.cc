// Simulation tests that crash on purpose on seed 3, inside a task, after a
// few steps: run by //testing:harness_integration_test to check that the
// crash names its seed and prints the replay commands.

#include <cstdlib>
#include <exception>

#include "scheduler/scheduler.h"
#include "testing/sim_test.h"

namespace {

// The compiler must not see through the null store.
int* volatile null_pointer = nullptr;

simsched::Co<void> CrashAfterAFewSteps(uint64_t seed, bool segfault) {
  for (int i = 0; i < 3; ++i) co_await simsched::Yield();
  if (seed != 3) co_return;
  if (segfault) {
    *null_pointer = 42;
  } else {
    std::terminate();
  }
}

SIM_TEST(CrashTest, SegfaultOnSeed3, .iterations = 10) {
  simsched::Spawn(sim.scheduler(), CrashAfterAFewSteps(sim.seed(), true)).Detach();
}

SIM_TEST(CrashTest, TerminateOnSeed3, .iterations = 10) {
  simsched::Spawn(sim.scheduler(), CrashAfterAFewSteps(sim.seed(), false)).Detach();
}

}  // namespace
