// Test-only: helpers the ThreadPoolScheduler's tests share (waiting for a
// condition with a timeout, frames that count their destruction, awaitables
// that suspend without or with a waker handed out, a pool of N workers).
//
// Example:
//
//   auto pool = MakePool(4);
//   std::atomic<int> gone{0};
//   ... spawn a task holding a FrameGuard(&gone) ...
//   ASSERT_TRUE(WaitFor([&] { return gone.load() == 1; }));

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_POOL_TEST_UTIL_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_POOL_TEST_UTIL_H_

#include <atomic>
#include <chrono>
#include <coroutine>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/waker.h"

namespace simsched::internal {

// Polls `condition` until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F condition, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Counts its destruction: put one in a coroutine frame to see when the frame
// is freed.
struct FrameGuard {
  explicit FrameGuard(std::atomic<int>* counter) : counter(counter) {}
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
  ~FrameGuard() { counter->fetch_add(1); }
  std::atomic<int>* counter;
};

// Suspends the task without arranging any wake-up: only a wake already
// delivered (or delivered later through a waker taken earlier) resumes it.
struct SuspendOnce {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) { DescribeWait("SuspendOnce"); }
  void await_resume() const noexcept {}
};

// A waker handed from a task to other threads.
class WakerSlot {
 public:
  void Set(Waker waker) {
    std::lock_guard<std::mutex> lock(mu_);
    waker_ = std::move(waker);
  }
  Waker Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waker_;
  }

 private:
  mutable std::mutex mu_;
  Waker waker_;
};

// Hands the current waker to `out` and suspends.
struct ParkWaker {
  WakerSlot* out;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) { out->Set(CurrentWaker()); }
  void await_resume() const noexcept {}
};
std::shared_ptr<ThreadPoolScheduler> MakePool(int workers = 2) {
  return ThreadPoolScheduler::Create({.worker_threads = workers});
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_POOL_TEST_UTIL_H_
