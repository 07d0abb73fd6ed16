// Sweeps for tools/simctl's own tests (//tools:simctl_test): one test that
// passes with a sometimes-property, and two planted bugs that fail on known
// seeds with messages that carry seed-dependent numbers (so the fuzz
// corpus's signatures must normalize them away).

#include "scheduler/scheduler.h"
#include "sim/properties.h"
#include "testing/sim_test.h"

namespace simsched {
namespace {

SIM_TEST(SimctlProbe, Passes, .iterations = 40) {
  const uint64_t seed = sim.seed();
  for (int i = 0; i < 3; ++i) {
    sim.background().Spawn([seed]() -> Co<void> {
      co_await Yield();
      SIMSCHED_SOMETIMES(seed % 5 == 0, "a fifth of the seeds");
    }).Detach();
  }
}

// Fails on every seed ending in 3.
SIM_TEST(SimctlProbe, LostUpdate, .iterations = 40) {
  const uint64_t seed = sim.seed();
  Spawn(sim.scheduler(), [seed]() -> Co<void> {
    co_await Yield();
    EXPECT_NE(seed % 10, 3u) << "lost update: counter is " << 1000 + seed << ", expected "
                             << 1001 + seed;
  }).Detach();
}

// Fails on seeds 11, 36, 61, ...: a second, rarer bug at another site.
SIM_TEST(SimctlProbe, RareCrashRecovery, .iterations = 40) {
  const uint64_t seed = sim.seed();
  Spawn(sim.scheduler(), [seed]() -> Co<void> {
    co_await Yield();
    EXPECT_NE(seed % 25, 11u) << "recovery lost entry " << seed * 7;
  }).Detach();
}

}  // namespace
}  // namespace simsched
