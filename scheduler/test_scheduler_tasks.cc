// TestScheduler's task tracking: ids and the live-task index as tasks are
// spawned, cancelled and finish, the TaskObserver's calls, which tasks may
// stay idle; and what TestSchedulerOptions::record_trace records of them
// (why each was woken, trace entries and notes, internal tasks) with the
// trace hash every run keeps. Their text forms are test_scheduler_reports.cc.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "scheduler/internal/test_scheduler_parts.h"
#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::TaskHeader;

void TestScheduler::OnTaskSpawned(TaskHeader& task) {
  if (!OnOwnerThread()) [[unlikely]] {
    // Tracked nowhere (id 0): the schedule call that follows lands in the
    // inbox and fails the run.
    return;
  }
  task.metadata.id = TaskId{next_task_id_++};
  live_.Add(&task);
  if (options_.record_trace) [[unlikely]] {
    const TaskHeader* parent = internal::current_task;
    const TaskId parent_id = parent != nullptr ? parent->metadata.id : TaskId{};
    wake_notes_.insert_or_assign(task.metadata.id.value,
                                 WakeNote{WakeCause::kSpawned, parent_id});
    task_events_.push_back(
        {TaskEvent::Kind::kSpawned, steps_, Elapsed(), task.metadata.Unpack(), parent_id});
  }
  if (task_observer_ != nullptr) [[unlikely]] TellObserverSpawned(task);
}

void TestScheduler::TellObserverSpawned(const TaskHeader& task) {
  // The parent only if it is one of ours (not a task of another scheduler
  // polled on this thread).
  TaskId parent_id;
  if (const TaskHeader* parent = internal::current_task; parent != nullptr) {
    if (live_.Find(parent->metadata.id) == parent) parent_id = parent->metadata.id;
  }
  task_observer_->OnTaskSpawned(task.metadata.id, parent_id);
}

void TestScheduler::StartSpawnedTask(TaskHeader& task) {
  // Background work spawned on this thread with nothing recorded: what
  // OnTaskSpawned() and then Schedule() (or a direct enqueue) do, in the same
  // order (the id, the observer, the strategy's enqueue hook, the push),
  // without the Runnable, a second virtual call and the thread and trace
  // checks. Anything else goes the general way.
  if (task.kind() != internal::ScheduleKind::kBackground || options_.record_trace ||
      !OnOwnerThread()) [[unlikely]] {
    OnTaskSpawned(task);
    task.ScheduleSelf();
    return;
  }
  task.metadata.id = TaskId{next_task_id_++};
  live_.Add(&task);
  if (task_observer_ != nullptr) [[unlikely]] TellObserverSpawned(task);
  EnqueueHeader(background_, &task);
}

bool TestScheduler::CancelTask(TaskId id) {
  TaskHeader* task = live_.Find(id);
  if (task == nullptr) return false;
  task->AddRef();  // the cancellation may drop the last other reference
  task->Cancel();
  task->Release();
  return true;
}

void TestScheduler::OnTaskFinished(TaskHeader& task) {
  if (task.metadata.id.value == 0) return;
  if (!live_.Remove(task)) return;
  if (options_.record_trace || task_observer_ != nullptr) [[unlikely]] NoteTaskFinished(task);
}

void TestScheduler::NoteTaskFinished(const TaskHeader& task) {
  if (options_.record_trace) {
    task_events_.push_back({task.cancelled() ? TaskEvent::Kind::kCancelled
                                             : TaskEvent::Kind::kCompleted,
                            steps_, Elapsed(), task.metadata.Unpack(), TaskId{}});
  }
  if (task_observer_ != nullptr) task_observer_->OnTaskFinished(task.metadata.id);
}

void TestScheduler::AllowIdle(TaskId task) { idle_allowed_.insert(task.value); }

bool TestScheduler::IdleAllowed(const TaskHeader& task) const {
  return options_.allow_idle_tasks ||
         (!idle_allowed_.empty() && idle_allowed_.contains(task.metadata.id.value));
}

void TestScheduler::NoteWake(const TaskHeader& task) {
  WakeNote note{waking_from_, TaskId{}, internal::current_wake_reason};
  if (note.cause == WakeCause::kUnknown) {
    const TaskHeader* waker = internal::current_task;
    const TaskId awaited = task.wait_site().awaited_task;
    if (waker == nullptr && awaited.value != 0) {
      // A join: the awaited task wakes its joiner as its last poll ends,
      // after it stopped being the current task.
      note = WakeNote{WakeCause::kTask, awaited, note.reason};
    } else if (waker == nullptr) {
      note.cause = WakeCause::kOutsideTask;
    } else if (waker == &task) {
      note.cause = WakeCause::kItself;
    } else {
      note = WakeNote{WakeCause::kTask, waker->metadata.id, note.reason};
    }
  }
  wake_notes_.try_emplace(task.metadata.id.value, note);
}

void TestScheduler::RecordTraceEntry(const TaskHeader& task, LaneId lane) {
  TraceEntry entry;
  entry.step = steps_;
  entry.time = Elapsed();
  entry.task = task.metadata.id;
  entry.label = task.metadata.label();
  entry.spawn_location = task.metadata.spawn_location();
  entry.lane = lane == kNoLane ? std::nullopt : std::optional<LaneId>(lane);
  // The wait site is still the one the task suspended at: it changes only
  // when this step polls the task.
  const WaitSite site = task.wait_site();
  entry.resumed_what = std::string(site.what);
  entry.resumed_at = site.where;
  entry.resumed_after_task = site.awaited_task;
  if (auto it = wake_notes_.find(task.metadata.id.value); it != wake_notes_.end()) {
    entry.cause = it->second.cause;
    entry.woken_by = it->second.by;
    if (it->second.reason != nullptr) entry.wake_reason = it->second.reason;
    wake_notes_.erase(it);
  }
  entry.internal = IsInternal(task.metadata.id);
  entry.session = task.metadata.session();
  trace_.push_back(std::move(entry));
}

void TestScheduler::AddTraceNote(std::string_view kind, std::string_view text) {
  if (!options_.record_trace) return;
  const TaskHeader* running = internal::current_task;
  trace_notes_.push_back({steps_, Elapsed(), std::string(kind), std::string(text),
                          running != nullptr ? running->metadata.id : TaskId{}});
}

void TestScheduler::MarkInternal(TaskId task) { internal_ids_.insert(task.value); }

uint64_t TestScheduler::TraceHash() const { return SplitMix64(trace_state_ ^ steps_); }

}  // namespace simsched
