// File: scheduler/task.h
// -----------------------------------------------------------------------------
//
// `Task<T>` is what spawning returns: the handle to a running task and, when
// it finishes, its result. It is to a task what `std::unique_ptr` is to an
// object: one owner, and letting go of it ends the task.
//
//   * `co_await task` (from another task) gives the `T`, or rethrows the
//     exception the task ended with. If the task already finished it returns
//     at once without suspending.
//   * Destroying a Task that was neither awaited to the end nor detached
//     cancels the task: its coroutine frame is destroyed and the RAII in it
//     runs, at once if the task is suspended or queued, else when its current
//     poll ends.
//   * `Detach()` lets the task run to the end; its result is dropped. An
//     exception escaping a detached task is reported, never swallowed (the
//     TestScheduler fails the run; production schedulers log it).
//   * `metadata()` gives the id, label, session and spawn location.
//
// Awaiting a cancelled task throws `simsched::TaskCancelledError`.
//
// This header defines:
//   * `simsched::Task<T>`
//   * `simsched::TaskCancelledError`
//
// Example:
//
//   simsched::Co<void> Parent(simsched::Scheduler& s) {
//     simsched::Task<int> child = simsched::Spawn(s, Compute());
//     simsched::Spawn(s, Heartbeat()).Detach();   // runs on its own
//     int value = co_await child;                  // or rethrows
//   }                                              // (Heartbeat keeps going)

#ifndef SIMSCHED_SCHEDULER_TASK_H_
#define SIMSCHED_SCHEDULER_TASK_H_

#include <coroutine>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "scheduler/co.h"
#include "scheduler/internal/not_in_task.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/task_metadata.h"

namespace simsched {

// TaskCancelledError
//
// Thrown by `co_await task` (and returned as a Cancelled status by BlockOn)
// when the awaited task was cancelled before it completed.
class TaskCancelledError : public std::runtime_error {
 public:
  explicit TaskCancelledError(const TaskMetadata& metadata)
      : std::runtime_error(metadata.DebugString() + " was cancelled") {}
};

namespace internal {

// The header plus the typed result slot of a task whose root is a Co<T>.
template <typename T>
class TaskState final : public TaskHeader {
 public:
  TaskState(Scheduler& scheduler, ScheduleKind kind,
            std::coroutine_handle<CoPromise<T>> root, bool confined)
      : TaskHeader(scheduler, kind, root, &root.promise(), confined) {
    static_assert(sizeof(TaskState) == sizeof(TaskStateLayout<T>));
    if constexpr (!std::is_void_v<T>) MarkHasResult();
  }

  // Builds the header of a task whose root is `root`, in the room in front of
  // the frame (co.h): one allocation per task.
  static TaskState* CreateInFrameRoom(Scheduler& scheduler, ScheduleKind kind,
                                      std::coroutine_handle<CoPromise<T>> root, bool confined) {
    return ::new (HostTaskHeader<T>(root.address())) TaskState(scheduler, kind, root, confined);
  }

  std::coroutine_handle<> RootFrame() const noexcept override {
    // The header ends where the room does (co.h, kTaskHeaderOffset).
    return std::coroutine_handle<>::from_address(
        const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(this)) +
        sizeof(TaskState));
  }

  // Takes the result of a finished task: the value, or throws its exception,
  // or throws TaskCancelledError.
  T TakeResult() {
    if (!completed()) throw TaskCancelledError(metadata.Unpack());
    if (exception_) {
      MarkExceptionObserved();
      std::rethrow_exception(exception_);
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(*value_);
    } else {
      return std::move(*value_);
    }
  }

 private:
  std::exception_ptr HarvestResult() noexcept override {
    auto& promise =
        std::coroutine_handle<CoPromise<T>>::from_address(RootFrame().address()).promise();
    if constexpr (std::is_reference_v<T>) {
      value_ = promise.value();
    } else if constexpr (!std::is_void_v<T>) {
      if (promise.value().has_value()) value_.emplace(std::move(*promise.value()));
    }
    return promise.TakeException();
  }

  // The frame is gone by now (the header outlives it, co.h) and left the
  // block's size in its first word.
  void Free() noexcept override {
    void* const block = reinterpret_cast<unsigned char*>(this) - kTaskHeaderOffset<T>;
    const size_t block_bytes = KeptTaskBlockSize(RootFrame().address());
    this->~TaskState();
    FreeTaskBlock(block, block_bytes);
  }

  [[no_unique_address]] TaskResultSlot<T> value_{};
};

}  // namespace internal

// Task<T>
//
// Move-only owner of a spawned task. See the file comment.
template <typename T = void>
class [[nodiscard]] Task {
 public:
  using value_type = T;

  Task() = default;
  Task(Task&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Reset(); }

  // Detach()
  //
  // Lets the task run to the end without this handle; the Task becomes empty.
  void Detach() {
    if (state_ == nullptr) return;
    internal::TaskState<T>* state = std::exchange(state_, nullptr);
    state->Detach();
    state->Release();
  }

  // Cancel()
  //
  // Cancels the task now (as destroying the handle would) but keeps the handle,
  // so `IsCancelled()` and `metadata()` stay readable.
  void Cancel() {
    if (state_ != nullptr) state_->Cancel();
  }

  // Whether this handle refers to a task (false when default-made, moved from
  // or detached).
  explicit operator bool() const { return state_ != nullptr; }

  // metadata()
  //
  // Id, label, session and spawn location. Requires a non-empty Task.
  TaskMetadata metadata() const { return state_->metadata.Unpack(); }
  TaskId id() const { return state_->metadata.id; }

  // IsFinished()
  //
  // True once the task completed (with a value or an exception) or was
  // cancelled.
  bool IsFinished() const { return state_ != nullptr && state_->finished(); }

  // IsCancelled()
  //
  // True if the task was cancelled before it completed.
  bool IsCancelled() const { return state_ != nullptr && state_->cancelled(); }

  class Awaiter {
   public:
    explicit Awaiter(internal::TaskState<T>* state) : state_(state) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter() {
      // Still registered only if the awaiting task was cancelled mid-wait.
      if (join_.joiner != nullptr) state_->UnregisterJoiner(&join_);
    }

    bool await_ready() const noexcept { return state_->finished(); }
    bool await_suspend(std::coroutine_handle<>) {
      internal::TaskHeader* self = internal::current_task;
      if (self == nullptr) internal::ThrowNotInTask("co_await on a Task");
      join_ = internal::JoinRecord{self, self->seq()};
      if (!state_->RegisterJoiner(&join_)) {  // finished meanwhile
        join_.joiner = nullptr;
        return false;
      }
      self->SetWaitJoin(state_->metadata.id);
      return true;
    }
    T await_resume() {
      if (join_.joiner != nullptr) {
        state_->UnregisterJoiner(&join_);
        join_.joiner = nullptr;
      }
      return state_->TakeResult();
    }

   private:
    internal::TaskState<T>* state_;
    // Registered with the awaited task while this awaiter's task waits (the
    // task's header points here then; see TaskHeader::RegisterJoiner).
    internal::JoinRecord join_;
  };

  // Awaiting gives the result (moved out: a result can be taken once).
  // Requires a non-empty Task.
  Awaiter operator co_await() & noexcept { return Awaiter(state_); }
  Awaiter operator co_await() && noexcept { return Awaiter(state_); }

  // For BlockOn implementations: the task header (internal).
  internal::TaskState<T>* state() const { return state_; }

  // For spawn functions: adopts one reference to `state`.
  static Task Adopt(internal::TaskState<T>* state) {
    Task task;
    task.state_ = state;
    return task;
  }

 private:
  void Reset() {
    if (state_ != nullptr) {
      internal::TaskState<T>* state = std::exchange(state_, nullptr);
      state->Cancel();
      state->Release();
    }
  }

  internal::TaskState<T>* state_ = nullptr;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_TASK_H_
