// ThreadPoolScheduler: scheduling onto the run queues, the worker threads,
// work stealing and idle workers. See "How the pool works" in
// thread_pool_scheduler.cc.

#include "scheduler/thread_pool_scheduler.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/pool_parts.h"

namespace simsched {

using internal::PoolBlockWaiter;
using internal::PoolIdBlock;
using internal::PoolWorker;
using internal::TaskHeader;

// -----------------------------------------------------------------------------
// Scheduling
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::Schedule(Runnable runnable) {
  EnqueueBackground(runnable.ReleaseHeader());
}

void ThreadPoolScheduler::ScheduleLabeled(Runnable runnable, TaskLabel) {
  EnqueueBackground(runnable.ReleaseHeader());  // labels carry no priority here
}

void ThreadPoolScheduler::ScheduleForeground(Runnable runnable) {
  EnqueueForeground(runnable.ReleaseHeader());
}

void ThreadPoolScheduler::EnqueueBackground(TaskHeader* task) {
  if (!accepting_.load(std::memory_order_acquire)) [[unlikely]] return HoldForShutdown(task);
  PoolWorker* local = internal::tls_worker;
  PoolWorker& target = (local != nullptr && local->pool == this) ? *local : *injector_;
  bool became_non_empty;
  {
    std::lock_guard<internal::SpinLock> lock(target.lock);
    target.queue.push_back(task);
    became_non_empty = internal::SyncQueued(target);
  }
  // Only the push that makes a queue non-empty looks for a worker to wake:
  // whoever handles that first task finds the ones pushed after it too, and
  // a worker taking a batch wakes helpers (PopInjected). So pushing to a
  // busy queue touches no cache line that idle workers poll.
  if (became_non_empty) NotifyWorkAvailable();
}

void ThreadPoolScheduler::EnqueueForeground(TaskHeader* task) {
  if (!accepting_.load(std::memory_order_acquire)) [[unlikely]] return HoldForShutdown(task);
  std::lock_guard<std::mutex> lock(main_mu_);
  main_queue_.push_back(task);
  if (main_waiting_) main_cv_.notify_one();
}

void ThreadPoolScheduler::HoldForShutdown(TaskHeader* task) {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (!shutdown_over_) {
      held_for_shutdown_.push_back(task);
      return;
    }
  }
  Runnable::Adopt(task);  // after shutdown: dropping cancels the task
}

void ThreadPoolScheduler::RunTask(TaskHeader* task) {
  if (task->PollOnce() != TaskHeader::PollResult::kRequeue) return;
  // Woken during its poll (Yield does this): queue it again, the reference
  // moving along.
  if (task->kind() == internal::ScheduleKind::kForeground) {
    EnqueueForeground(task);
  } else {
    EnqueueBackground(task);
  }
}

bool ThreadPoolScheduler::IsMainThread() const {
  return std::this_thread::get_id() == main_thread_;
}

void ThreadPoolScheduler::NotifyWorkAvailable() {
  // No lost wake-up: the pusher publishes that the queue is non-empty
  // (SyncQueued), then loads `searching_` and `sleepers_`; a worker going
  // idle changes those, then loads the queues' `queued` (HasVisibleWork).
  // All four are seq_cst, so in their single total order one side sees the
  // other: either the pusher sees the searcher or sleeper (and relies on it,
  // or wakes it), or the worker sees the work. A searching worker will find
  // the work; only if none searches is a sleeper woken.
  if (searching_.load(std::memory_order_seq_cst) != 0) return;
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> lock(idle_mu_);
  if (sleepers_.load(std::memory_order_relaxed) <= wake_tokens_) return;  // enough on the way
  ++wake_tokens_;
  idle_cv_.notify_one();
}

// -----------------------------------------------------------------------------
// Workers
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::WorkerMain(uint32_t index) {
  PoolWorker& self = *workers_[index];
  internal::tls_worker = &self;
  internal::SetThreadName(absl::StrCat(options_.thread_name_prefix, "-w", index));
  bool was_idle = false;
  while (!stopping_workers_.load(std::memory_order_relaxed)) {
    if (TaskHeader* next = FindWork(self)) {
      if (was_idle) {
        // A pusher may have skipped waking anyone because this worker was
        // searching (or about to be woken); if work is still waiting, pass
        // the baton.
        if (HasVisibleWork()) NotifyWorkAvailable();
        was_idle = false;
      }
      RunTask(next);
      continue;
    }
    internal::FlushReturns(self.pending_returns);  // before going idle
    if (!WaitForWork()) break;
    was_idle = true;
  }
  internal::FlushReturns(self.pending_returns);
  internal::tls_worker = nullptr;
}

TaskHeader* ThreadPoolScheduler::FindWork(PoolWorker& self) {
  if (++self.ticks % internal::kInjectorCheckInterval == 0) {
    if (TaskHeader* next = PopInjected(self)) return next;
  }
  if (TaskHeader* next = PopLocal(self)) return next;
  if (TaskHeader* next = PopInjected(self)) return next;
  return Steal(self);
}

TaskHeader* ThreadPoolScheduler::PopLocal(PoolWorker& self) {
  if (self.queued.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard<internal::SpinLock> lock(self.lock);
  const size_t size = self.queue.size();
  if (size == 0) return nullptr;
  TaskHeader* next = self.queue.pop_front();
  internal::SyncQueued(self);
  // The next two tasks run soon: start loading their headers now.
  if (size > 1) internal::PrefetchTask(self.queue[0]);
  if (size > 2) internal::PrefetchTask(self.queue[1]);
  return next;
}

TaskHeader* ThreadPoolScheduler::PopInjected(PoolWorker& self) {
  PoolWorker& injector = *injector_;
  if (injector.queued.load(std::memory_order_relaxed) == 0) return nullptr;
  TaskHeader* batch[internal::kBatchMax];
  size_t taken;
  bool leftover;
  {
    std::lock_guard<internal::SpinLock> lock(injector.lock);
    // A fair share, so the other workers find some too.
    const size_t share = injector.queue.size() / workers_.size() + 1;
    taken = internal::TakeFront(injector.queue, share, batch);
    internal::SyncQueued(injector);
    leftover = !injector.queue.empty();
  }
  if (taken == 0) return nullptr;
  if (taken > 1) {
    std::lock_guard<internal::SpinLock> lock(self.lock);
    for (size_t i = 1; i < taken; ++i) self.queue.push_back(batch[i]);
    internal::SyncQueued(self);
  }
  // Work left here (or in this worker's queue) is for the others: pushes
  // after the first did not wake anyone (see EnqueueBackground).
  if (taken > 1 || leftover) NotifyWorkAvailable();
  return batch[0];
}

TaskHeader* ThreadPoolScheduler::Steal(PoolWorker& self) {
  const size_t count = workers_.size();
  if (count < 2) return nullptr;
  const size_t start = internal::SplitMix(self.rng) % count;
  for (size_t i = 0; i < count; ++i) {
    PoolWorker& victim = *workers_[(start + i) % count];
    if (&victim == &self || victim.queued.load(std::memory_order_relaxed) == 0) continue;
    TaskHeader* batch[internal::kBatchMax];
    size_t taken;
    {
      std::lock_guard<internal::SpinLock> lock(victim.lock);
      taken = internal::TakeFront(victim.queue, (victim.queue.size() + 1) / 2, batch);
      internal::SyncQueued(victim);
    }
    if (taken == 0) continue;
    if (taken > 1) {
      std::lock_guard<internal::SpinLock> lock(self.lock);
      for (size_t j = 1; j < taken; ++j) self.queue.push_back(batch[j]);
      internal::SyncQueued(self);
    }
    return batch[0];
  }
  return nullptr;
}

bool ThreadPoolScheduler::HasVisibleWork() const {
  // seq_cst: see NotifyWorkAvailable.
  if (injector_->queued.load(std::memory_order_seq_cst) != 0) return true;
  for (const auto& worker : workers_) {
    if (worker->queued.load(std::memory_order_seq_cst) != 0) return true;
  }
  return false;
}

bool ThreadPoolScheduler::WaitForWork() {
  // Search first, spinning: work often arrives within microseconds, and a
  // sleep costs a system call on both sides. Only a few workers search at a
  // time, so idle workers do not steal CPU time from busy threads.
  if (searching_.fetch_add(1, std::memory_order_seq_cst) < max_searchers_) {
    for (int round = 0; round < internal::kSpinRoundsPause + internal::kSpinRoundsYield;
         ++round) {
      if (stopping_workers_.load(std::memory_order_relaxed) || HasVisibleWork()) {
        searching_.fetch_sub(1, std::memory_order_seq_cst);
        return !stopping_workers_.load(std::memory_order_relaxed);
      }
      if (round < internal::kSpinRoundsPause) {
        for (int i = 0; i < 32; ++i) internal::CpuRelax();
      } else {
        std::this_thread::yield();
      }
    }
  }
  std::unique_lock<std::mutex> lock(idle_mu_);
  // Registered as a sleeper before leaving the searchers, so a pusher that
  // sees no searcher sees this sleeper.
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  searching_.fetch_sub(1, std::memory_order_seq_cst);
  // From here HasVisibleWork sees any push whose pusher did not see this
  // sleeper (see NotifyWorkAvailable).
  bool keep_running = true;
  for (;;) {
    if (stopping_workers_.load(std::memory_order_relaxed)) {
      keep_running = false;
      break;
    }
    if (HasVisibleWork() || wake_tokens_ > 0) break;
    idle_cv_.wait(lock);
  }
  // A token stands for a notified sleeper that has not left yet. Every
  // leaving sleeper takes one, whatever woke it: a token left behind would
  // make NotifyWorkAvailable believe a wake is on its way when none is
  // (taking one too many only costs a spare wake later).
  if (wake_tokens_ > 0) --wake_tokens_;
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return keep_running;
}

}  // namespace simsched
