// Internal: the pieces of ThreadPoolScheduler that its source files share.
//
// The pool's implementation is split by what each part does:
//   thread_pool_scheduler.cc           construction, shutdown and how the pool works
//   thread_pool_scheduler_workers.cc   scheduling, the workers, stealing, idling
//   thread_pool_scheduler_timers.cc    the timer thread and parking
//   thread_pool_scheduler_registry.cc  live tasks: ids, the registry, BlockOn waiters
//   thread_pool_scheduler_main_loop.cc BlockOn and the main-thread loop
// This header holds the types and small helpers more than one of them uses.
// Nothing here is for users.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_POOL_PARTS_H_
#define SIMSCHED_SCHEDULER_INTERNAL_POOL_PARTS_H_

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/spin_lock.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace internal {

// -----------------------------------------------------------------------------
// Building blocks
// -----------------------------------------------------------------------------

// CpuRelax() and SpinLock: scheduler/internal/spin_lock.h.

// -----------------------------------------------------------------------------
// Live tasks
// -----------------------------------------------------------------------------
//
// Spawning and finishing must not serialize on a shared map: a thread pool
// spawns and finishes millions of tasks a second. Ids are therefore handed out
// in blocks of 32: a spawning thread (each worker, or one of a few slots
// shared by other threads) takes a block from the scheduler's counter and
// issues its ids one by one. A block keeps one 64-bit word: bit i (low half)
// says task `first_id + i` is live, bit 32 + i that a BlockOn waits for it.
// Spawning writes only the spawning thread's block; finishing clears the
// task's bits with one atomic AND (the block is found through the header's
// scheduler-owned `enqueue_seq`, which this pool does not need for queueing).
// The block whose last bit clears leaves the registry and goes back to its
// issuing allocator for reuse (a lock-free stack, `free_blocks`), so a
// steady stream of spawns allocates no blocks. The map from block index to
// block, under `registry_mu_`, is touched once per 32 tasks, and by the rare
// lookups (IsTaskRunning, BlockOn, LiveTaskCount, shutdown).
//
// The registry also holds one reference to each task it tracks, and gives it
// back on the spawning side: a finishing worker collects headers per spawning
// allocator and pushes them, 16 at a time, onto that allocator's return list
// (linked through `enqueue_seq` again, which is free once the task finished
// and shares the first cache line with the reference count), which the
// spawning thread drains when it takes its next id block. So the task header,
// allocated by the spawning thread, is usually freed by that thread too.
// glibc's malloc serializes frees of another thread's memory on the owning
// arena's lock, and that lock, not the scheduler, would otherwise bound a
// pool fed by one thread.
//
// The spawning thread does not free what it takes back all at once: it keeps
// the taken headers as a backlog and releases one per spawn. Each spawn
// allocates one header, so the header freed by one spawn is the memory the
// next one gets from malloc's per-thread cache (glibc's tcache holds 7 chunks
// of a size); freeing 32 at a time overflowed that cache into the arena, and
// the next allocations went there too. One per spawn also bounds what an
// allocator holds: about as many finished headers as it had live tasks
// (each return is one of its tasks finishing).
//
// A thread that spawns a burst and then waits for it (the usual way to feed
// a pool) gets the whole burst's headers back while it waits, and frees them
// over its next burst. So the list is drained by a finisher only once it
// holds kMaxReturns headers (about 4 MB of them), for a spawner that does not
// come back: below that, freeing on the finishing threads cost the pool
// about half its spawn-and-complete throughput (docs/production.md).

constexpr uint32_t kIdBlock = 32;
constexpr uint64_t kLiveMask = 0xffffffffULL;
// Finished headers an allocator's return list holds before a finisher frees
// them itself (see above).
constexpr int32_t kMaxReturns = 16384;
// Workers collect this many returns for a list before handing them over
// (and hand over what they have before they go idle).
constexpr uint32_t kReturnBatch = 16;

struct PoolIdBlock;

// PoolReturnList
//
// What goes back to an allocator from the threads that finish its tasks:
// finished tasks whose registry reference goes back to the thread that
// spawned them (a lock-free stack linked through `enqueue_seq`, NextReturn),
// and id blocks all of whose tasks finished (a lock-free stack linked through
// `next_free`). Many push; only the owning allocator takes, and it takes the
// whole stack at once, so there is no ABA problem.
struct alignas(64) PoolReturnList {
  std::atomic<TaskHeader*> head{nullptr};
  std::atomic<int32_t> count{0};  // approximate length
  std::atomic<PoolIdBlock*> free_blocks{nullptr};
};

// PoolIdBlock
//
// 32 consecutive task ids, issued by one allocator. Reused by the same
// allocator for a later range once all 32 tasks finished (see Reset).
struct PoolIdBlock {
  PoolIdBlock(uint64_t first, PoolReturnList* home) : first_id(first), home(home) {}

  // Makes a block that left the registry ready for ids from `first` on.
  // Only the issuing allocator calls it, after taking the block back from
  // `home->free_blocks`; no other thread refers to the block then.
  void Reset(uint64_t first) {
    first_id = first;
    next_free = nullptr;
    word.store(kLiveMask, std::memory_order_relaxed);
    issued.store(0, std::memory_order_relaxed);
  }

  uint64_t first_id;           // written by Reset only
  PoolReturnList* const home;  // the issuing allocator's return list
  PoolIdBlock* next_free = nullptr;  // link on `home->free_blocks`
  // Low half: live tasks, plus ids not issued yet (so a block in use is never
  // freed). High half: tasks a BlockOn waits for. On its own cache line:
  // finishing threads write it, the issuing thread does not.
  alignas(64) std::atomic<uint64_t> word{kLiveMask};
  // Ids issued so far, and the tasks; written by the issuing thread only.
  alignas(64) std::atomic<uint32_t> issued{0};
  TaskHeader* tasks[kIdBlock] = {};  // tasks[i] valid for i < issued
};

// PoolIdAllocator
//
// Issues ids from its current block. Each worker has one; other threads
// share kExternalIdSlots of them (PoolExternalIds).
struct PoolIdAllocator {
  PoolIdBlock* block = nullptr;
  uint32_t next = 0;  // next index in `block`
  // Finished tasks taken off `returns`, released one per spawn (see "Live
  // tasks"); `taken` counts the ones released since the last take, for
  // `returns.count`, which includes the backlog until it is all released.
  TaskHeader* backlog = nullptr;
  int32_t taken = 0;
  // Blocks taken back from `returns.free_blocks`, linked through next_free.
  PoolIdBlock* spare_blocks = nullptr;
  PoolReturnList returns;
};

struct alignas(64) PoolExternalIds {
  SpinLock lock;
  PoolIdAllocator ids;  // guarded by lock
};

// PendingReturns
//
// Finished tasks a worker collected for one return list, pushed in one
// splice by FlushReturns.
struct PendingReturns {
  PoolReturnList* list = nullptr;
  TaskHeader* head = nullptr;
  TaskHeader* tail = nullptr;
  uint32_t count = 0;
};

struct PoolBlockMap {
  absl::flat_hash_map<uint64_t, PoolIdBlock*> blocks;
};

// PoolBlockWaiter
//
// A BlockOn waiting for one task. OnTaskFinished hands it over and notifies
// it; shared ownership keeps it alive for the notifier after the waiter has
// returned.
struct PoolBlockWaiter {
  explicit PoolBlockWaiter(bool main_loop) : main_loop(main_loop) {}

  const bool main_loop;  // the waiter drains the main loop (else: blocks on cv)
  std::atomic<bool> done{false};
  std::mutex mu;
  std::condition_variable cv;
};

struct PoolWaiterMap {
  absl::flat_hash_map<uint64_t, std::shared_ptr<PoolBlockWaiter>> waiters;
};

// -----------------------------------------------------------------------------
// Workers
// -----------------------------------------------------------------------------

// PoolWorker
//
// One worker thread and its FIFO run queue. The injection queue (work
// scheduled from threads that are not workers) is a PoolWorker without a
// thread.
struct alignas(64) PoolWorker {
  SpinLock lock;
  RingQueue<TaskHeader*> queue;  // guarded by lock; each entry holds a reference
  // Zero exactly when the queue is empty, else a stale size (it is written
  // only when the queue becomes empty or non-empty; see SyncQueued). Written
  // under the lock, read without it by thieves and by workers deciding
  // whether to sleep. On its own cache line, so that idle workers polling it
  // do not take the lock's line away from the owner.
  alignas(64) std::atomic<size_t> queued{0};

  // Owner-only state.
  alignas(64) ThreadPoolScheduler* pool = nullptr;
  uint32_t ticks = 0;
  uint64_t rng = 0;
  PoolIdAllocator ids;
  PendingReturns pending_returns;
  std::thread thread;
};

// Keeps `worker.queued` zero exactly when its queue is empty, writing it only
// when that changes. Call it holding the queue's lock, after changing the
// queue. Returns true if the queue just became non-empty: the caller then
// looks for a worker to wake (the store is seq_cst: see NotifyWorkAvailable).
inline bool SyncQueued(PoolWorker& worker) {
  const size_t size = worker.queue.size();
  const size_t shown = worker.queued.load(std::memory_order_relaxed);
  if (size == 0) {
    if (shown != 0) worker.queued.store(0, std::memory_order_relaxed);
    return false;
  }
  if (shown != 0) return false;
  worker.queued.store(size, std::memory_order_seq_cst);
  return true;
}

constexpr size_t kExternalIdSlots = 8;
// Task headers moved per steal or per pull from the injection queue, at most.
constexpr size_t kBatchMax = 32;
// A worker checks the injection queue before its own queue every this many
// polls, so work from outside is not starved by a busy local queue.
constexpr uint32_t kInjectorCheckInterval = 61;
// Rounds a searching worker looks for work before it sleeps: the first ones
// with a pause loop, the rest yielding the CPU.
constexpr int kSpinRoundsPause = 16;
constexpr int kSpinRoundsYield = 16;

// Set on each worker thread (to its worker) and on the timer thread and the
// main thread while it drains the loop (to the scheduler).
inline thread_local constinit PoolWorker* tls_worker = nullptr;
inline thread_local constinit const ThreadPoolScheduler* tls_timer_of = nullptr;
inline thread_local constinit const ThreadPoolScheduler* tls_loop_of = nullptr;

// Which external id slot this thread uses (0: not chosen yet).
inline std::atomic<uint32_t> next_external_slot{0};
inline thread_local constinit uint32_t tls_external_slot = 0;

inline size_t ExternalSlot() {
  if (tls_external_slot == 0) {
    tls_external_slot = 1 + next_external_slot.fetch_add(1, std::memory_order_relaxed);
  }
  return tls_external_slot % kExternalIdSlots;
}

// Asks the CPU to start loading a queued task's header (its hot first cache
// lines), so it is in cache when the task is polled: a pool cycling through
// thousands of tasks is otherwise bound by cache misses.
inline void PrefetchTask(const TaskHeader* task) {
  __builtin_prefetch(task, 1, 3);
  __builtin_prefetch(reinterpret_cast<const char*>(task) + 64, 1, 3);
}

// A live task's `enqueue_seq` holds its id block; a finished one's, the next
// task on its return list.
inline PoolIdBlock* BlockOf(const TaskHeader& task) {
  return reinterpret_cast<PoolIdBlock*>(static_cast<uintptr_t>(task.enqueue_seq));
}
inline TaskHeader* NextReturn(const TaskHeader& task) {
  return reinterpret_cast<TaskHeader*>(static_cast<uintptr_t>(task.enqueue_seq));
}
inline void SetNextReturn(TaskHeader& task, TaskHeader* next) {
  task.enqueue_seq = reinterpret_cast<uintptr_t>(next);
}

// Detaches the tasks on `list`, for ReleaseReturns.
inline TaskHeader* TakeReturns(PoolReturnList& list) {
  if (list.head.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return list.head.exchange(nullptr, std::memory_order_acquire);
}

// Releases the registry's reference to each task taken from `list`. Call it
// holding no lock: a release may destroy a task's result, running user code.
inline void ReleaseReturns(PoolReturnList& list, TaskHeader* task) {
  int32_t released = 0;
  while (task != nullptr) {
    TaskHeader* next = NextReturn(*task);
    // The list was built on other threads: start loading the next header
    // while this one is released.
    if (next != nullptr) PrefetchTask(next);
    task->Release();
    task = next;
    ++released;
  }
  list.count.fetch_sub(released, std::memory_order_relaxed);
}

// Pushes the chain `first`..`last` (linked through NextReturn, `count` long)
// onto `list`.
inline void PushReturns(PoolReturnList& list, TaskHeader* first, TaskHeader* last,
                        uint32_t count) {
  TaskHeader* head = list.head.load(std::memory_order_relaxed);
  do {
    SetNextReturn(*last, head);
  } while (!list.head.compare_exchange_weak(head, first, std::memory_order_release,
                                            std::memory_order_relaxed));
  const int32_t added = static_cast<int32_t>(count);
  if (list.count.fetch_add(added, std::memory_order_relaxed) + added >= kMaxReturns) {
    ReleaseReturns(list, TakeReturns(list));  // the spawner went quiet
  }
}

// Takes the tasks returned to `ids` as its backlog (which must be empty).
inline void TakeBacklog(PoolIdAllocator& ids) { ids.backlog = TakeReturns(ids.returns); }

// Takes the next header of the backlog, or null; the caller releases it
// outside any lock. One per spawn keeps the number of finished headers an
// allocator holds near its number of live tasks: every return is one of its
// tasks finishing.
inline TaskHeader* PopBacklog(PoolIdAllocator& ids) {
  TaskHeader* task = ids.backlog;
  if (task == nullptr) return nullptr;
  ids.backlog = NextReturn(*task);
  ++ids.taken;
  if (ids.backlog != nullptr) {
    PrefetchTask(ids.backlog);  // built on other threads: load it early
  } else {
    ids.returns.count.fetch_sub(std::exchange(ids.taken, 0), std::memory_order_relaxed);
  }
  return task;
}

// Takes the whole backlog (for shutdown); release it with ReleaseReturns.
inline TaskHeader* TakeWholeBacklog(PoolIdAllocator& ids) {
  ids.returns.count.fetch_sub(std::exchange(ids.taken, 0), std::memory_order_relaxed);
  return std::exchange(ids.backlog, nullptr);
}

// Frees the blocks an allocator kept for reuse (for the destructor).
inline void DeleteSpareBlocks(PoolIdAllocator& ids) {
  PoolIdBlock* block = ids.returns.free_blocks.exchange(nullptr, std::memory_order_acquire);
  for (int list = 0; list < 2; ++list) {
    while (block != nullptr) delete std::exchange(block, block->next_free);
    block = std::exchange(ids.spare_blocks, nullptr);
  }
}

// Hands a worker's collected returns to their list.
inline void FlushReturns(PendingReturns& pending) {
  if (pending.count == 0) return;
  PushReturns(*pending.list, pending.head, pending.tail, pending.count);
  pending = PendingReturns{};
}

inline uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline void SetThreadName(const std::string& name) {
  // Linux limits names to 15 characters plus the terminator.
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Moves up to `count` headers from the front of `from` (whose lock the caller
// holds) into `out`, returning how many.
inline size_t TakeFront(RingQueue<TaskHeader*>& from, size_t count, TaskHeader** out) {
  count = std::min({count, from.size(), kBatchMax});
  for (size_t i = 0; i < count; ++i) out[i] = from.pop_front();
  return count;
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_POOL_PARTS_H_
