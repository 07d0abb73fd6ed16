// Simulation tests that crash on purpose on seed 3, inside a task, after a
// few steps: run by //testing:harness_integration_test to check that the
// crash names its seed and prints the replay commands.

#include <cstdint>
#include <cstdlib>
#include <exception>

#include "scheduler/scheduler.h"
#include "testing/sim_test.h"

namespace {

// An unmapped, non-null address: a real segfault in every build (UBSan
// would intercept a null store before it faults and exit on its own).
int* volatile bad_pointer = reinterpret_cast<int*>(uintptr_t{64});

simsched::Co<void> CrashAfterAFewSteps(uint64_t seed, bool segfault) {
  for (int i = 0; i < 3; ++i) co_await simsched::Yield();
  if (seed != 3) co_return;
  if (segfault) {
    *bad_pointer = 42;
  } else {
    std::terminate();
  }
}

SIM_TEST(CrashTest, SegfaultOnSeed3, .iterations = 10, .strategy = "random") {
  simsched::Spawn(sim.scheduler(), CrashAfterAFewSteps(sim.seed(), true)).Detach();
}

SIM_TEST(CrashTest, TerminateOnSeed3, .iterations = 10, .strategy = "random") {
  simsched::Spawn(sim.scheduler(), CrashAfterAFewSteps(sim.seed(), false)).Detach();
}

}  // namespace
