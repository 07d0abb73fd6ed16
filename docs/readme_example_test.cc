// The README's "Using the scheduler directly" example, verbatim, so the
// documentation cannot drift from what compiles and passes.

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

simsched::Co<int> Fetch(int key) {
  co_await simsched::Sleep(std::chrono::milliseconds(5));   // virtual time
  co_return key * 2;
}

simsched::Co<int> Sum() {
  simsched::Task<int> a = simsched::Spawn(*simsched::CurrentScheduler(), Fetch(1));
  int b = co_await Fetch(2);                                 // inline child
  co_return co_await a + b;
}

TEST(Example, Sums) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    simsched::TestScheduler scheduler({.seed = seed});
    absl::StatusOr<int> result = scheduler.BlockOn(Sum());
    ASSERT_TRUE(result.ok()) << result.status();   // deadlocks come back as a Status
    EXPECT_EQ(*result, 6) << "replay with seed " << seed;
  }
}
