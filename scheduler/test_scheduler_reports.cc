// TestScheduler's reports: trace entries as text, the deadlock report, and
// the descriptions of live tasks and of who waits for whom that failures
// and `DescribeTask` print. The scheduler itself is test_scheduler.cc and
// the files listed at its top.

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::TaskHeader;

std::string TraceEntry::DebugString() const {
  std::string out = absl::StrCat("step ", step, " t=", FormatDuration(time), " task ", task.value);
  if (label.has_value()) absl::StrAppend(&out, " \"", std::string(label->name()), "\"");
  if (lane.has_value()) absl::StrAppend(&out, " [lane ", *lane, "]");
  if (internal) absl::StrAppend(&out, " [internal]");
  if (cause == WakeCause::kSpawned) {
    absl::StrAppend(&out, " started (spawned at ", FormatLocation(spawn_location),
                    woken_by.value != 0 ? absl::StrCat(" by task ", woken_by.value)
                                        : std::string(" from outside any task"),
                    ")");
    return out;
  }
  if (resumed_after_task.value != 0) {
    absl::StrAppend(&out, " resumed after task ", resumed_after_task.value, " finished");
  } else if (!resumed_what.empty()) {
    absl::StrAppend(&out, " resumed after ", resumed_what, " at ", FormatLocation(resumed_at));
  } else if (cause == WakeCause::kItself) {
    absl::StrAppend(&out, " resumed after yielding");
  } else {
    absl::StrAppend(&out, " resumed (its awaitable records no wait site)");
  }
  // "woken by a channel send from task 2", or without a reason "woken by
  // task 2".
  const std::string by =
      wake_reason.empty() ? std::string() : absl::StrCat(" by ", std::string(wake_reason));
  switch (cause) {
    case WakeCause::kTask:
      absl::StrAppend(&out, ", woken", by, wake_reason.empty() ? " by task " : " from task ",
                      woken_by.value);
      break;
    case WakeCause::kTimer: absl::StrAppend(&out, ", woken by a timer"); break;
    case WakeCause::kOutsideTask:
      absl::StrAppend(&out, ", woken", by, " from outside any task");
      break;
    case WakeCause::kForeignThread:
      absl::StrAppend(&out, ", woken", by, " from another thread");
      break;
    case WakeCause::kItself:
    case WakeCause::kSpawned:
    case WakeCause::kUnknown: break;
  }
  absl::StrAppend(&out, " (task spawned at ", FormatLocation(spawn_location), ")");
  return out;
}

bool operator==(const TraceEntry& a, const TraceEntry& b) {
  return a.step == b.step && a.time == b.time && a.task == b.task && a.label == b.label &&
         a.lane == b.lane && a.spawn_location.line() == b.spawn_location.line() &&
         std::string_view(a.spawn_location.file_name()) == b.spawn_location.file_name() &&
         a.resumed_what == b.resumed_what && a.resumed_at.line() == b.resumed_at.line() &&
         a.resumed_after_task == b.resumed_after_task && a.cause == b.cause &&
         a.woken_by == b.woken_by && a.wake_reason == b.wake_reason && a.internal == b.internal &&
         a.session == b.session;
}

size_t TestScheduler::StuckTaskCount() const {
  if (options_.allow_idle_tasks) return 0;
  size_t stuck = 0;
  live_.ForEach([&](const TaskHeader& task) {
    if (!IdleAllowed(task)) ++stuck;
  });
  return stuck;
}

absl::Status TestScheduler::CheckNoStuckTasks() const {
  if (!background_.empty() || lane_queued_ > 0 || !deprioritized_.empty() ||
      timers_.live() > 0 || StuckTaskCount() == 0) {
    return absl::OkStatus();
  }
  return DeadlockFailure("the simulation");
}

absl::Status TestScheduler::DeadlockFailure(std::string_view operation) const {
  return WithOutcome(
      absl::FailedPreconditionError(absl::StrCat(
          "deadlock: ", std::string(operation), " ended with ", StuckTaskCount(),
          " task(s) suspended that nothing can wake: no task is runnable and no timer is "
          "pending. (A server parked on purpose is allowed with "
          "SimTestOptions/TestSchedulerOptions::allow_idle_tasks or "
          "TestScheduler::AllowIdle(task).)\n",
          RunSummary(), "\n", DescribeWaitFor())),
      Outcome::kDeadlock);
}


std::vector<TaskId> TestScheduler::LiveTasks() const {
  std::vector<TaskId> ids;
  ids.reserve(live_.size());
  live_.ForEach([&ids](const TaskHeader& task) { ids.push_back(task.metadata.id); });
  return ids;
}

std::string TestScheduler::DescribeHeader(const TaskHeader& task) const {
  std::string out = task.metadata.DebugString();
  if (task.kind() == internal::ScheduleKind::kForeground) {
    absl::StrAppend(&out, " [lane ", task.metadata.lane(), "]");
  }
  const uint64_t state = task.state();
  const WaitSite site = task.wait_site();
  if ((state & TaskHeader::kRunning) != 0) {
    absl::StrAppend(&out, ": running");
  } else if ((state & TaskHeader::kScheduled) != 0) {
    absl::StrAppend(&out, ": queued to run");
    // The wait site stays valid until the next poll: say what woke it.
    if (site.awaited_task.value != 0) {
      absl::StrAppend(&out, " (woken by task ", site.awaited_task.value, " finishing)");
    } else if (!site.what.empty()) {
      absl::StrAppend(&out, " (woken from ", std::string(site.what), " at ",
                      FormatLocation(site.where), ")");
    }
  } else if (site.awaited_task.value != 0) {
    absl::StrAppend(&out, ": waiting for task ", site.awaited_task.value, " to finish");
    if (!live_.Contains(site.awaited_task)) {
      absl::StrAppend(&out, " (already finished)");
    }
  } else if (!site.what.empty()) {
    absl::StrAppend(&out, ": waiting on ", std::string(site.what), " at ",
                    FormatLocation(site.where));
    // Only while suspended: the target lives as long as the wait does.
    if (site.target != nullptr) {
      if (std::string blocker = site.target->DescribeBlocker(); !blocker.empty()) {
        absl::StrAppend(&out, "; it is ", blocker);
      }
    }
  } else {
    absl::StrAppend(&out,
                    ": suspended at an awaitable that does not record its wait site "
                    "(see DescribeWait in scheduler/waker.h)");
  }
  return out;
}

std::string TestScheduler::DescribeTask(TaskId id) const {
  const TaskHeader* task = live_.Find(id);
  if (task == nullptr) return absl::StrCat("task ", id.value, ": not running");
  return DescribeHeader(*task);
}

std::string TestScheduler::DescribeLiveTasks() const {
  std::string out = absl::StrCat("live tasks (", live_.size(), "):");
  live_.ForEach(
      [&](const TaskHeader& task) { absl::StrAppend(&out, "\n  ", DescribeHeader(task)); });
  return out;
}

std::string TestScheduler::DescribeWaitFor() const {
  // Who a suspended task waits for, if one task is known to be in its way.
  auto blocking_task = [](const TaskHeader& task) -> TaskId {
    if ((task.state() & (TaskHeader::kRunning | TaskHeader::kScheduled)) != 0) return TaskId{};
    const WaitSite site = task.wait_site();
    if (site.awaited_task.value != 0) return site.awaited_task;
    return site.target != nullptr ? site.target->BlockingTask() : TaskId{};
  };
  std::string stuck, idle;
  size_t stuck_count = 0, idle_count = 0;
  std::vector<const TaskHeader*> live;
  live.reserve(live_.size());
  live_.ForEach([&](const TaskHeader& task) {
    const bool allowed = IdleAllowed(task);
    absl::StrAppend(allowed ? &idle : &stuck, "\n  ", DescribeHeader(task));
    ++(allowed ? idle_count : stuck_count);
    live.push_back(&task);
  });
  std::string out = absl::StrCat("stuck tasks (", stuck_count, "):", stuck);
  // Wait-for cycles, each reported once, from its lowest task id (the list
  // is in id order, so the walk and the report are deterministic).
  absl::flat_hash_set<uint64_t> reported;
  for (const TaskHeader* start : live) {
    if (reported.contains(start->metadata.id.value)) continue;
    std::vector<const TaskHeader*> path;
    const TaskHeader* at = start;
    while (at != nullptr && path.size() <= live_.size()) {
      path.push_back(at);
      const TaskId next = blocking_task(*at);
      if (next.value == 0) break;
      at = live_.Find(next);
      if (at == start) {
        std::string cycle = absl::StrCat("\nwait-for cycle: task ", start->metadata.id.value);
        for (const TaskHeader* t : path) {
          const WaitSite site = t->wait_site();
          const TaskId holder = blocking_task(*t);
          if (site.awaited_task.value != 0) {
            absl::StrAppend(&cycle, " -> awaits task ", holder.value);
          } else {
            absl::StrAppend(&cycle, " -> ", std::string(site.what), " at ",
                            FormatLocation(site.where), ", held by task ", holder.value);
          }
          reported.insert(t->metadata.id.value);
        }
        absl::StrAppend(&out, cycle);
        break;
      }
      if (at != nullptr && at->metadata.id < start->metadata.id) break;  // seen from there
    }
  }
  if (idle_count > 0) {
    absl::StrAppend(&out, "\nidle by design (allow_idle_tasks / AllowIdle) (", idle_count,
                    "):", idle);
  }
  return out;
}

std::string TestScheduler::RunSummary() const {
  std::string out =
      absl::StrFormat("seed %d, step %d, virtual time %s, trace hash 0x%016x", options_.seed,
                      steps_, FormatDuration(Elapsed()), TraceHash());
  // The default strategy is left out, so reports read as before.
  if (!uniform_pick_) absl::StrAppend(&out, ", strategy ", strategy_.spec().ToString());
  return out;
}

}  // namespace simsched
