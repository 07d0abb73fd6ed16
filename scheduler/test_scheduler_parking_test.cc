// With `allow_parking`, wakes from real threads are admitted, so the task
// state of a TestScheduler can no longer be updated with single-thread
// load-then-store sequences. Regression tests for the defect where those
// wakes took the confined paths and were lost (a false deadlock, a leak, a
// destructor that never returned).

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/waker.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

TEST(TestSchedulerParkingTest, ThreadConfinedOnlyWithoutParking) {
  EXPECT_TRUE(TestScheduler({.seed = 1}).IsThreadConfined());
  EXPECT_FALSE(TestScheduler({.seed = 1, .allow_parking = true}).IsThreadConfined());
}

// Hands the task's waker to a real thread, which wakes it after a short,
// varying delay: every point of the owner's poll epilogue gets hit.
class ForeignWaker {
 public:
  ForeignWaker()
      : thread_([this] {
          uint64_t x = 88172645463325252ULL;
          while (!stop_.load(std::memory_order_relaxed)) {
            Waker* waker = slot_.exchange(nullptr, std::memory_order_acquire);
            if (waker == nullptr) continue;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (uint64_t i = 0, n = x % 9; i < n; ++i) {
              std::atomic_signal_fence(std::memory_order_seq_cst);
            }
            waker->Wake();
            delete waker;
          }
        }) {}
  ~ForeignWaker() {
    stop_.store(true);
    thread_.join();
    delete slot_.exchange(nullptr);
  }

  struct HandOff {
    ForeignWaker* to;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) {
      DescribeWait("ForeignWaker::HandOff");
      to->slot_.store(new Waker(CurrentWaker()), std::memory_order_release);
    }
    void await_resume() const noexcept {}
  };
  HandOff Wait() { return HandOff{this}; }

 private:
  std::atomic<Waker*> slot_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Co<void> Loop(ForeignWaker& waker, int n, int* done) {
  for (int i = 0; i < n; ++i) {
    co_await waker.Wait();
    ++*done;
  }
}

TEST(TestSchedulerParkingTest, NoWakeFromAnotherThreadIsLost) {
  absl::StatusOr<uint64_t> iterations_or =
      ::simsched::testing::EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 20000);
  ASSERT_TRUE(iterations_or.ok()) << iterations_or.status();
  const int iterations = static_cast<int>(*iterations_or);
  int done = 0;
  absl::Status status;
  {
    ForeignWaker waker;
    TestScheduler scheduler({.seed = 1, .max_steps = 0, .allow_parking = true,
                             .park_timeout = std::chrono::seconds(30)});
    status = scheduler.BlockOn(Loop(waker, iterations, &done));
  }
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(done, iterations);
}

}  // namespace
}  // namespace simsched
