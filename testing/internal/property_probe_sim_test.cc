// A sweep with properties for //testing:strategy_integration_test: one
// sometimes-property only seed 7 satisfies (so with three shards only shard
// 1 sees it hold) and one that no seed satisfies.

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

}  // namespace
}  // namespace simsched
