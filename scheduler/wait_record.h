// File: scheduler/wait_record.h
// -----------------------------------------------------------------------------
//
// `WaitRecord` is what a suspended task waits on (a description, where the
// `co_await` was written and, optionally, a `WaitTarget` that can say who is
// in the way), kept in the awaiter itself. A task's header holds only a
// pointer to the record while the task waits, so a task and every `Co` frame
// carry no wait site of their own (docs/performance.md, Memory).
//
// Most awaitables call `DescribeWait(what, where)` (scheduler/waker.h): that
// records one interned copy per distinct (what, where), which needs nothing
// from the awaiter, but grows with the number of distinct descriptions. An
// awaitable whose description or target is per object (a name owned by the
// awaited object, a target) holds a `WaitRecord` member instead and calls
// `DescribeWait(record)`. The record must stay alive and unchanged while the
// task waits, which a member of the awaiter does: the awaiter lives in the
// waiting frame until the task resumes.
//
// Example (see docs/writing-awaitables.md):
//
//   struct QueuePopAwaitable {
//     Queue& queue;
//     simsched::WaitRecord record;  // queue.name() is per object
//     bool await_ready() { return !queue.empty(); }
//     void await_suspend(std::coroutine_handle<>) {
//       record.Set(queue.name(), simsched::SourceLocation::current(), &queue);
//       simsched::DescribeWait(record);
//       queue.AddWaiter(simsched::CurrentWaker());
//     }
//     Item await_resume() { return queue.Pop(); }
//   };

#ifndef SIMSCHED_SCHEDULER_WAIT_RECORD_H_
#define SIMSCHED_SCHEDULER_WAIT_RECORD_H_

#include <string_view>

#include "scheduler/internal/task_header.h"
#include "scheduler/internal/wait_site.h"
#include "scheduler/source_location.h"

namespace simsched {

class WaitRecord {
 public:
  WaitRecord() = default;
  WaitRecord(std::string_view what, SourceLocation where, const WaitTarget* target = nullptr)
      : site_(what, where, target) {}
  // Copies describe the same wait; the task's header points at one of them
  // only, the one given to DescribeWait.
  WaitRecord(const WaitRecord& other) : site_(other.site_) {}
  WaitRecord& operator=(const WaitRecord& other) {
    site_ = other.site_;
    return *this;
  }
  // If the task being polled still points at this record (it recorded the
  // wait and then did not suspend), it forgets it: a report never reads a
  // dead record.
  ~WaitRecord() {
    if (internal::TaskHeader* task = internal::current_task) task->ForgetWaitRecord(&site_);
  }

  // Set()
  //
  // Describes the wait: `what` ("Queue 'jobs'") must stay valid while the
  // task waits; `target`, if not null, too. Call it before DescribeWait, not
  // while a task waits on this record.
  void Set(std::string_view what, SourceLocation where, const WaitTarget* target = nullptr) {
    site_ = internal::PackedWaitSite(what, where, target);
  }

  std::string_view what() const { return site_.what(); }
  SourceLocation where() const { return site_.where(); }
  const WaitTarget* target() const { return site_.target(); }

 private:
  friend void DescribeWait(const WaitRecord& record);
  internal::PackedWaitSite site_;
};

// DescribeWait() with a WaitRecord
//
// Records that the current task is about to wait on what `record` says, for
// deadlock and leak reports. Call it from `await_suspend`, just before the
// task suspends; `record` must stay alive and unchanged until the task is
// resumed (a member of the awaiter). No-op outside a task.
inline void DescribeWait(const WaitRecord& record) {
  if (internal::TaskHeader* task = internal::current_task) task->SetWaitRecord(&record.site_);
}

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_WAIT_RECORD_H_
