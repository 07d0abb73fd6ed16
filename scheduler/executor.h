// File: scheduler/executor.h
// -----------------------------------------------------------------------------
//
// Executors are the handles application code keeps: a `BackgroundExecutor`
// spawns work that may run on any thread, a `ForegroundExecutor` spawns work
// that runs on the main thread. Both wrap a `std::shared_ptr<Scheduler>`, so
// the same application code runs on the production pool and, in tests, on a
// `TestScheduler`.
//
// This header defines:
//   * `simsched::BackgroundExecutor`
//   * `simsched::ForegroundExecutor`
//
// Example:
//
//   class SyncService {
//    public:
//     SyncService(simsched::BackgroundExecutor background,
//                 simsched::ForegroundExecutor foreground);
//     void Start() {
//       background_.SpawnLabeled(kGc, CollectGarbage()).Detach();
//       foreground_.Spawn(RefreshUi()).Detach();
//     }
//    ...
//   };
//
//   // In a test:
//   auto scheduler = simsched::TestScheduler::Create({.seed = seed});
//   SyncService service(simsched::BackgroundExecutor(scheduler),
//                       simsched::ForegroundExecutor(scheduler));

#ifndef SIMSCHED_SCHEDULER_EXECUTOR_H_
#define SIMSCHED_SCHEDULER_EXECUTOR_H_

#include <memory>
#include <string_view>
#include "scheduler/source_location.h"
#include <utility>

#include "scheduler/scheduler.h"

namespace simsched {

// BackgroundExecutor
//
// Spawns background tasks on a scheduler. Cheap to copy.
class BackgroundExecutor {
 public:
  explicit BackgroundExecutor(std::shared_ptr<Scheduler> scheduler)
      : scheduler_(std::move(scheduler)) {}

  // Spawn() / SpawnLabeled(): see the free functions in scheduler.h.
  template <typename C>
  auto Spawn(C&& co, SourceLocation location = SourceLocation::current()) const {
    return simsched::Spawn(*scheduler_, std::forward<C>(co), location);
  }
  template <typename C>
  auto SpawnLabeled(TaskLabel label, C&& co,
                    SourceLocation location = SourceLocation::current()) const {
    return simsched::SpawnLabeled(*scheduler_, std::move(label), std::forward<C>(co), location);
  }
  template <size_t N, typename C>
  auto SpawnLabeled(const char (&label)[N], C&& co,
                    SourceLocation location = SourceLocation::current()) const {
    return SpawnLabeled(TaskLabel(label), std::forward<C>(co), location);
  }

  // Timer()
  //
  // An awaitable that completes after `duration` of the scheduler's time.
  SleepAwaiter Timer(Duration duration,
                     SourceLocation location = SourceLocation::current()) const {
    return Sleep(duration, location);
  }

  // Deprioritize()
  //
  // Under a TestScheduler (directly or through a decorator such as the
  // session layer), tasks with `label` run only when nothing else can. On a
  // production scheduler this does nothing.
  void Deprioritize(TaskLabel label) const { scheduler_->Deprioritize(std::move(label)); }

  Instant Now() const { return scheduler_->Now(); }
  const std::shared_ptr<Scheduler>& scheduler() const { return scheduler_; }

 private:
  std::shared_ptr<Scheduler> scheduler_;
};

// ForegroundExecutor
//
// Spawns tasks whose every poll runs on the main thread. Cheap to copy.
//
// Under a TestScheduler an executor may own a *lane*: a simulated main thread
// of its own (one per simulated client), FIFO within itself and interleaved
// with other lanes by the seed. Production schedulers have one main thread
// and ignore lanes.
class ForegroundExecutor {
 public:
  // An executor for `scheduler`'s main thread (lane 0).
  explicit ForegroundExecutor(std::shared_ptr<Scheduler> scheduler, uint32_t lane = 0)
      : scheduler_(std::move(scheduler)), lane_(lane) {}

  // ForNewLane()
  //
  // Under a TestScheduler: adds a lane named `name` and returns an executor
  // for it. On any other scheduler: an executor for the main thread.
  static ForegroundExecutor ForNewLane(std::shared_ptr<Scheduler> scheduler,
                                       std::string_view name);

  // Spawn(): see `SpawnForeground` in scheduler.h.
  template <typename C>
  auto Spawn(C&& co, SourceLocation location = SourceLocation::current()) const {
    return internal::SpawnTask(*scheduler_, internal::AsCo(std::forward<C>(co)),
                               internal::ScheduleKind::kForeground, std::nullopt, lane_,
                               location);
  }

  // The lane this executor spawns onto (0: the main thread).
  uint32_t lane() const { return lane_; }

  // Timer(): as BackgroundExecutor::Timer.
  SleepAwaiter Timer(Duration duration,
                     SourceLocation location = SourceLocation::current()) const {
    return Sleep(duration, location);
  }

  bool IsMainThread() const { return scheduler_->IsMainThread(); }
  Instant Now() const { return scheduler_->Now(); }
  const std::shared_ptr<Scheduler>& scheduler() const { return scheduler_; }

 private:
  std::shared_ptr<Scheduler> scheduler_;
  uint32_t lane_ = 0;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_EXECUTOR_H_
