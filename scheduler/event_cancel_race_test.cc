// Event::Set/NotifyOne racing with the cancellation of a waiter on another
// thread: the regression test for the defect where Set unlinked an awaiter
// and only then moved its waker out of the (by then possibly freed) frame.
// Meaningful under --config=tsan and --config=asan; in a plain build a lost
// race shows as a crash or a hang.

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

Co<void> WaitOn(Event& event) { co_await event.Wait(); }

// 2000, or SIMSCHED_RACE_ITERATIONS (empty = unset; a bad value fails the test).
int Iterations() {
  absl::StatusOr<uint64_t> n = ::simsched::testing::EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 2000);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? static_cast<int>(*n) : 0;
}

// Starts `release` on another thread at (nearly) the same moment as the
// cancellation on this one, with a varying head start so that every
// interleaving of the two gets its turn over the loop.
template <typename Release>
void RaceCancellationWith(Release release) {
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 1});
  for (int i = 0; i < Iterations(); ++i) {
    auto event = std::make_unique<Event>("raced");
    Task<void> task = Spawn(*pool, WaitOn(*event));
    while (event->WaiterCount() == 0) std::this_thread::yield();
    std::atomic<int> ready{0};
    std::thread releaser([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      release(*event);
    });
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    for (int k = 0, n = i % 40; k < n; ++k) std::atomic_signal_fence(std::memory_order_seq_cst);
    task = Task<void>();  // cancels, concurrently with the release
    releaser.join();
    EXPECT_EQ(event->WaiterCount(), 0u);
  }
}

TEST(EventCancelRaceTest, SetRacingCancellationOfTheWaiter) {
  RaceCancellationWith([](Event& event) { event.Set(); });
}

TEST(EventCancelRaceTest, NotifyOneRacingCancellationOfTheWaiter) {
  RaceCancellationWith([](Event& event) { event.NotifyOne(); });
}

TEST(EventCancelRaceTest, SetBeforeCancellationLeavesNothingBehind) {
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 1});
  for (int i = 0; i < 200; ++i) {
    auto event = std::make_unique<Event>("serial");
    Task<void> task = Spawn(*pool, WaitOn(*event));
    while (event->WaiterCount() == 0) std::this_thread::yield();
    event->Set();
    task = Task<void>();
    EXPECT_EQ(event->WaiterCount(), 0u);
  }
}

}  // namespace
}  // namespace simsched
