#include "scheduler/internal/task_header.h"

#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_set.h"
#include "scheduler/co.h"
#include "scheduler/internal/direct_enqueue.h"
#include "scheduler/internal/frame_destruction.h"
#include "scheduler/runnable.h"
#include "scheduler/scheduler.h"

namespace simsched::internal {

thread_local constinit TaskHeader* current_task = nullptr;
thread_local constinit std::coroutine_handle<> resume_next = nullptr;
thread_local constinit DirectEnqueueTarget direct_enqueue_target;

namespace {
// Per thread: how deeply frame destructions nest right now (see
// DestroyCoroutineFrame at the end of this file).
thread_local constinit int destroy_depth = 0;
bool InsideFrameDestruction() { return destroy_depth > 0; }
// Runs the jobs deferred past the nesting bound, if any, once the outermost
// destruction has ended (destroy_depth back at zero). Defined below.
void RunDeferredJobsIfAny() noexcept;

// Per thread: the tasks whose frames this thread is destroying right now,
// innermost first. A cancellation of one of them from inside that
// destruction (a frame holding its own task's handle) must not wait for it.
struct FramesBeingDestroyed {
  const TaskHeader* task;
  FramesBeingDestroyed* outer;
};
thread_local constinit FramesBeingDestroyed* frames_being_destroyed = nullptr;

bool DestroyingOnThisThread(const TaskHeader* task) {
  for (const FramesBeingDestroyed* f = frames_being_destroyed; f != nullptr; f = f->outer) {
    if (f->task == task) return true;
  }
  return false;
}
}  // namespace

void TaskHeader::WakeSlow(uint32_t seq) {
  uint64_t s = state();
  for (;;) {
    if ((s & (kCompleted | kCancelled | kScheduled)) != 0) return;
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

void TaskHeader::WakeSelfSlow() {
  if (confined_) {
    // Labeled or foreground work of a confined scheduler (kNotFast), or a
    // task already scheduled or cancelled: what the fast path does, if it
    // applies.
    const uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & (kCancelled | kScheduled)) == 0) {
      state_.store(s | kScheduled, std::memory_order_relaxed);
    }
    return;
  }
  WakeSlow(seq());
}

void TaskHeader::WakeAndReleaseSlow(uint32_t seq) {
  uint64_t s = state();
  for (;;) {
    if ((s & (kCompleted | kCancelled | kScheduled)) != 0) break;
    if (static_cast<uint32_t>(s >> kSeqShift) != seq) break;  // stale waker
    if (CasState(s, s | kScheduled)) {
      // Woken during its own poll: the poll's reference moves on when it
      // ends, and the caller's is dropped below. Otherwise the caller's
      // reference becomes the Runnable's.
      if ((s & kRunning) != 0) break;
      ScheduleSelf();
      return;
    }
  }
  Release();
}

void TaskHeader::ScheduleSelfVirtual() {
  Runnable runnable = Runnable::Adopt(this);
  switch (kind_) {
    case ScheduleKind::kBackground:
      scheduler_->Schedule(std::move(runnable));
      break;
    case ScheduleKind::kLabeled:
      scheduler_->ScheduleLabeled(std::move(runnable), *metadata.label());
      break;
    case ScheduleKind::kForeground:
      scheduler_->ScheduleForeground(std::move(runnable));
      break;
  }
}

void TaskHeader::MarkRootDoneOfCurrentTask(std::coroutine_handle<> frame) noexcept {
  TaskHeader* const task = current_task;
  if (task == nullptr || frame.address() != task->leaf_) [[unlikely]] return;
  if (task->confined_) {
    task->state_.store(task->state_.load(std::memory_order_relaxed) | kRootDone,
                       std::memory_order_relaxed);
  } else {
    // Other threads may set flags meanwhile (a wake, a cancel).
    task->state_.fetch_or(kRootDone, std::memory_order_relaxed);
  }
}

uint64_t TaskHeader::RunTrampoline(std::coroutine_handle<>& trampoline_next) {
  while (trampoline_next) std::exchange(trampoline_next, nullptr).resume();
  // Confined (kTransferred is set only without kNotFast): plain stores.
  const uint64_t s = state_.load(std::memory_order_relaxed) & ~kTransferred;
  state_.store(s, std::memory_order_relaxed);
  return s;
}

TaskHeader::PollResult TaskHeader::PollClosedWhileQueued() {
  Release();
  return PollResult::kFinished;
}

void TaskHeader::ResumeLeafNested() {
  TaskHeader* const previous = current_task;
  const std::coroutine_handle<> outer_next = std::exchange(resume_next, nullptr);
  current_task = this;
  leaf().resume();
  while (resume_next) std::exchange(resume_next, nullptr).resume();
  current_task = previous;
  resume_next = outer_next;
}

TaskHeader::PollResult TaskHeader::PollEnded() {
  // The common end first, in one function: a confined task whose root
  // returned (kRootDone: the leaf is the root frame, a Co) and that nobody
  // cancelled. What Complete(), DestroyFrame(), Finish() and the poll's
  // Release() do, in the same order, without their calls, the virtual
  // RootFrame() (the leaf is the root), HarvestResult() for a Co<void>
  // root, the join lock and the destruction's job record.
  if (confined_) {
    const uint64_t s0 = state_.load(std::memory_order_relaxed);
    if ((s0 & (kRootDone | kCancelled)) == kRootDone &&
        destroy_depth < kMaxNestedDestroyDepth) [[likely]] {
      const std::coroutine_handle<> root = leaf();
      std::exception_ptr exception = (bits_ & kHasResult) != 0
                                         ? HarvestResult()
                                         : CoPromiseAt(root)->TakeException();
      // The frame's destructors may cancel or detach tasks, this one
      // included; the block stays alive (this poll's reference).
      leaf_ = nullptr;
      ++destroy_depth;
      root.destroy();
      --destroy_depth;
      if (destroy_depth == 0) RunDeferredJobsIfAny();
      const uint64_t s = state_.load(std::memory_order_relaxed);
      wait_seq_ = static_cast<uint32_t>(s >> kSeqShift) + 1;  // see Complete()
      ::new (&exception_) std::exception_ptr(std::move(exception));
      state_.store((s & ~(kRunning | kScheduled)) | kCompleted, std::memory_order_relaxed);
      if (exception_ != nullptr && (s & kDetached) != 0) [[unlikely]] {
        bits_ |= kExceptionObserved;
        TaskCoreAccess::OnUnhandledTaskException(*scheduler_, metadata.Unpack(), exception_);
      }
      TaskCoreAccess::OnTaskFinished(*scheduler_, *this);
      if (JoinRecord* record = std::exchange(joiner_, nullptr); record != nullptr) {
        record->joiner->WakeAndRelease(record->seq);  // the reference joiner_ held
      }
      // The task's own reference and the poll's.
      const uint32_t remaining = refs_.load(std::memory_order_relaxed) - 2;
      refs_.store(remaining, std::memory_order_relaxed);
      if (remaining == 0) Free();
      return PollResult::kFinished;
    }
  }
  // The leaf is done only if it is the root: a Co child that ends hands the
  // leaf back to its parent (TransferTo) before the poll goes on.
  if (leaf().done()) {
    Complete();
    Release();
    return PollResult::kFinished;
  }
  // Cancelled during its own poll: the poll is over, so the task is now
  // finished (kCancelled without kRunning) for anyone who looks.
  DestroyFrame();
  uint64_t s = state();
  while (!CasState(s, s & ~(kRunning | kScheduled))) {
  }
  Finish();
  Release();
  return PollResult::kFinished;
}

void TaskHeader::Complete() {
  std::exception_ptr exception = HarvestResult();
  DestroyFrame();
  // The exception takes the wait site's last word: invalidate the site (the
  // sequence number no longer changes) before the word changes meaning.
  wait_seq_ = seq() + 1;
  ::new (&exception_) std::exception_ptr(std::move(exception));
  uint64_t s = state();
  while (!CasState(s, (s & ~(kRunning | kScheduled)) | kCompleted)) {
  }
  if (exception_ != nullptr && (s & kDetached) != 0) {
    bits_ |= kExceptionObserved;
    TaskCoreAccess::OnUnhandledTaskException(*scheduler_, metadata.Unpack(), exception_);
  }
  Finish();
}

void TaskHeader::Cancel() {
  // From a task (structured code whose child may borrow its locals) or from
  // a frame's destruction: join. From plain code outside any task: defer.
  CancelImpl(/*join=*/current_task != nullptr || InsideFrameDestruction());
}

void TaskHeader::CancelAndJoin() { CancelImpl(/*join=*/true); }

void TaskHeader::CancelImpl(bool join) {
  uint64_t s = state();
  for (;;) {
    if ((s & kCompleted) != 0) return;
    if ((s & (kRunning | kDestroying)) != 0) {
      // Being polled: the poller destroys the frame when the poll ends
      // (already marked if an earlier Cancel got here first). Or another
      // canceller is destroying it now (kDestroying comes with kCancelled).
      if ((s & kCancelled) == 0 && !CasState(s, s | kCancelled)) continue;
      // Joining (a task or a frame's destruction cancelling a task it owns)
      // while another thread uses the frames: wait until they are gone, so
      // that, as when a call stack unwinds, nothing the owner goes on to
      // free (its earlier locals) is still in use by the child. Plain code
      // outside any task does not wait (the poll may be waiting for it); nor
      // does a thread wait for frames it is itself polling or destroying.
      if (join && !confined_ && current_task != this && !DestroyingOnThisThread(this)) {
        WaitForFramesGone();
      }
      return;
    }
    if ((s & kCancelled) != 0) return;  // cancelled, and its frames are gone
    if (CasState(s, s | kCancelled | kDestroying)) break;
  }
  // A queued Runnable (if any) keeps the header alive and becomes a no-op.
  DestroyFrame();
  s = state();
  while (!CasState(s, s & ~kDestroying)) {
  }
  Finish();
}

namespace {

// The tasks whose polls wait in WaitForFramesGone, and for whom: (waiter,
// awaited) pairs. Rare (a cancellation racing a poll on another thread) and
// short, so one process-wide list under a mutex instead of a field in every
// header.
class CancelJoinWaits {
 public:
  void Add(const TaskHeader* waiter, const TaskHeader* awaited) {
    std::lock_guard<std::mutex> lock(mu_);
    waits_.emplace_back(waiter, awaited);
  }
  void Remove(const TaskHeader* waiter, const TaskHeader* awaited) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < waits_.size(); ++i) {
      if (waits_[i] == std::make_pair(waiter, awaited)) {
        waits_[i] = waits_.back();
        waits_.pop_back();
        return;
      }
    }
  }
  bool Contains(const TaskHeader* waiter, const TaskHeader* awaited) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& wait : waits_) {
      if (wait == std::make_pair(waiter, awaited)) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<const TaskHeader*, const TaskHeader*>> waits_;
};

CancelJoinWaits& GetCancelJoinWaits() {
  static auto* waits = new CancelJoinWaits;  // leaked: used until the last thread ends
  return *waits;
}

}  // namespace

void TaskHeader::WaitForFramesGone() {
  TaskHeader* const waiter = current_task;
  CancelJoinWaits& waits = GetCancelJoinWaits();
  if (waiter != nullptr) waits.Add(waiter, this);
  while ((state_.load(std::memory_order_seq_cst) & (kRunning | kDestroying)) != 0) {
    // Two tasks cancelling each other at once (peers holding each other's
    // handles) would wait for each other forever: whoever sees the other
    // waiting for it stops waiting, so at least one poll goes on and ends.
    // (Both add themselves under the list's lock before looking, so at
    // least the second to add sees the first.)
    if (waiter != nullptr && waits.Contains(this, waiter)) break;
    std::this_thread::yield();  // rare, and short: the rest of one poll
  }
  if (waiter != nullptr) waits.Remove(waiter, this);
}

void TaskHeader::Detach() {
  uint64_t s = state();
  while (!CasState(s, s | kDetached)) {
  }
  if ((s & kCompleted) != 0 && exception_ != nullptr && (bits_ & kExceptionObserved) == 0) {
    // The task finished before it was detached, so its scheduler may be gone:
    // report through the logger, which always outlives it.
    bits_ |= kExceptionObserved;
    Scheduler::LogUnhandledTaskException(metadata.Unpack(), exception_);
  }
}

void TaskHeader::DestroyFrame() {
  if (leaf_ == nullptr) return;  // already destroyed
  const std::coroutine_handle<> root = RootFrame();
  const std::coroutine_handle<> innermost = leaf();
  CoPromiseBase* const innermost_promise = leaf_promise();
  leaf_ = nullptr;
  // The root frame shares its block with this header (co.h). A destruction
  // that runs now finds it alive: the task's own reference is released only
  // by Finish(), after this. One deferred past the nesting bound runs later,
  // so it holds a reference of its own until the root frame is gone.
  TaskHeader* host = nullptr;
  if (destroy_depth >= kMaxNestedDestroyDepth) [[unlikely]] {
    AddRef();
    host = this;
  }
  // Only a task of a scheduler that is not thread-confined asks whether its
  // frames are being destroyed on this thread (CancelImpl).
  if (confined_) return DestroyAwaitChain(innermost, innermost_promise, root, host);
  FramesBeingDestroyed scope{this, frames_being_destroyed};
  frames_being_destroyed = &scope;
  DestroyAwaitChain(innermost, innermost_promise, root, host);
  frames_being_destroyed = scope.outer;
}

void TaskHeader::Finish() {
  // After this the task never touches its scheduler again (every entry point
  // checks kCompleted/kCancelled first), so a header that outlives the scheduler,
  // held by a Task or a Waker, stays safe.
  TaskCoreAccess::OnTaskFinished(*scheduler_, *this);
  LockJoin();
  // The record lives in the joiner's frame: read it while it is registered
  // (an unregistering joiner waits for the lock).
  TaskHeader* joiner = nullptr;
  uint32_t joiner_seq = 0;
  if (JoinRecord* record = std::exchange(joiner_, nullptr); record != nullptr) {
    joiner = record->joiner;
    joiner_seq = record->seq;
  }
  UnlockJoin();
  if (joiner != nullptr) joiner->WakeAndRelease(joiner_seq);  // the reference joiner_ held
  Release();  // the task's own reference; every caller holds another
}

bool TaskHeader::RegisterJoiner(JoinRecord* record) {
  LockJoin();
  if (finished()) {
    UnlockJoin();
    return false;
  }
  SIMSCHED_CHECK(joiner_ == nullptr, "a task can be awaited by one task at a time");
  record->joiner->AddRef();
  joiner_ = record;
  UnlockJoin();
  return true;
}

void TaskHeader::UnregisterJoiner(JoinRecord* record) {
  LockJoin();
  TaskHeader* registered = nullptr;
  if (joiner_ == record) {
    joiner_ = nullptr;
    registered = record->joiner;
  }
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

namespace {

// One destruction: an await chain from its innermost frame up to its root
// (a lone frame is a chain of one).
struct DestroyJob {
  std::coroutine_handle<> leaf;
  CoPromiseBase* leaf_promise;
  std::coroutine_handle<> root;
  TaskHeader* host;  // the header in the root's block, holding a reference; or null
};

using DeferredJobs = absl::InlinedVector<DestroyJob, 4>;

// Per thread: the jobs deferred past kMaxNestedDestroyDepth, run by the
// outermost destruction. Made by the first deferral (rare), so that a
// destruction that defers nothing sets nothing up.
thread_local constinit DeferredJobs* deferred_jobs = nullptr;

void RunJob(const DestroyJob& job) noexcept {
  std::coroutine_handle<> frame = job.leaf;
  CoPromiseBase* promise = job.leaf_promise;
  // Walk outward while the links are Co frames; each child's owning Co (in
  // its parent's frame) is emptied before the child is destroyed, so the
  // parent's destruction does not reach it again.
  while (frame != job.root && promise != nullptr) {
    std::coroutine_handle<> parent = promise->continuation();
    CoPromiseBase* parent_promise = promise->parent_promise();
    if (!parent) break;  // not linked to the root: let the root's destruction reach it
    promise->Disown();
    frame.destroy();
    frame = parent;
    promise = parent_promise;
  }
  // The root, and with it (recursively, through the objects that own them)
  // any frames the walk could not reach: links of another coroutine type.
  job.root.destroy();
  if (job.host != nullptr) job.host->Release();
}

// The outermost destruction's work after its own job: the deferred jobs.
[[gnu::noinline]] void RunDeferredJobs() noexcept {
  // Past the depth bound, order among the deferred jobs is last-in first-out:
  // the most deeply nested ran out of stack budget last. Jobs they defer in
  // turn join the same list.
  ++destroy_depth;
  while (!deferred_jobs->empty()) {
    DestroyJob next = deferred_jobs->back();
    deferred_jobs->pop_back();
    RunJob(next);
  }
  --destroy_depth;
  delete std::exchange(deferred_jobs, nullptr);
}

void RunDeferredJobsIfAny() noexcept {
  if (deferred_jobs != nullptr) [[unlikely]] RunDeferredJobs();
}

void RunOrDefer(const DestroyJob& job) noexcept {
  if (destroy_depth >= kMaxNestedDestroyDepth) [[unlikely]] {
    if (deferred_jobs == nullptr) deferred_jobs = new DeferredJobs;
    deferred_jobs->push_back(job);
    return;
  }
  ++destroy_depth;
  RunJob(job);
  --destroy_depth;
  if (destroy_depth == 0 && deferred_jobs != nullptr) [[unlikely]] RunDeferredJobs();
}

}  // namespace

void DestroyCoroutineFrame(std::coroutine_handle<> frame) noexcept {
  RunOrDefer(DestroyJob{frame, nullptr, frame, nullptr});
}

void DestroyAwaitChain(std::coroutine_handle<> leaf, CoPromiseBase* leaf_promise,
                       std::coroutine_handle<> root, TaskHeader* host) noexcept {
  RunOrDefer(DestroyJob{leaf ? leaf : root, leaf ? leaf_promise : nullptr, root, host});
}

void TaskHeader::RecordWaitSiteSlow(std::string_view what, SourceLocation where,
                                    const WaitTarget* target) {
  SetWaitRecord(InternWaitSiteSlow(what, where, target));
}

}  // namespace simsched::internal
