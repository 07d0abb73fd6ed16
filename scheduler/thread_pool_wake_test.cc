// Lost wake-ups in the ThreadPoolScheduler: a plain thread spawns and blocks
// on tasks one after another while workers go idle and wake between them. A
// lost wake-up shows as a BlockOn that never returns (the test's timeout).

#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

TEST(ThreadPoolWakeTest, SpawnAndBlockOnFromAPlainThreadNeverStalls) {
  absl::StatusOr<uint64_t> iterations_or =
      ::simsched::testing::EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 20000);
  ASSERT_TRUE(iterations_or.ok()) << iterations_or.status();
  const int iterations = static_cast<int>(*iterations_or);
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 2});
  int64_t sum = 0;
  std::thread client([&] {
    for (int i = 0; i < iterations; ++i) {
      Task<int> task = Spawn(*pool, [i]() -> Co<int> {
        if (i % 3 == 0) co_await Yield();
        co_return i;
      });
      absl::StatusOr<int> result = BlockOn(*pool, task);
      ASSERT_TRUE(result.ok()) << result.status();
      sum += *result;
    }
  });
  client.join();
  EXPECT_EQ(sum, int64_t{iterations} * (iterations - 1) / 2);
}

}  // namespace
}  // namespace simsched
