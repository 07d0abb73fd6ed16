#include "scheduler/internal/task_header.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "scheduler/runnable.h"
#include "scheduler/scheduler.h"

namespace simsched::internal {

thread_local constinit TaskHeader* current_task = nullptr;

void TaskHeader::WakeSlow(uint32_t seq) {
  uint64_t s = state();
  for (;;) {
    if ((s & (kCompleted | kClosed | kScheduled)) != 0) return;
    if (static_cast<uint32_t>(s >> kSeqShift) != seq) return;  // stale waker
    if ((s & kRunning) != 0) {
      // Woken during its own poll: Poll() re-queues it when the poll ends.
      if (CasState(s, s | kScheduled)) return;
      continue;
    }
    if (CasState(s, s | kScheduled)) break;
  }
  AddRef();
  ScheduleSelf();
}

void TaskHeader::ScheduleSelf() {
  Runnable runnable = Runnable::Adopt(this);
  switch (kind_) {
    case ScheduleKind::kBackground:
      scheduler_->Schedule(std::move(runnable));
      break;
    case ScheduleKind::kLabeled:
      scheduler_->ScheduleLabeled(std::move(runnable), *metadata.label);
      break;
    case ScheduleKind::kForeground:
      scheduler_->ScheduleForeground(std::move(runnable));
      break;
  }
}

TaskHeader::PollResult TaskHeader::PollClosedWhileQueued() {
  Release();
  return PollResult::kFinished;
}

TaskHeader::PollResult TaskHeader::PollEnded() {
  if (root_.done()) {
    Complete();
    Release();
    return PollResult::kFinished;
  }
  // Cancelled during its own poll: the poll is over, so the task is now
  // finished (kClosed without kRunning) for anyone who looks.
  DestroyFrame();
  uint64_t s = state();
  while (!CasState(s, s & ~(kRunning | kScheduled))) {
  }
  Finish();
  Release();
  return PollResult::kFinished;
}

void TaskHeader::Complete() {
  HarvestResult(root_);
  DestroyFrame();
  uint64_t s = state();
  while (!CasState(s, (s & ~(kRunning | kScheduled)) | kCompleted)) {
  }
  if (exception_ != nullptr && (s & kDetached) != 0) {
    exception_observed_ = true;
    scheduler_->OnUnhandledTaskException(metadata, exception_);
  }
  Finish();
}

void TaskHeader::Cancel() {
  uint64_t s = state();
  for (;;) {
    if ((s & (kCompleted | kClosed)) != 0) return;
    if ((s & kRunning) != 0) {
      // Deferred: the poller destroys the frame when the poll ends.
      if (CasState(s, s | kClosed)) return;
      continue;
    }
    if (CasState(s, s | kClosed)) break;
  }
  // A queued Runnable (if any) keeps the header alive and becomes a no-op.
  DestroyFrame();
  Finish();
}

void TaskHeader::Detach() {
  uint64_t s = state();
  while (!CasState(s, s | kDetached)) {
  }
  if ((s & kCompleted) != 0 && exception_ != nullptr && !exception_observed_) {
    // The task finished before it was detached, so its scheduler may be gone:
    // report through the logger, which always outlives it.
    exception_observed_ = true;
    Scheduler::LogUnhandledTaskException(metadata, exception_);
  }
}

void TaskHeader::DestroyFrame() {
  std::coroutine_handle<> root = std::exchange(root_, nullptr);
  leaf = nullptr;
  if (root) DestroyCoroutineFrame(root);
}

void TaskHeader::Finish() {
  // After this the task never touches its scheduler again (every entry point
  // checks kCompleted/kClosed first), so a header that outlives the scheduler,
  // held by a Task or a Waker, stays safe.
  scheduler_->OnTaskFinished(*this);
  LockJoin();
  TaskHeader* joiner = std::exchange(joiner_, nullptr);
  const uint32_t joiner_seq = joiner_seq_;
  UnlockJoin();
  if (joiner != nullptr) {
    joiner->Wake(joiner_seq);
    joiner->Release();
  }
  Release();  // the task's own reference; every caller holds another
}

bool TaskHeader::RegisterJoiner(TaskHeader* joiner, uint32_t joiner_seq) {
  LockJoin();
  if (finished()) {
    UnlockJoin();
    return false;
  }
  SIMSCHED_CHECK(joiner_ == nullptr, "a task can be awaited by one task at a time");
  joiner->AddRef();
  joiner_ = joiner;
  joiner_seq_ = joiner_seq;
  UnlockJoin();
  return true;
}

void TaskHeader::UnregisterJoiner(TaskHeader* joiner) {
  LockJoin();
  TaskHeader* registered = nullptr;
  if (joiner_ == joiner) registered = std::exchange(joiner_, nullptr);
  UnlockJoin();
  if (registered != nullptr) registered->Release();
}

void TaskHeader::LockJoin() {
  if (confined_) return;
  while (join_lock_.exchange(true, std::memory_order_acquire)) {
    while (join_lock_.load(std::memory_order_relaxed)) {
    }
  }
}

void TaskHeader::UnlockJoin() {
  if (confined_) return;
  join_lock_.store(false, std::memory_order_release);
}

void DestroyCoroutineFrame(std::coroutine_handle<> frame) noexcept {
  using Pending = absl::InlinedVector<std::coroutine_handle<>, 8>;
  thread_local constinit Pending* pending = nullptr;
  if (pending != nullptr) {
    pending->push_back(frame);
    return;
  }
  Pending queue;
  pending = &queue;
  frame.destroy();
  while (!queue.empty()) {
    std::coroutine_handle<> next = queue.back();
    queue.pop_back();
    next.destroy();
  }
  pending = nullptr;
}

}  // namespace simsched::internal
