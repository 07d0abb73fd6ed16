// ThreadPoolScheduler: BlockOn and the main-thread loop (Run, RunUntil, Stop).

#include "scheduler/thread_pool_scheduler.h"

#include <mutex>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/pool_parts.h"

namespace simsched {

using internal::PoolBlockWaiter;
using internal::PoolIdBlock;
using internal::PoolWorker;
using internal::TaskHeader;

// -----------------------------------------------------------------------------
// BlockOn and the main-thread loop
// -----------------------------------------------------------------------------

absl::Status ThreadPoolScheduler::CheckCanDrain(const char* operation) const {
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        operation, " was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of blocking its thread"));
  }
  if (!IsMainThread()) {
    return absl::FailedPreconditionError(absl::StrCat(
        operation,
        " must be called on the scheduler's main thread (the thread that constructed it); "
        "other threads may BlockOn a task, which waits without running foreground work"));
  }
  return absl::OkStatus();
}

absl::Status ThreadPoolScheduler::BlockOnTask(TaskHeader& task) {
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of blocking a worker thread"));
  }
  if (!Runs(task)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(),
        "): the task belongs to another scheduler; call it on the scheduler (or a decorator "
        "of it) the task was spawned on"));
  }
  if (IsMainThread()) {
    return DrainMainLoop(LoopEnd::kBlockOn, [] { return false; }, std::nullopt, &task);
  }
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (shutting_down_) {
      return task.finished() ? absl::OkStatus()
                             : absl::AbortedError("BlockOn: the scheduler is being destroyed");
    }
    ++active_blockers_;
  }
  absl::Status error;
  if (std::shared_ptr<PoolBlockWaiter> waiter = RegisterBlockWaiter(task, false, error)) {
    // Shutdown cancels every task, so this wait always ends.
    std::unique_lock<std::mutex> lock(waiter->mu);
    waiter->cv.wait(lock, [&] { return waiter->done.load(std::memory_order_acquire); });
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  if (--active_blockers_ == 0 && shutting_down_) callers_cv_.notify_all();
  return error;
}

absl::Status ThreadPoolScheduler::Run() {
  if (absl::Status status = CheckCanDrain("Run()"); !status.ok()) return status;
  return DrainMainLoop(LoopEnd::kStop, [] { return false; }, std::nullopt, nullptr);
}

absl::Status ThreadPoolScheduler::RunUntil(absl::FunctionRef<bool()> done) {
  if (absl::Status status = CheckCanDrain("RunUntil()"); !status.ok()) return status;
  return DrainMainLoop(LoopEnd::kTaskOrPredicate, done, options_.predicate_recheck_interval,
                       nullptr);
}

absl::Status ThreadPoolScheduler::RunUntilTask(TaskHeader& task) {
  if (absl::Status status = CheckCanDrain("RunUntil(task)"); !status.ok()) return status;
  if (!Runs(task)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RunUntil(", task.metadata.DebugString(),
        "): the task belongs to another scheduler; call it on the scheduler (or a decorator "
        "of it) the task was spawned on"));
  }
  return DrainMainLoop(LoopEnd::kTaskOrPredicate, [] { return false; }, std::nullopt, &task);
}

absl::Status ThreadPoolScheduler::DrainMainLoop(LoopEnd end, absl::FunctionRef<bool()> done,
                                                std::optional<Duration> recheck_interval,
                                                TaskHeader* waited_task) {
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (shutting_down_) return absl::AbortedError("the scheduler is being destroyed");
    ++active_loops_;
  }
  // From here until active_loops_ drops, a destruction on another thread
  // waits for this loop, so the scheduler may be used freely.
  absl::Status status;
  std::shared_ptr<PoolBlockWaiter> waiter;
  if (waited_task != nullptr) {
    waiter = RegisterBlockWaiter(*waited_task, /*main_loop=*/true, status);
  }
  const ThreadPoolScheduler* const previous_loop = std::exchange(internal::tls_loop_of, this);
  // A waited task that already finished (no waiter) ends the loop at once.
  bool finished = waited_task != nullptr && waiter == nullptr;
  while (!finished) {
    if (waiter != nullptr ? waiter->done.load(std::memory_order_acquire)
                          : end != LoopEnd::kStop && done()) {
      break;
    }
    TaskHeader* next = nullptr;
    {
      std::unique_lock<std::mutex> lock(main_mu_);
      for (;;) {
        if (shutting_down_) {
          status = absl::AbortedError("the scheduler is being destroyed");
          finished = true;
          break;
        }
        if (end != LoopEnd::kBlockOn && stop_requested_) {
          if (end == LoopEnd::kTaskOrPredicate) {
            status = absl::CancelledError("RunUntil: Stop() was called before the condition held");
          }
          finished = true;
          break;
        }
        if (!main_queue_.empty()) {
          next = main_queue_.pop_front();
          break;
        }
        if (main_poked_) {  // a BlockOn/RunUntil task finished: re-check
          main_poked_ = false;
          break;
        }
        main_waiting_ = true;
        if (recheck_interval.has_value()) {
          main_cv_.wait_for(lock, *recheck_interval);
          main_waiting_ = false;
          break;  // re-check the predicate
        }
        main_cv_.wait(lock);
        main_waiting_ = false;
      }
    }
    if (next != nullptr) RunTask(next);
  }
  internal::tls_loop_of = previous_loop;
  if (waiter != nullptr && !waiter->done.load(std::memory_order_acquire)) {
    UnregisterBlockWaiter(*waited_task);  // left early (stop, shutdown)
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  // Notified under the lock: a destructor waiting for this cannot free the
  // scheduler before the lock is released, and nothing is touched after.
  if (--active_loops_ == 0 && shutting_down_) callers_cv_.notify_all();
  return status;
}

void ThreadPoolScheduler::Stop() {
  std::lock_guard<std::mutex> lock(main_mu_);
  stop_requested_ = true;
  if (main_waiting_) main_cv_.notify_one();
}

bool ThreadPoolScheduler::IsStopped() const {
  std::lock_guard<std::mutex> lock(main_mu_);
  return stop_requested_;
}

}  // namespace simsched
