// The bundled example as simulation tests: the main job (`tools/simctl sweep`)
// runs this sweep. The buggy transfer fails on some seeds and the report says
// how to replay the failing seed; the fixed transfer passes the same sweep.

#include "testing/examples/bank.h"
#include "testing/sim_test.h"

namespace simsched::examples {
namespace {

SIM_TEST(BankTest, TransfersNeverOverdraw, .iterations = 300) {
  Bank bank(sim.scheduler(), {.accounts = 3, .initial_balance = 100, .fixed = false});
  absl::Status status = RunBankScenario(sim.scheduler(), bank, /*transfers=*/6);
  EXPECT_TRUE(status.ok()) << status.message();
}

SIM_TEST(BankTest, FixedTransfersNeverOverdraw, .iterations = 300) {
  Bank bank(sim.scheduler(), {.accounts = 3, .initial_balance = 100, .fixed = true});
  absl::Status status = RunBankScenario(sim.scheduler(), bank, /*transfers=*/6);
  EXPECT_TRUE(status.ok()) << status.message();
}

}  // namespace
}  // namespace simsched::examples
