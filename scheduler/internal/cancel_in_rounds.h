// Internal: how a scheduler cancels every task it still holds when it shuts
// down, shared by the TestScheduler and the ThreadPoolScheduler.
//
// Frame destructors run during cancellation and may spawn or wake tasks, so
// one pass is not enough: cancel in rounds until a round finds nothing.
//
//   internal::CancelInRounds(
//       [&](std::vector<TaskHeader*>& queued) { /* move queued headers here */ },
//       [&](std::vector<TaskHeader*>& live) { /* AddRef and list live tasks */ });

#ifndef SIMSCHED_SCHEDULER_INTERNAL_CANCEL_IN_ROUNDS_H_
#define SIMSCHED_SCHEDULER_INTERNAL_CANCEL_IN_ROUNDS_H_

#include <vector>

#include "absl/functional/function_ref.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/runnable.h"

namespace simsched::internal {

// CancelInRounds()
//
// Each round: `take_queued` moves the headers of queued Runnables (one
// reference each) into its argument, and dropping each Runnable cancels its
// task; then `take_live` lists every other live task, each with a reference
// added, in a deterministic order (by id), and each not yet cancelled is
// cancelled; all are released. Returns after a round that dropped no Runnable
// and cancelled no task.
inline void CancelInRounds(absl::FunctionRef<void(std::vector<TaskHeader*>&)> take_queued,
                           absl::FunctionRef<void(std::vector<TaskHeader*>&)> take_live) {
  for (;;) {
    std::vector<TaskHeader*> queued;
    take_queued(queued);
    // Dropping each cancels its task (frames destroyed, RAII runs).
    for (TaskHeader* task : queued) Runnable::Adopt(task);
    std::vector<TaskHeader*> live;
    take_live(live);
    size_t cancelled = 0;
    for (TaskHeader* task : live) {
      // Already cancelled and still listed: its frames are being destroyed
      // right now (up this thread's stack, when the scheduler's last owner
      // was one of its frames, or on another thread). Not progress.
      if (!task->cancelled()) {
        task->Cancel();
        ++cancelled;
      }
      task->Release();
    }
    if (queued.empty() && cancelled == 0) return;
  }
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_CANCEL_IN_ROUNDS_H_
