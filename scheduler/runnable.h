// File: scheduler/runnable.h
// -----------------------------------------------------------------------------
//
// `Runnable` is what a scheduler queues: a move-only, type-erased "poll this
// task once". Exactly one Runnable exists for a task while it is scheduled
// and none while it is suspended, so a scheduler never sees a task twice.
//
// Running a Runnable resumes its task until the next suspension point (and
// consumes the Runnable). Destroying a Runnable that was never run cancels
// the task cleanly: its coroutine frame is destroyed and the RAII in it runs.
// A scheduler that drops its queues on shutdown therefore frees every frame.
//
// This header defines:
//   * `simsched::Runnable`
//
// Example (inside a Scheduler implementation):
//
//   void MyScheduler::Schedule(simsched::Runnable runnable) {
//     queue_.push_back(std::move(runnable));
//   }
//   void MyScheduler::RunOne() {
//     simsched::Runnable next = std::move(queue_.front());
//     queue_.pop_front();
//     LOG(INFO) << "polling " << next.metadata().DebugString();
//     std::move(next).Run();
//   }

#ifndef SIMSCHED_SCHEDULER_RUNNABLE_H_
#define SIMSCHED_SCHEDULER_RUNNABLE_H_

#include <utility>

#include "scheduler/internal/task_header.h"
#include "scheduler/task_metadata.h"

namespace simsched {

// Runnable
//
// Move-only permission to poll one task once.
class Runnable {
 public:
  Runnable() = default;
  Runnable(Runnable&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  Runnable& operator=(Runnable&& other) noexcept {
    if (this != &other) {
      Reset();
      task_ = std::exchange(other.task_, nullptr);
    }
    return *this;
  }
  Runnable(const Runnable&) = delete;
  Runnable& operator=(const Runnable&) = delete;
  ~Runnable() { Reset(); }

  // Run()
  //
  // Polls the task until its next suspension point. Consumes the Runnable.
  // If the task was cancelled while queued, does nothing.
  void Run() && {
    internal::TaskHeader* task = std::exchange(task_, nullptr);
    task->Poll();
  }

  // metadata()
  //
  // The task's metadata, readable without running it. Requires a non-empty
  // Runnable.
  TaskMetadata metadata() const { return task_->metadata.Unpack(); }

  // Whether this Runnable holds a task (false after a move or Run).
  explicit operator bool() const { return task_ != nullptr; }

  // For schedulers: the task header (internal, may change without notice).
  internal::TaskHeader* header() const { return task_; }

  // For schedulers that queue raw headers: gives up ownership, returning the
  // header with the reference this Runnable held. Wrap it again with
  // `Adopt` to run or drop it.
  internal::TaskHeader* ReleaseHeader() { return std::exchange(task_, nullptr); }

  // For the task core: wraps a header, adopting one reference.
  static Runnable Adopt(internal::TaskHeader* task) {
    Runnable runnable;
    runnable.task_ = task;
    return runnable;
  }

 private:
  void Reset() {
    if (task_ != nullptr) {
      internal::TaskHeader* task = std::exchange(task_, nullptr);
      task->Cancel();
      task->Release();
    }
  }

  internal::TaskHeader* task_ = nullptr;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_RUNNABLE_H_
