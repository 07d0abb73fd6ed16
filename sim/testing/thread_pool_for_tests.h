// File: sim/testing/thread_pool_for_tests.h
// -----------------------------------------------------------------------------
//
// `ThreadPoolForTests` is a deliberately small multi-threaded `Scheduler`:
// a FIFO queue drained by N worker threads, real time, timers checked by the
// workers. It exists so that sim/'s primitives can be tested under real
// contention (and ThreadSanitizer) before the production thread pool lands.
// It is not deterministic and not for production: no work stealing, no
// foreground thread (foreground and labeled work run on the workers), no
// parking; an exception escaping a detached task is logged, as production
// schedulers do.
//
// This header defines:
//   * `simsched::testing::ThreadPoolForTests`
//
// Example:
//
//   simsched::testing::ThreadPoolForTests pool(/*threads=*/4);
//   simsched::Task<int> task = simsched::Spawn(pool, Work());
//   absl::StatusOr<int> result = simsched::BlockOn(pool, task);

#ifndef SIMSCHED_SIM_TESTING_THREAD_POOL_FOR_TESTS_H_
#define SIMSCHED_SIM_TESTING_THREAD_POOL_FOR_TESTS_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/scheduler.h"

namespace simsched::testing {

// ThreadPoolForTests
//
// See the file comment. Thread-safe.
class ThreadPoolForTests final : public Scheduler {
 public:
  // Starts `threads` workers (at least one).
  explicit ThreadPoolForTests(int threads);
  // Stops the workers, then cancels every task still queued or suspended.
  ~ThreadPoolForTests() override;

  ThreadPoolForTests(const ThreadPoolForTests&) = delete;
  ThreadPoolForTests& operator=(const ThreadPoolForTests&) = delete;

  void Schedule(Runnable runnable) override;
  void ScheduleLabeled(Runnable runnable, TaskLabel label) override;
  void ScheduleForeground(Runnable runnable) override;
  bool IsMainThread() const override { return false; }
  Instant Now() const override { return Clock::now(); }
  bool Park(std::optional<Duration> timeout) override;
  Unparker GetUnparker() override { return Unparker(); }
  TimerId StartTimer(Instant deadline, Waker waker) override;
  void CancelTimer(TimerId timer) override;
  bool IsTaskRunning(TaskId id) const override;
  // Waits (up to a minute of real time) for `task` to finish.
  absl::Status BlockOnTask(internal::TaskHeader& task) override;
  void OnTaskSpawned(internal::TaskHeader& task) override;
  void OnTaskFinished(internal::TaskHeader& task) override;
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override;

 private:
  struct Timer {
    Instant deadline;
    Waker waker;
  };

  void WorkerLoop();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;      // queue or timers changed, or stopping
  std::condition_variable finished_cv_;  // a task finished
  std::deque<Runnable> queue_;
  std::map<uint64_t, Timer> timers_;  // by id
  std::map<uint64_t, internal::TaskHeader*> live_;
  uint64_t next_task_id_ = 1;
  uint64_t next_timer_id_ = 1;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace simsched::testing

#endif  // SIMSCHED_SIM_TESTING_THREAD_POOL_FOR_TESTS_H_
