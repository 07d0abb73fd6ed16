// A small passing sweep whose seeds and trace hashes the harness integration
// test reads back from the undeclared-outputs summary (shards, regression
// seeds, replay of one seed alone vs inside a sweep).

#include "scheduler/scheduler.h"
#include "testing/sim_test.h"

namespace simsched {
namespace {

SIM_TEST(SweepProbe, RecordsSeeds, .iterations = 30) {
  // Some interleaving so that the trace hash depends on the seed.
  for (int i = 0; i < 4; ++i) {
    sim.background().Spawn([]() -> Co<void> {
      co_await Yield();
      co_await SimulateRandomDelay(3);
    }).Detach();
  }
}

}  // namespace
}  // namespace simsched
