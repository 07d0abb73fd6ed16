// The production build of SIMSCHED_BUGGIFY: with SIMSCHED_DISABLE_BUGGIFY
// defined it is the literal `false`, even inside a simulation, and the code
// behind it compiles away.

#define SIMSCHED_DISABLE_BUGGIFY
#include "sim/buggify.h"

#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "sim/world.h"

namespace simsched {
namespace {

// A constant expression: nothing is evaluated at run time.
static_assert(!SIMSCHED_BUGGIFY("compiled.away"));

TEST(BuggifyDisabledTest, FalseEvenInsideASimulationThatFiresEverything) {
  TestScheduler scheduler({.seed = 1});
  World world(scheduler, {.buggify_enable_probability = 1.0, .buggify_fire_probability = 1.0});
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(SIMSCHED_BUGGIFY("disabled"));
  EXPECT_TRUE(world.FiredBuggifyPoints().empty());
  EXPECT_EQ(world.BuggifyReport(), "");
}

}  // namespace
}  // namespace simsched
