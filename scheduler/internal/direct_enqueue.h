// Internal: the per-thread direct-enqueue target, a wake's shortcut onto the
// queue of the scheduler driving this thread.
//
// While a scheduler drives its tasks on this thread and queuing a woken
// background task of it is no more than pushing its header (the
// TestScheduler), it installs itself here; TaskHeader::WakeAndRelease and
// ScheduleSelf then push the header themselves (TaskHeader::TryEnqueueDirect,
// in task_header.h, which sees both types), skipping the virtual Schedule
// call, its thread check and the Runnable.
//
// Example (a run loop):
//
//   internal::DirectEnqueueScope direct(
//       internal::DirectEnqueueTarget{this, &background_, nullptr, nullptr});
//   // ... poll tasks: their wakes on this thread go onto background_.
//
// The thread-local is defined in task_header.cc, whose inlined wakes read it
// most: a definition in the same file keeps that read one instruction.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_DIRECT_ENQUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_DIRECT_ENQUEUE_H_

#include <utility>

#include "scheduler/internal/ring_queue.h"

namespace simsched {

class Scheduler;

namespace internal {

class TaskHeader;

// DirectEnqueueTarget
//
// Set (per thread) by a scheduler while it drives its tasks on this thread,
// when queuing a woken background task of it is nothing more than pushing
// its header onto `queue` (the TestScheduler without trace recording). That
// queue must never be rotated (RingQueue::rotated(): the uniform pick's
// queue), so the push is a plain array's. With `queue` null,
// `enqueue(context, task)` queues it instead (the strategy's priority or
// FIFO bookkeeping, then the push): one load and test tell the two apart.
// A wake on this thread of such a task then
// skips the virtual Schedule call, its thread check and the Runnable.
// Another thread never matches (the variable is thread-local), so wakes
// from there still take the scheduler's own, checked path.
struct DirectEnqueueTarget {
  const Scheduler* scheduler = nullptr;
  RingQueue<TaskHeader*>* queue = nullptr;
  void (*enqueue)(void* context, TaskHeader& task) = nullptr;
  void* context = nullptr;
};
extern thread_local constinit DirectEnqueueTarget direct_enqueue_target;

// Installs `target` for its lifetime on this thread, restoring the previous
// one after (drives nest: BlockOn from a lane task).
class DirectEnqueueScope {
 public:
  explicit DirectEnqueueScope(DirectEnqueueTarget target)
      : previous_(std::exchange(direct_enqueue_target, target)) {}
  ~DirectEnqueueScope() { direct_enqueue_target = previous_; }
  DirectEnqueueScope(const DirectEnqueueScope&) = delete;
  DirectEnqueueScope& operator=(const DirectEnqueueScope&) = delete;

 private:
  DirectEnqueueTarget previous_;
};

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_DIRECT_ENQUEUE_H_
