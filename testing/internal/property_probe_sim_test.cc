// Sweeps with properties for //testing:strategy_integration_test: one
// sometimes-property only seed 7 satisfies (so with three shards only shard
// 1 sees it hold), one that no seed satisfies, a reachable-property only
// seed 7 reaches, and one no seed reaches (so run alone, unsharded, this
// program fails naming it).

#include "scheduler/scheduler.h"
#include "sim/properties.h"
#include "testing/sim_test.h"

namespace simsched {
namespace {

SIM_TEST(PropertyProbe, Tallies, .iterations = 12, .sometimes_warn_only = true) {
  const uint64_t seed = sim.seed();
  Spawn(sim.scheduler(), [seed]() -> Co<void> {
    co_await Yield();
    SIMSCHED_SOMETIMES(seed == 7, "only seed 7");
    SIMSCHED_SOMETIMES(seed > 1000, "no seed");
    SIMSCHED_ALWAYS(seed < 1000, "small seeds");
  }).Detach();
}

SIM_TEST(PropertyProbe, Reaches, .iterations = 12) {
  const uint64_t seed = sim.seed();
  Spawn(sim.scheduler(), [seed]() -> Co<void> {
    co_await Yield();
    if (seed == 7) SIMSCHED_REACHABLE("reached only by seed 7");
    if (seed > 1000) SIMSCHED_REACHABLE("never reached");
  }).Detach();
}

}  // namespace
}  // namespace simsched
