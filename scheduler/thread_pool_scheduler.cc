#include "scheduler/thread_pool_scheduler.h"

#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "scheduler/internal/cancel_in_rounds.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/pool_parts.h"

// How the pool works
// ------------------
//
// Queues. Each worker has a FIFO ring of task headers under a spin lock (the
// critical sections are a handful of instructions, and a worker mostly
// touches only its own queue). A task woken or spawned on a worker goes to
// that worker's queue; work from any other thread goes to the injection
// queue. A worker pops its own queue, takes a fair share (up to 32) of the
// injection queue when its own is empty (and every 61 polls, so outside work
// is not starved), and otherwise steals half of another worker's queue.
// Queues hold raw headers, each with the reference its Runnable held; polls
// go through TaskHeader::PollOnce, and a task woken during its poll (Yield)
// is re-queued directly.
//
// Idle workers. At most half the workers (at least one) search: they spin,
// then yield, looking for work; the others sleep on a condition variable.
// Only a push that makes a queue non-empty looks for a worker, and it wakes a
// sleeper only if nobody searches; a worker that takes a batch from the
// injection queue, or leaves idleness while work is still waiting, wakes the
// next one. Sequentially consistent operations in SyncQueued,
// NotifyWorkAvailable and WaitForWork make "a push is missed by a worker
// going to sleep" impossible (see NotifyWorkAvailable).
//
// Live tasks. See the section of that name in internal/pool_parts.h: id
// blocks instead of a shared map, and task headers handed back to their
// spawning thread.
//
// The parts: see scheduler/internal/pool_parts.h. This file: construction
// and shutdown.

namespace simsched {
namespace internal {
namespace {

// Helper threads that destroy schedulers whose last reference was dropped on
// one of their own threads. Leaked on purpose (a worker may use it during
// static destruction); joined at exit.
class DeferredDestructions {
 public:
  static DeferredDestructions& Get() {
    static DeferredDestructions* instance = [] {
      auto* created = new DeferredDestructions;
      std::atexit([] { Get().JoinAll(); });
      return created;
    }();
    return *instance;
  }

  void Start(std::function<void()> destroy) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(std::move(destroy));
  }

  void JoinAll() {
    for (;;) {
      std::vector<std::thread> threads;
      {
        std::lock_guard<std::mutex> lock(mu_);
        threads.swap(threads_);
      }
      if (threads.empty()) return;
      for (std::thread& thread : threads) thread.join();
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

}  // namespace
}  // namespace internal

using internal::PoolBlockWaiter;
using internal::PoolIdBlock;
using internal::PoolWorker;
using internal::TaskHeader;

// -----------------------------------------------------------------------------
// Construction and destruction
// -----------------------------------------------------------------------------

ThreadPoolScheduler::ThreadPoolScheduler(ThreadPoolSchedulerOptions options)
    : options_(std::move(options)),
      main_thread_(std::this_thread::get_id()),
      parker_(std::make_shared<internal::Parker>()),
      injector_(std::make_unique<PoolWorker>()),
      external_ids_(new internal::PoolExternalIds[internal::kExternalIdSlots]),
      blocks_(std::make_unique<internal::PoolBlockMap>()),
      waiters_(std::make_unique<internal::PoolWaiterMap>()) {
  int count = options_.worker_threads;
  if (count <= 0) count = static_cast<int>(std::thread::hardware_concurrency());
  if (count <= 0) count = 1;
  max_searchers_ = std::max(1, count / 2);
  workers_.reserve(count);
  uint64_t seed = reinterpret_cast<uintptr_t>(this);
  for (int i = 0; i < count; ++i) {
    auto worker = std::make_unique<PoolWorker>();
    worker->pool = this;
    worker->rng = internal::SplitMix(seed);
    workers_.push_back(std::move(worker));
  }
  // Start threads only once `workers_` is complete: thieves iterate it.
  for (int i = 0; i < count; ++i) {
    workers_[i]->thread = std::thread([this, i] { WorkerMain(static_cast<uint32_t>(i)); });
  }
  timer_thread_ = std::thread([this] { TimerMain(); });
}

std::shared_ptr<ThreadPoolScheduler> ThreadPoolScheduler::Create(
    ThreadPoolSchedulerOptions options) {
  return std::shared_ptr<ThreadPoolScheduler>(new ThreadPoolScheduler(std::move(options)),
                                              &ThreadPoolScheduler::DeleteCreated);
}

void ThreadPoolScheduler::DeleteCreated(ThreadPoolScheduler* scheduler) {
  if (scheduler->OnOwnThread()) {
    // This thread is inside the scheduler (polling a task, firing a timer,
    // draining the loop) and will touch it again when the current step
    // ends: shut down from a helper thread, which waits for that.
    internal::DeferredDestructions::Get().Start([scheduler] {
      scheduler->Shutdown();
      if (scheduler->ReleaseOrDeferFree()) delete scheduler;
    });
    return;
  }
  scheduler->Shutdown();
  if (scheduler->ReleaseOrDeferFree()) delete scheduler;
}

void ThreadPoolScheduler::JoinDeferredDestructions() {
  internal::DeferredDestructions::Get().JoinAll();
}

ThreadPoolScheduler::~ThreadPoolScheduler() {
  if (!shut_down_) {
    SIMSCHED_CHECK(!OnOwnThread(),
                   "a ThreadPoolScheduler was destroyed on one of its own threads (inside one "
                   "of its tasks, timers or its run loop); hold it through "
                   "ThreadPoolScheduler::Create(), whose deleter defers the destruction");
    Shutdown();
    SIMSCHED_CHECK(LiveTaskCount() == 0,
                   "a ThreadPoolScheduler was destroyed while one of its tasks was being torn "
                   "down on this thread (the task's frame owned the scheduler); hold it through "
                   "ThreadPoolScheduler::Create(), whose deleter handles this");
  }
  DrainAllReturns();
  for (const auto& [index, block] : blocks_->blocks) delete block;
  for (auto& worker : workers_) internal::DeleteSpareBlocks(worker->ids);
  for (size_t i = 0; i < internal::kExternalIdSlots; ++i) {
    internal::DeleteSpareBlocks(external_ids_[i].ids);
  }
}

void ThreadPoolScheduler::DrainAllReturns() {
  // Until nothing is left: a release may destroy a result whose destructor
  // spawns (a task that is cancelled at once and returned again).
  for (bool any = true; any;) {
    any = false;
    // The backlog first (the spawner's, under its lock if it is shared),
    // then what is still on the list; both released outside any lock.
    auto drain = [&any](internal::PoolIdAllocator& ids, TaskHeader* backlog) {
      if (backlog != nullptr) {
        any = true;
        internal::ReleaseReturns(ids.returns, backlog);
      }
      if (TaskHeader* tasks = internal::TakeReturns(ids.returns)) {
        any = true;
        internal::ReleaseReturns(ids.returns, tasks);
      }
    };
    // The workers have been joined: their allocators are this thread's now.
    for (auto& worker : workers_) drain(worker->ids, internal::TakeWholeBacklog(worker->ids));
    for (size_t i = 0; i < internal::kExternalIdSlots; ++i) {
      internal::PoolExternalIds& slot = external_ids_[i];
      TaskHeader* backlog;
      {
        std::lock_guard<internal::SpinLock> lock(slot.lock);
        backlog = internal::TakeWholeBacklog(slot.ids);
      }
      drain(slot.ids, backlog);
    }
  }
}

bool ThreadPoolScheduler::OnOwnThread() const {
  const PoolWorker* worker = internal::tls_worker;
  if (worker != nullptr && worker->pool == this) return true;
  if (internal::tls_timer_of == this || internal::tls_loop_of == this) return true;
  const TaskHeader* task = internal::current_task;
  return task != nullptr && task->scheduler() == this;
}

void ThreadPoolScheduler::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // 1. Stop accepting work: from now on scheduled work is held, not run, and
  // its task cancelled in step 4.
  accepting_.store(false, std::memory_order_seq_cst);
  // 2. Make the main-thread loop return (after the poll under way).
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    shutting_down_ = true;
    main_cv_.notify_all();
  }
  // 3. Stop the workers (each after its current poll) and the timer thread.
  stopping_workers_.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(idle_mu_);
    idle_cv_.notify_all();
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    timer_stop_ = true;
    timer_cv_.notify_all();
  }
  if (timer_thread_.joinable()) timer_thread_.join();
  {
    std::unique_lock<std::mutex> lock(main_mu_);
    callers_cv_.wait(lock, [this] { return active_loops_ == 0; });
  }
  // 4. Nothing runs tasks any more: cancel what is left. From then on,
  // scheduled work (a Spawn racing with shutdown) is dropped at once.
  CancelEverything();
  std::vector<TaskHeader*> late;
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    shutdown_over_ = true;
    late.swap(held_for_shutdown_);
  }
  for (TaskHeader* task : late) Runnable::Adopt(task);
  // 5. BlockOn calls on other threads were released by the cancellations.
  {
    std::unique_lock<std::mutex> lock(main_mu_);
    callers_cv_.wait(lock, [this] { return active_blockers_ == 0; });
  }
  DrainAllReturns();
  // 6. Timers hold wakers (references to task headers): drop them last,
  // outside the lock (a header's destruction runs the result's destructor).
  internal::TimerQueue timers;
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    std::swap(timers, timers_);
  }
}

void ThreadPoolScheduler::CancelEverything() {
  // Rounds: a frame's destructor may spawn or wake; since `accepting_` is
  // false such work is held (HoldForShutdown) and cancelled by the next round.
  internal::CancelInRounds(
      [this](std::vector<TaskHeader*>& queued) {
        auto drain = [&queued](PoolWorker& queue) {
          std::lock_guard<internal::SpinLock> lock(queue.lock);
          while (!queue.queue.empty()) queued.push_back(queue.queue.pop_front());
          queue.queued.store(0, std::memory_order_relaxed);
        };
        drain(*injector_);
        for (auto& worker : workers_) drain(*worker);
        {
          std::lock_guard<std::mutex> lock(main_mu_);
          while (!main_queue_.empty()) queued.push_back(main_queue_.pop_front());
        }
        std::lock_guard<std::mutex> lock(shutdown_mu_);
        queued.insert(queued.end(), held_for_shutdown_.begin(), held_for_shutdown_.end());
        held_for_shutdown_.clear();
      },
      [this](std::vector<TaskHeader*>& live) {
        // Every other live task, in id order. A task that is already
        // finished but still registered is being torn down right now on this
        // thread (its frame dropped the last reference to the scheduler):
        // leave it.
        {
          std::lock_guard<std::mutex> lock(registry_mu_);
          for (const auto& [index, block] : blocks_->blocks) {
            const uint64_t word = block->word.load(std::memory_order_acquire);
            const uint32_t issued = block->issued.load(std::memory_order_acquire);
            for (uint32_t i = 0; i < issued; ++i) {
              if ((word & (uint64_t{1} << i)) == 0) continue;
              TaskHeader* task = block->tasks[i];
              if (task->finished()) continue;
              task->AddRef();  // a live bit implies the task's own reference
              live.push_back(task);
            }
          }
        }
        std::sort(live.begin(), live.end(), [](const TaskHeader* a, const TaskHeader* b) {
          return a->metadata.id < b->metadata.id;
        });
      });
}

bool ThreadPoolScheduler::ReleaseOrDeferFree() {
  if (LiveTaskCount() == 0) return true;
  // A task is still tearing down on this thread (its frame held the last
  // reference); its OnTaskFinished, the last call it makes into the
  // scheduler, frees it.
  free_when_idle_.store(true, std::memory_order_seq_cst);
  return LiveTaskCount() == 0 && !free_claimed_.exchange(true);
}

}  // namespace simsched
