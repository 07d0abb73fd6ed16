// The fixed primary-backup store keeps every acknowledged write through
// partitions, crashes and failover (docs/simulated-world.md).

#include "sim/examples/kv_store.h"
#include "testing/sim_test.h"

namespace simsched::examples {
namespace {

SIM_TEST(KvStoreSimTest, FixedVariantKeepsEveryAcknowledgedWrite, .iterations = 300) {
  KvResult result = RunKvScenario(
      sim.scheduler(),
      {.wait_for_backup = true, .log = [&](std::string_view line) { sim.Log(line); }});
  EXPECT_EQ(result.Problem(), "") << result.report;
  EXPECT_GT(result.acknowledged, 0);
}

}  // namespace
}  // namespace simsched::examples
