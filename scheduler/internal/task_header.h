// Internal: the task header, the state machine every task runs through.
//
// A task is a header (this class: state, reference count, metadata, how to
// schedule it) plus a root coroutine frame, in one allocation: the header is
// built in room the frame's allocation reserved in front of it (co.h). The
// frame is destroyed as soon as the task completes or is cancelled, leaving
// the block to the header, which lives while anyone still
// refers to it: the `Task<T>` handle, the one queued `Runnable`, or `Waker`s
// held by timers and primitives. That split is what makes "wake after the
// end" and "waker outlives its scheduler" harmless: they touch only the header.
//
// State word (64 bits): flags in the low 32 bits, the poll sequence number in
// the high 32. The sequence number ties a Waker to the suspension it was made
// for, so a stale waker from an earlier suspension can never resume a task at
// a later, unrelated suspension point (C++ coroutines cannot be polled
// spuriously the way Rust futures can).
//
// Tasks of a thread-confined scheduler (the TestScheduler) use plain
// load/store transitions instead of read-modify-write atomics: only one thread
// may touch them, and the TestScheduler diagnoses wakes from any other thread.
//
// Also here: the task being polled on this thread (`current_task`) and the
// poll's resumption trampoline (`resume_next`), which the header's inline
// poll uses. Beside it: the per-thread shortcut a wake takes onto the queue
// of the scheduler driving this thread (direct_enqueue.h), the destruction
// of frames and await chains (frame_destruction.h), and finding a Co frame's
// promise from its handle (co_promise_at.h).
//
// See docs/architecture.md ("The life of a task") for the full protocol and
// shared/docs/task-lifecycle.md for the cases it answers.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TASK_HEADER_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TASK_HEADER_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "scheduler/internal/check.h"
#include "scheduler/internal/co_promise_at.h"
#include "scheduler/internal/direct_enqueue.h"
#include "scheduler/internal/packed_task_metadata.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/wait_site.h"
#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"

namespace simsched {

class Scheduler;
class WaitTarget;  // scheduler/waker.h

namespace internal {

class TaskHeader;
class CoPromiseBase;
// The task being polled on this thread, or null outside any task.
extern thread_local constinit TaskHeader* current_task;
// The resumption trampoline's next coroutine on this thread (see
// TaskHeader::TransferTo): set only between a TransferTo and the return to
// the trampoline of the poll under way, so per thread suffices.
extern thread_local constinit std::coroutine_handle<> resume_next;

// JoinRecord
//
// The joining side of `co_await task`, kept in the awaiter (in the joiner's
// frame, alive while it waits): who to wake when the task finishes, and the
// poll sequence number of the suspension to wake it at. The awaited task's
// header holds a pointer to it while it is registered.
struct JoinRecord {
  TaskHeader* joiner = nullptr;  // holds a reference while registered
  uint32_t seq = 0;
};

// How a task gets back onto its scheduler when it is woken.
enum class ScheduleKind : uint8_t { kBackground, kLabeled, kForeground };

class TaskHeader {
 public:
  // Flags of the state word.
  static constexpr uint64_t kScheduled = 1;  // a Runnable exists (queued or about to be)
  static constexpr uint64_t kRunning = 2;    // being polled right now
  static constexpr uint64_t kCompleted = 4;  // root coroutine returned or threw
  static constexpr uint64_t kCancelled = 8;  // cancelled; frame gone or going
  static constexpr uint64_t kDetached = 16;  // no Task handle will ever read the result
  // A canceller outside any poll is destroying the frames right now (with
  // kCancelled); like kRunning, a joining canceller waits for it to clear.
  static constexpr uint64_t kDestroying = 32;
  // Set by the root `Co`'s final suspend during the poll that ends the task
  // (CoPromiseBase::FinalAwaiter), so that the state check after the poll
  // sees the end without loading the frame to ask `leaf().done()`.
  static constexpr uint64_t kRootDone = 64;
  // Fixed at construction: the task is not a confined background task (its
  // scheduler is not thread-confined, or it is labeled or foreground work),
  // so PollOnceFast() leaves it to the general poll. A flag in the state
  // word makes that check free: the poll's state test covers it.
  static constexpr uint64_t kNotFast = 128;
  // Set by TransferTo() on a task without kNotFast: `resume_next` may hold
  // a coroutine. A run loop's fast poll tests it with the state word it
  // loads anyway, instead of loading the thread-local after every poll;
  // the other polls read `resume_next` itself and leave the flag, which the
  // next fast poll clears.
  static constexpr uint64_t kTransferred = 256;
  static constexpr uint64_t kFlagsMask = 0xffffffffULL;
  static constexpr int kSeqShift = 32;
  static constexpr uint64_t kSeqOne = uint64_t{1} << kSeqShift;

  TaskHeader(const TaskHeader&) = delete;
  TaskHeader& operator=(const TaskHeader&) = delete;

  // Reference counting. A new header has three references: the Task
  // handle's, the first Runnable's, and the task's own while it is alive (so
  // a suspended, detached task that nothing else refers to stays reachable
  // by its scheduler's shutdown; released when the task finishes).
  void AddRef() {
    if (confined_) {
      refs_.store(refs_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else {
      refs_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void Release() {
    uint32_t remaining;
    if (confined_) {
      remaining = refs_.load(std::memory_order_relaxed) - 1;
      refs_.store(remaining, std::memory_order_relaxed);
    } else {
      remaining = refs_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    }
    if (remaining == 0) Free();
  }

  // Wake()
  //
  // Schedules the task if `seq` is its current poll sequence number and it is
  // neither scheduled, finished nor cancelled. While the task is being polled
  // the wake is remembered and the task is re-queued when the poll ends.
  void Wake(uint32_t seq) {
    // Fast path: a confined task woken during its own poll (Yield, or an
    // awaitable whose wake comes before it suspends) is only flagged.
    if (confined_) {
      const uint64_t s = state_.load(std::memory_order_relaxed);
      if ((s & (kCompleted | kCancelled | kScheduled | kRunning)) == kRunning &&
          static_cast<uint32_t>(s >> kSeqShift) == seq) {
        state_.store(s | kScheduled, std::memory_order_relaxed);
        return;
      }
    }
    WakeSlow(seq);
  }

  // WakeAndRelease()
  //
  // Wake(seq), then gives up one reference the caller held (a consumed
  // Waker's): if the wake schedules the task, that reference goes to the
  // queued Runnable instead of a new one being taken. The caller must not
  // touch the header afterwards.
  [[gnu::always_inline]] void WakeAndRelease(uint32_t seq) {
    // Fast path: a suspended task of the TestScheduler driving this thread
    // (see DirectEnqueueTarget) goes straight onto its queue. One test of
    // the state word: kNotFast clear says confined (so the plain store is
    // this thread's to make) and background work (the direct queue's kind).
    const uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & (kCompleted | kCancelled | kScheduled | kRunning | kNotFast)) == 0 &&
        static_cast<uint32_t>(s >> kSeqShift) == seq && TryEnqueueDirect<false>()) {
      state_.store(s | kScheduled, std::memory_order_relaxed);
      return;
    }
    WakeAndReleaseSlow(seq);
  }

  // Poll()
  //
  // Runs the task until its next suspension, consuming the reference the
  // Runnable held. Called only by `Runnable::Run`.
  void Poll() {
    if (PollOnce() == PollResult::kRequeue) ScheduleSelf();
  }

  // PollOnce()
  //
  // Poll() for schedulers that re-queue a task themselves: on kRequeue the
  // task was woken during the poll and the caller must queue it again (the
  // reference moves with it); otherwise the reference was released.
  // (kNotFast: only from PollOnceFast(), which did nothing.)
  enum class PollResult { kRequeue, kSuspended, kFinished, kNotFast };
  PollResult PollOnce() {
    // Inline: this is the scheduler's per-step hot path; the rare endings
    // (cancelled, completed) are out of line.
    uint64_t s = state();
    for (;;) {
      if ((s & kCancelled) != 0) [[unlikely]] return PollClosedWhileQueued();
      SIMSCHED_CHECK((s & (kRunning | kCompleted)) == 0, "polled a running or completed task");
      if (CasState(s, ((s & ~kScheduled) | kRunning) + kSeqOne)) break;
    }
    ResumeLeaf();
    s = state();
    for (;;) {
      // kRootDone: the root ended (see PollEnded); kCancelled: cancelled
      // during the poll.
      if ((s & (kCancelled | kRootDone)) != 0) [[unlikely]] return PollEnded();
      if (CasState(s, s & ~kRunning)) break;
    }
    if ((s & kScheduled) != 0) return PollResult::kRequeue;  // the reference moves on
    Release();
    return PollResult::kSuspended;
  }

  // PollOnceConfined()
  //
  // PollOnce() for a task of a thread-confined scheduler (`confined()`): the
  // same transitions as plain loads and stores, for the TestScheduler's step.
  // `kOutsideTasks`: the caller knows no task is current on this thread (a
  // run loop called from plain code), so none is saved and restored.
  template <bool kOutsideTasks = false>
  [[gnu::always_inline]] PollResult PollOnceConfined() {
    uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & (kCancelled | kRunning | kCompleted)) != 0) [[unlikely]] {
      if ((s & kCancelled) != 0) return PollClosedWhileQueued();
      SIMSCHED_CHECK(false, "polled a running or completed task");
    }
    state_.store(((s & ~kScheduled) | kRunning) + kSeqOne, std::memory_order_relaxed);
    ResumeLeaf<kOutsideTasks>();
    s = state_.load(std::memory_order_relaxed);
    if ((s & (kCancelled | kRootDone)) != 0) [[unlikely]] return PollEnded();  // see PollOnce
    state_.store(s & ~kRunning, std::memory_order_relaxed);
    if ((s & kScheduled) != 0) return PollResult::kRequeue;  // the reference moves on
    // Release(), confined: inline here, whatever the caller's inlining budget.
    const uint32_t remaining = refs_.load(std::memory_order_relaxed) - 1;
    refs_.store(remaining, std::memory_order_relaxed);
    if (remaining == 0) [[unlikely]] Free();
    return PollResult::kSuspended;
  }

  // PollOnceFast()
  //
  // The TestScheduler's fast step: PollOnceConfined() for a confined
  // background task queued to run (one state test covers kind, confinement
  // and the unusual states); kNotFast, touching nothing, for any other task,
  // which the caller then polls the general way. A task it re-queues
  // (kRequeue) is a background task: it goes on the background queue.
  // `kOutsideTasks`: called from a run loop outside any task. The poll then
  // leaves `current_task` pointing at this task when it suspends (the loop's
  // next poll overwrites it: one store a step instead of two); the loop
  // calls EndFastPolls() before it returns or does anything else that may
  // run a task's code. A poll that ends the task clears it first.
  // `trampoline_next` is `resume_next` (a loop of polls may take its
  // address once, which makes the trampoline's check one compare).
  template <bool kOutsideTasks>
  [[gnu::always_inline]] PollResult PollOnceFast(
      std::coroutine_handle<>& trampoline_next = resume_next) {
    const uint64_t s0 = state_.load(std::memory_order_relaxed);
    // Queued to run means kScheduled set: flipping it leaves every bit
    // tested here clear exactly in the fast case, and the new state is then
    // ((s0 & ~kScheduled) | kRunning) + kSeqOne, as in PollOnceConfined.
    const uint64_t cleared = s0 ^ kScheduled;
    if ((cleared & (kScheduled | kRunning | kCompleted | kCancelled | kNotFast)) != 0)
        [[unlikely]] {
      return PollResult::kNotFast;
    }
    state_.store(cleared + (kRunning + kSeqOne), std::memory_order_relaxed);
    if constexpr (kOutsideTasks) {
      current_task = this;
      leaf().resume();
    } else {
      ResumeLeaf<false>();
    }
    // From a run loop, the trampoline runs only if the poll transferred
    // (kTransferred): the state word is loaded here anyway, the
    // thread-local `resume_next` is not. One test covers it and the end.
    constexpr uint64_t kUnusual = kCancelled | kRootDone | (kOutsideTasks ? kTransferred : 0);
    uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & kUnusual) != 0) [[unlikely]] {
      if (kOutsideTasks && (s & kTransferred) != 0) s = RunTrampoline(trampoline_next);
      if ((s & (kCancelled | kRootDone)) != 0) {
        if (kOutsideTasks) current_task = nullptr;
        return PollEnded();
      }
    }
    const uint64_t after = s ^ kRunning;  // kRunning is set: clears it
    state_.store(after, std::memory_order_relaxed);
    if ((after & kScheduled) != 0) return PollResult::kRequeue;  // the reference moves on
    const uint32_t remaining = refs_.load(std::memory_order_relaxed) - 1;
    refs_.store(remaining, std::memory_order_relaxed);
    if (remaining == 0) [[unlikely]] {
      if (kOutsideTasks) current_task = nullptr;
      Free();
    }
    return PollResult::kSuspended;
  }
  // After PollOnceFast<true>() polls: no task is current any more.
  static void EndFastPolls() { current_task = nullptr; }

  // MarkRootDoneOfCurrentTask()
  //
  // Called by a Co's final suspend when nothing awaits it: if `frame` is the
  // leaf of the task being polled, it is the root, and the poll ends the
  // task (kRootDone). A Co driven by hand, inside a task or not, is no
  // task's leaf and marks nothing.
  [[gnu::noinline]] static void MarkRootDoneOfCurrentTask(std::coroutine_handle<> frame) noexcept;

  // WakeSelf()
  //
  // Wake() from the task's own poll (Yield): the task is re-queued when the
  // poll ends.
  void WakeSelf() {
    // One test: kNotFast is clear only on a confined background task (the
    // TestScheduler's usual task), whose state only this thread touches.
    const uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & (kNotFast | kCancelled | kScheduled)) == 0) [[likely]] {
      state_.store(s | kScheduled, std::memory_order_relaxed);
      return;
    }
    WakeSelfSlow();
  }

  // Cancel()
  //
  // Cancels the task: destroys its frame at once if it is not being polled,
  // else the poller destroys it when the poll ends. When another thread is
  // polling it and the cancellation comes from a task or from the
  // destruction of a frame (an owner whose state the task may borrow), waits
  // for that poll to end; plain code outside any task does not wait. No-op
  // on a finished task.
  void Cancel();

  // CancelAndJoin()
  //
  // Cancel() for the owner of a task that may be running on another thread
  // and borrowing the owner's state: also waits for a poll under way on
  // another thread to end, or for another canceller's destruction of the
  // frames to finish (combinators cancel their runners this way).
  void CancelAndJoin();

  // Detach()
  //
  // Marks that no handle will read the result. If the task already completed
  // with an exception, reports it now.
  void Detach();

  // Joining: the awaiting side of `co_await task`. `RegisterJoiner` takes a
  // reference to `record->joiner` and keeps `record` (which must stay alive
  // and in place until unregistered or woken); it returns false (and stores
  // nothing) if the task has already finished. `UnregisterJoiner` drops the
  // record and its reference unless the task's end already took them.
  bool RegisterJoiner(JoinRecord* record);
  void UnregisterJoiner(JoinRecord* record);

  uint64_t state() const { return state_.load(std::memory_order_acquire); }
  uint32_t seq() const { return static_cast<uint32_t>(state() >> kSeqShift); }
  // Completed, or cancelled and no longer being polled (a task cancelled
  // from another thread mid-poll finishes when that poll ends).
  bool finished() const {
    const uint64_t s = state();
    return (s & kCompleted) != 0 || (s & (kCancelled | kRunning | kDestroying)) == kCancelled;
  }
  bool completed() const { return (state() & kCompleted) != 0; }
  bool cancelled() const { return (state() & kCancelled) != 0 && !completed(); }
  bool running() const { return (state() & kRunning) != 0; }

  Scheduler* scheduler() const { return scheduler_; }
  ScheduleKind kind() const { return kind_; }
  bool confined() const { return confined_; }

  // Sends a Runnable for this task to its scheduler, by kind. Adopts one
  // reference.
  void ScheduleSelf() {
    if (!TryEnqueueDirect<true>()) ScheduleSelfVirtual();
  }

  // The exception the task ended with, if any. Requires completed(): the
  // exception shares storage with the wait site, dead once the task ends.
  const std::exception_ptr& exception() const {
    SIMSCHED_CHECK(completed(), "exception() of a task that has not completed");
    return exception_;
  }
  void MarkExceptionObserved() { bits_ |= kExceptionObserved; }

  // Records what the task waits on, for reports; valid until it is resumed.
  // The header keeps one word for it (see wait_word_): a pointer to the
  // record, which must stay alive and unchanged while the task is suspended
  // or queued at this suspension (an awaiter's, in the waiting frame, or an
  // interned one), or the id of an awaited task.
  void SetWaitRecord(const PackedWaitSite* record) {
    wait_word_ = reinterpret_cast<uintptr_t>(record);
    wait_seq_ = seq();
  }
  // The task waits for task `awaited` to finish (`co_await task`).
  void SetWaitJoin(TaskId awaited) {
    wait_word_ = (awaited.value << 1) | kWaitJoinTag;
    wait_seq_ = seq();
  }
  // DescribeWait(what, where) (scheduler/waker.h): the site interned per
  // distinct (what, where, target). The cache hit inline, the miss in
  // RecordWaitSiteSlow, which the inline part tail-calls.
  void RecordWaitSite(std::string_view what, const SourceLocation& where,
                      const WaitTarget* target) {
    if (const PackedWaitSite* cached = FindCachedWaitSite(what, where, target)) [[likely]] {
      return SetWaitRecord(cached);
    }
    return RecordWaitSiteSlow(what, where, target);
  }
  // The miss: interns (filling this thread's cache) and records. Takes the
  // location by value, as scalars in registers, so the caller builds nothing.
  [[gnu::cold, gnu::noinline]] void RecordWaitSiteSlow(std::string_view what, SourceLocation where,
                                                       const WaitTarget* target);
  // By value: the site is interned per distinct (what, where, target), or a
  // join when it names an awaited task.
  void SetWaitSite(const WaitSite& site) {
    if (site.awaited_task.value != 0) return SetWaitJoin(site.awaited_task);
    SetWaitRecord(InternWaitSite(site.what, site.where, site.target));
  }
  // Called when `record` dies (WaitRecord's destructor) on this task's
  // thread: if the task still points at it (it recorded a wait and then did
  // not suspend), it forgets it. A finished task's word holds its exception,
  // never a live record's address, so the comparison leaves that alone.
  void ForgetWaitRecord(const PackedWaitSite* record) {
    if (wait_word_ == reinterpret_cast<uintptr_t>(record)) wait_word_ = 0;
  }
  // What the task waits on now, or an empty site if its current suspension
  // recorded none. A cancelled task waits on nothing: its frames, and the
  // records in them, are gone or going.
  WaitSite wait_site() const {
    const uint64_t s = state();
    if (wait_seq_ != static_cast<uint32_t>(s >> kSeqShift) || (s & kCancelled) != 0) {
      return WaitSite{};
    }
    if ((wait_word_ & kWaitJoinTag) != 0) {
      return WaitSite{"task", SourceLocation(), TaskId{wait_word_ >> 1}, nullptr};
    }
    if (wait_word_ == 0) return WaitSite{};
    return reinterpret_cast<const PackedWaitSite*>(wait_word_)->Unpack();
  }

  // Makes `next` the coroutine this poll resumes next, and suspends the
  // caller: the Co awaiter and final_suspend use this instead of symmetric
  // transfer, because compilers do not always turn symmetric transfer into a
  // tail call (g++ with AddressSanitizer does not), and a deep await chain
  // would then grow the stack. Returns the handle await_suspend must return.
  // `next_promise` is next's promise when it is a Co frame (null otherwise):
  // cancellation walks from the leaf's promise up to destroy innermost first.
  std::coroutine_handle<> TransferTo(std::coroutine_handle<> next, CoPromiseBase* next_promise) {
    SetLeaf(next, next_promise);
    resume_next = next;
    // A task without kNotFast is confined, and this is its poll's thread:
    // only this thread writes its state. (Fixed flag: the load may race.)
    const uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & kNotFast) == 0) state_.store(s | kTransferred, std::memory_order_relaxed);
    return std::noop_coroutine();
  }

  // The coroutine to resume on the next poll: the innermost frame the task
  // is suspended in (null once the frames are destroyed), and its promise if
  // it is a Co frame.
  std::coroutine_handle<> leaf() const {
    return std::coroutine_handle<>::from_address(leaf_);
  }
  CoPromiseBase* leaf_promise() const {
    return (bits_ & kLeafNotCo) != 0 || leaf_ == nullptr ? nullptr : CoPromiseAt(leaf());
  }

 protected:
  TaskHeader(Scheduler& scheduler, ScheduleKind kind, std::coroutine_handle<> root,
             CoPromiseBase* root_promise, bool confined)
      : scheduler_(&scheduler), kind_(kind), confined_(confined) {
    if (kind != ScheduleKind::kBackground || !confined) {
      state_.store(kScheduled | kNotFast, std::memory_order_relaxed);
    }
    SetLeaf(root, root_promise);
  }
  ~TaskHeader() {
    if (completed()) exception_.~exception_ptr();
  }
  // For TaskState<T> with a non-void T, before the task is spawned.
  void MarkHasResult() { bits_ |= kHasResult; }

  // The root frame: it follows the header's room in the same block (co.h),
  // so it is not stored. Valid until the frames are destroyed.
  virtual std::coroutine_handle<> RootFrame() const noexcept = 0;
  // Moves the value out of the finished root frame's promise into the
  // header's result slot, and returns the exception the root ended with.
  virtual std::exception_ptr HarvestResult() noexcept = 0;
  // Destroys the header and frees the block it shares with its (already
  // destroyed) root frame: see co.h, "Room for a task header".
  virtual void Free() noexcept = 0;

 private:
  bool CasState(uint64_t& expected, uint64_t desired) {
    if (confined_) {
      state_.store(desired, std::memory_order_relaxed);
      return true;
    }
    return state_.compare_exchange_weak(expected, desired, std::memory_order_acq_rel,
                                        std::memory_order_acquire);
  }
  void WakeSlow(uint32_t seq);
  // WakeSelf() for a task that is not a confined background task, or that
  // is cancelled or already scheduled.
  [[gnu::noinline]] void WakeSelfSlow();
  void WakeAndReleaseSlow(uint32_t seq);
  // ScheduleSelf() through the scheduler's virtual Schedule* functions.
  void ScheduleSelfVirtual();
  // ScheduleSelf() for a background task of the scheduler driving on this
  // thread that accepts direct enqueues (see DirectEnqueueTarget): pushes the
  // header onto its queue, adopting one reference. False if it does not apply.
  // `kCheckKind`: whether the caller still needs to know it is background
  // work (a caller that tested kNotFast knows).
  template <bool kCheckKind>
  [[gnu::always_inline]] bool TryEnqueueDirect();
  // Resumes the task where it is suspended, as the current task, and runs
  // the resumption trampoline until the poll's last suspension.
  // `kOutsideTasks`: no task is current before (see PollOnceConfined).
  template <bool kOutsideTasks = false>
  [[gnu::always_inline]] void ResumeLeaf() {
    // A poll inside another poll (BlockOn from a lane task) keeps the outer
    // poll's trampoline state aside. Outside any poll `resume_next` is null.
    if (!kOutsideTasks && current_task != nullptr) [[unlikely]] return ResumeLeafNested();
    current_task = this;
    leaf().resume();
    // The resumption trampoline: awaits of Co children and their returns
    // hand control back here instead of nesting calls.
    while (resume_next) [[unlikely]] std::exchange(resume_next, nullptr).resume();
    current_task = nullptr;
  }
  void ResumeLeafNested();
  // PollOnceFast<true>()'s trampoline, for a poll that set kTransferred:
  // resumes `trampoline_next` (resume_next) until it is null, clears the
  // flag and returns the state word.
  [[gnu::noinline]] uint64_t RunTrampoline(std::coroutine_handle<>& trampoline_next);
  // `bits_`: the task's exception was observed (read, rethrown or
  // reported); the leaf is not a Co frame, so it has no promise to find
  // (CoPromiseAt); the root has a result (kHasResult, set before the task
  // is spawned). The second changes only during polls and destruction,
  // the first only after completion: never both at once.
  static constexpr uint8_t kExceptionObserved = 1;
  static constexpr uint8_t kLeafNotCo = 2;
  // Fixed at construction: the root returns a value (not `Co<void>`), which
  // the end of the task moves into the header (HarvestResult). Without it,
  // the confined finish (PollEnded) takes the exception itself, no virtual
  // call.
  static constexpr uint8_t kHasResult = 4;
  void SetLeaf(std::coroutine_handle<> next, CoPromiseBase* next_promise) {
    leaf_ = next.address();
    if (next_promise == nullptr || CoPromiseAt(next) != next_promise) [[unlikely]] {
      bits_ |= kLeafNotCo;
    } else {
      bits_ &= ~kLeafNotCo;
    }
  }
  PollResult PollClosedWhileQueued();
  PollResult PollEnded();
  void LockJoin();
  void UnlockJoin();
  void Complete();
  void DestroyFrame();
  void Finish();
  void CancelImpl(bool join);
  void WaitForFramesGone();

  // Data. 88 bytes with the vtable pointer (room 96); every Co frame reserves room
  // for one (co.h), so each byte here is a byte of every frame
  // (task_header_layout_test). Coldest first: the words a poll reads (the
  // id, which the TestScheduler's step hashes into the trace, the state,
  // the reference count and flags, the leaf) are the last 32 bytes, right in
  // front of the root frame, so that a poll touches two cache lines of a
  // task's block (three when the block's alignment splits them) where
  // header and frame far apart took three or four.

 public:
  // Scratch fields owned by the task's scheduler. `enqueue_seq` is written
  // when the task is queued (exactly one Runnable exists then, so one field
  // suffices); `live_slot` is the task's place in the scheduler's index of
  // live tasks (internal/live_task_index.h). (A foreground task's lane is
  // in its metadata: it is fixed per spawn site.)
  static constexpr uint32_t kNoLiveSlot = UINT32_MAX;
  uint64_t enqueue_seq = 0;
  uint32_t live_slot = kNoLiveSlot;

 private:
  // The wait site (see SetWaitRecord): `wait_seq_` (the poll sequence
  // number it was recorded at) and the word below. Task ids are below 2^63
  // and a PackedWaitSite is 8-aligned, so bit 0 of `wait_word_` says which
  // of the two it holds.
  static constexpr uintptr_t kWaitJoinTag = 1;
  uint32_t wait_seq_ = 0;
  JoinRecord* joiner_ = nullptr;  // the record of the task awaiting this one

 protected:
  // A finished task waits on nothing: once it completes, the wait word
  // holds the exception it ended with (Complete invalidates the site
  // first). Constructed when the task completes; destroyed with the header
  // if it did.
  union {
    uintptr_t wait_word_ = 0;
    std::exception_ptr exception_;
  };

 private:
  Scheduler* scheduler_;

 public:
  // Read by reports and spawn functions; `metadata.id` (its last word) also
  // by the step.
  PackedTaskMetadata metadata;

 private:
  // The hot words (see above).
  std::atomic<uint64_t> state_{kScheduled};
  std::atomic<uint32_t> refs_{3};
  ScheduleKind kind_;
  bool confined_;
  std::atomic<bool> join_lock_{false};
  uint8_t bits_ = 0;  // kExceptionObserved, kLeafNotCo
  // The innermost frame (see leaf()); null once the frames are gone. Kept
  // current by TransferTo.
  void* leaf_ = nullptr;
};

inline TaskHeader* CurrentTask() { return current_task; }

// Here, not in direct_enqueue.h: it needs both TaskHeader and the target.
template <bool kCheckKind>
inline bool TaskHeader::TryEnqueueDirect() {
  const DirectEnqueueTarget& target = direct_enqueue_target;
  if (target.scheduler != scheduler_) return false;
  if (kCheckKind && kind_ != ScheduleKind::kBackground) return false;
  if (RingQueue<TaskHeader*>* const queue = target.queue) [[likely]] {
    queue->PushBackUnrotated(this);
  } else {
    target.enqueue(target.context, *this);
  }
  return true;
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TASK_HEADER_H_
