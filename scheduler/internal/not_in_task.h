// Internal: the one error an awaitable gives when it is awaited outside a
// simsched task (from plain code, or from a coroutine no scheduler runs).
//
// Every awaitable that needs the current task calls one of these, so the
// message is written once:
//
//   if (!InTask()) internal::ThrowNotInTask("Mutex::Lock()", "use TryLock");
//   internal::TaskHeader& task = internal::RequireCurrentTask("Sleep()");

#ifndef SIMSCHED_SCHEDULER_INTERNAL_NOT_IN_TASK_H_
#define SIMSCHED_SCHEDULER_INTERNAL_NOT_IN_TASK_H_

#include "scheduler/internal/task_header.h"

namespace simsched::internal {

// ThrowNotInTask()
//
// Throws std::logic_error: "simsched: <what> was awaited outside a simsched
// task; spawn the coroutine on a Scheduler (Spawn, or BlockOn from plain
// code)", followed by ", or <alternative>" when there is a form that does not
// wait (TryLock, TryRecv, ...).
[[noreturn]] void ThrowNotInTask(const char* what, const char* alternative = nullptr);

// RequireCurrentTask()
//
// Returns the task being polled on this thread, or throws as ThrowNotInTask.
inline TaskHeader& RequireCurrentTask(const char* what) {
  TaskHeader* task = current_task;
  if (task == nullptr) [[unlikely]] ThrowNotInTask(what);
  return *task;
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_NOT_IN_TASK_H_
