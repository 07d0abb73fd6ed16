// The buggy primary-backup store under the harness: expected to FAIL with
// "acknowledged write lost" and a replay command (docs/simulated-world.md).

#include "sim/examples/kv_store.h"
#include "testing/sim_test.h"

namespace simsched::examples {
namespace {

SIM_TEST(KvStoreBuggySimTest, AcknowledgedWritesSurvive, .iterations = 300) {
  KvResult result = RunKvScenario(
      sim.scheduler(),
      {.wait_for_backup = false, .log = [&](std::string_view line) { sim.Log(line); }});
  EXPECT_EQ(result.Problem(), "") << result.report;
}

}  // namespace
}  // namespace simsched::examples
