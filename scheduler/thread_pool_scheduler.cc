#include "scheduler/thread_pool_scheduler.h"

#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"

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
// Live tasks. See the section of that name below: id blocks instead of a
// shared map, and task headers handed back to their spawning thread.

namespace simsched {
namespace internal {

// -----------------------------------------------------------------------------
// Building blocks
// -----------------------------------------------------------------------------

namespace {

// Spins with the CPU's pause hint: cheaper for the sibling hyperthread and
// the memory system than a bare load loop.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

// SpinLock
//
// A test-and-test-and-set lock for the run queues, whose critical sections
// are a few dozen instructions. After a short spin it yields the CPU, so a
// holder preempted on an oversubscribed machine gets to run.
class SpinLock {
 public:
  void lock() {
    int spins = 0;
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 100) {
          CpuRelax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

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
// The block whose last bit clears is freed. The map from block index to
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
// pool fed by one thread. A list its spawner does not come back to is
// drained by the finisher once it holds kMaxReturns headers.

constexpr uint32_t kIdBlock = 32;
constexpr uint64_t kLiveMask = 0xffffffffULL;
constexpr int32_t kMaxReturns = 256;
// Workers collect this many returns for a list before handing them over
// (and hand over what they have before they go idle).
constexpr uint32_t kReturnBatch = 16;

// PoolReturnList
//
// Finished tasks whose registry reference goes back to the thread that
// spawned them: a lock-free stack linked through `enqueue_seq` (NextReturn).
struct alignas(64) PoolReturnList {
  std::atomic<TaskHeader*> head{nullptr};
  std::atomic<int32_t> count{0};  // approximate length
};

// PoolIdBlock
//
// 32 consecutive task ids, issued by one allocator.
struct PoolIdBlock {
  PoolIdBlock(uint64_t first, PoolReturnList* home) : first_id(first), home(home) {}

  const uint64_t first_id;
  PoolReturnList* const home;  // the issuing allocator's return list
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

namespace {

// Keeps `worker.queued` zero exactly when its queue is empty, writing it only
// when that changes. Call it holding the queue's lock, after changing the
// queue. Returns true if the queue just became non-empty: the caller then
// looks for a worker to wake (the store is seq_cst: see NotifyWorkAvailable).
bool SyncQueued(PoolWorker& worker) {
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
thread_local constinit PoolWorker* tls_worker = nullptr;
thread_local constinit const ThreadPoolScheduler* tls_timer_of = nullptr;
thread_local constinit const ThreadPoolScheduler* tls_loop_of = nullptr;

// Which external id slot this thread uses (0: not chosen yet).
std::atomic<uint32_t> next_external_slot{0};
thread_local constinit uint32_t tls_external_slot = 0;

size_t ExternalSlot() {
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
PoolIdBlock* BlockOf(const TaskHeader& task) {
  return reinterpret_cast<PoolIdBlock*>(static_cast<uintptr_t>(task.enqueue_seq));
}
TaskHeader* NextReturn(const TaskHeader& task) {
  return reinterpret_cast<TaskHeader*>(static_cast<uintptr_t>(task.enqueue_seq));
}
void SetNextReturn(TaskHeader& task, TaskHeader* next) {
  task.enqueue_seq = reinterpret_cast<uintptr_t>(next);
}

// Detaches the tasks on `list`, for ReleaseReturns.
TaskHeader* TakeReturns(PoolReturnList& list) {
  if (list.head.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return list.head.exchange(nullptr, std::memory_order_acquire);
}

// Releases the registry's reference to each task taken from `list`. Call it
// holding no lock: a release may destroy a task's result, running user code.
void ReleaseReturns(PoolReturnList& list, TaskHeader* task) {
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
void PushReturns(PoolReturnList& list, TaskHeader* first, TaskHeader* last, uint32_t count) {
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

// Hands a worker's collected returns to their list.
void FlushReturns(PendingReturns& pending) {
  if (pending.count == 0) return;
  PushReturns(*pending.list, pending.head, pending.tail, pending.count);
  pending = PendingReturns{};
}

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void SetThreadName(const std::string& name) {
  // Linux limits names to 15 characters plus the terminator.
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Moves up to `count` headers from the front of `from` (whose lock the caller
// holds) into `out`, returning how many.
size_t TakeFront(RingQueue<TaskHeader*>& from, size_t count, TaskHeader** out) {
  count = std::min({count, from.size(), kBatchMax});
  for (size_t i = 0; i < count; ++i) out[i] = from.pop_front();
  return count;
}

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
}

void ThreadPoolScheduler::DrainAllReturns() {
  // Until nothing is left: a release may destroy a result whose destructor
  // spawns (a task that is cancelled at once and returned again).
  for (bool any = true; any;) {
    any = false;
    auto drain = [&any](internal::PoolReturnList& list) {
      if (TaskHeader* tasks = internal::TakeReturns(list)) {
        any = true;
        internal::ReleaseReturns(list, tasks);
      }
    };
    for (auto& worker : workers_) drain(worker->ids.returns);
    for (size_t i = 0; i < internal::kExternalIdSlots; ++i) drain(external_ids_[i].ids.returns);
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
  // 1. Stop accepting work: from now on scheduled work is dropped, which
  // cancels its task.
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
  // 4. Nothing runs tasks any more: cancel what is left.
  CancelEverything();
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
  // Rounds: a frame's destructor may spawn or wake. Since `accepting_` is
  // false such work is dropped (cancelled) at once, but a round costs little
  // and keeps this correct whatever the destructors do.
  for (;;) {
    std::vector<TaskHeader*> queued;
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
    // Dropping each cancels its task (frames destroyed, RAII runs).
    for (TaskHeader* task : queued) Runnable::Adopt(task);

    // Every other live task, in id order. A task that is already finished
    // but still registered is being torn down right now on this thread (its
    // frame dropped the last reference to the scheduler): leave it.
    std::vector<TaskHeader*> live;
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
    for (TaskHeader* task : live) {
      task->Cancel();
      task->Release();
    }
    if (queued.empty() && live.empty()) break;
  }
}

bool ThreadPoolScheduler::ReleaseOrDeferFree() {
  if (LiveTaskCount() == 0) return true;
  // A task is still tearing down on this thread (its frame held the last
  // reference); its OnTaskFinished, the last call it makes into the
  // scheduler, frees it.
  free_when_idle_.store(true, std::memory_order_seq_cst);
  return LiveTaskCount() == 0 && !free_claimed_.exchange(true);
}

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
  if (!accepting_.load(std::memory_order_acquire)) [[unlikely]] {
    Runnable::Adopt(task);  // shutting down: dropping cancels the task
    return;
  }
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
  if (!accepting_.load(std::memory_order_acquire)) [[unlikely]] {
    Runnable::Adopt(task);
    return;
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  main_queue_.push_back(task);
  if (main_waiting_) main_cv_.notify_one();
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

// -----------------------------------------------------------------------------
// Timers
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::TimerMain() {
  internal::tls_timer_of = this;
  internal::SetThreadName(absl::StrCat(options_.thread_name_prefix, "-timer"));
  std::vector<Waker> due;
  std::unique_lock<std::mutex> lock(timer_mu_);
  while (!timer_stop_) {
    // A copy: the heap may change while this thread waits.
    const Instant next_deadline = timers_.NextDeadline();
    if (next_deadline == Instant::max()) {
      timer_cv_.wait(lock);
      continue;
    }
    const Instant now = Clock::now();
    if (next_deadline > now) {
      timer_cv_.wait_until(lock, next_deadline);
      continue;
    }
    timers_.PopDue(now, due);
    // Woken (and released) outside the lock: a wake runs scheduler code and
    // a release may destroy a task header.
    lock.unlock();
    for (const Waker& waker : due) waker.Wake();
    due.clear();
    lock.lock();
  }
  internal::tls_timer_of = nullptr;
}

TimerId ThreadPoolScheduler::StartTimer(Instant deadline, Waker waker) {
  if (!waker || !accepting_.load(std::memory_order_acquire)) return TimerId{};
  if (deadline == kEndOfTime) return TimerId{};  // never fires (the waker drops here, unlocked)
  if (deadline <= Clock::now()) {
    waker.Wake();
    return TimerId{};  // already fired; cancelling it is a no-op
  }
  std::lock_guard<std::mutex> lock(timer_mu_);
  // Only a new earliest deadline changes what the timer thread waits for (an
  // equal deadline fires after the earlier timer, so it changes nothing).
  const bool earliest = deadline < timers_.NextDeadline();
  const TimerId id = timers_.Add(deadline, std::move(waker));
  if (earliest) timer_cv_.notify_one();
  return id;
}

void ThreadPoolScheduler::CancelTimer(TimerId timer) {
  Waker dropped;  // released after the lock: a release may destroy a task header
  std::lock_guard<std::mutex> lock(timer_mu_);
  dropped = timers_.Cancel(timer);
}

// -----------------------------------------------------------------------------
// Parking
// -----------------------------------------------------------------------------

bool ThreadPoolScheduler::Park(std::optional<Duration> timeout) { return parker_->Park(timeout); }

Unparker ThreadPoolScheduler::GetUnparker() { return Unparker(parker_); }

// -----------------------------------------------------------------------------
// Task tracking
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::OnTaskSpawned(TaskHeader& task) {
  internal::PoolIdAllocator* ids;
  TaskHeader* returns;
  PoolWorker* local = internal::tls_worker;
  if (local != nullptr && local->pool == this) {
    ids = &local->ids;
    returns = AssignId(*ids, task);
  } else {
    internal::PoolExternalIds& slot = external_ids_[internal::ExternalSlot()];
    ids = &slot.ids;
    std::lock_guard<internal::SpinLock> lock(slot.lock);
    returns = AssignId(*ids, task);
  }
  if (returns != nullptr) internal::ReleaseReturns(ids->returns, returns);
}

TaskHeader* ThreadPoolScheduler::AssignId(internal::PoolIdAllocator& ids, TaskHeader& task) {
  TaskHeader* returns = nullptr;
  if (ids.block == nullptr || ids.next == internal::kIdBlock) {
    // Once per block, take back the finished tasks this allocator spawned
    // (the caller releases them, outside any lock).
    returns = internal::TakeReturns(ids.returns);
    ids.block = NewIdBlock(ids.returns);
    ids.next = 0;
  }
  PoolIdBlock* block = ids.block;
  const uint32_t index = ids.next++;
  const uint64_t id = block->first_id + index;
  block->tasks[index] = &task;
  task.metadata.id = TaskId{id};
  task.enqueue_seq = reinterpret_cast<uintptr_t>(block);
  task.AddRef();  // the registry's, handed back through `block->home`
  block->issued.store(index + 1, std::memory_order_release);
  return returns;
}

PoolIdBlock* ThreadPoolScheduler::NewIdBlock(internal::PoolReturnList& home) {
  // Ids start at 1; block k holds ids [1 + 32k, 1 + 32(k + 1)).
  const uint64_t index = next_id_block_.fetch_add(1, std::memory_order_relaxed);
  auto* block = new PoolIdBlock(1 + index * internal::kIdBlock, &home);
  std::lock_guard<std::mutex> lock(registry_mu_);
  blocks_->blocks.emplace(index, block);
  return block;
}

void ThreadPoolScheduler::FreeIdBlock(PoolIdBlock* block) {
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    blocks_->blocks.erase((block->first_id - 1) / internal::kIdBlock);
  }
  delete block;
}

void ThreadPoolScheduler::OnTaskFinished(TaskHeader& task) {
  PoolIdBlock* block = internal::BlockOf(task);
  internal::PoolReturnList& home = *block->home;
  const uint64_t id = task.metadata.id.value;
  const uint64_t live_bit = uint64_t{1} << (id - block->first_id);
  const uint64_t waited_bit = live_bit << 32;
  const uint64_t old = block->word.fetch_and(~(live_bit | waited_bit), std::memory_order_acq_rel);
  // Nothing else is read from the block: another finishing thread may free
  // it as soon as the AND above is done, unless it is this one.
  if ((old & internal::kLiveMask & ~live_bit) == 0) FreeIdBlock(block);
  if ((old & waited_bit) != 0) NotifyBlockWaiter(id);
  // The registry's reference goes back to the spawning side (the task core
  // still holds the task's own reference until this call returns).
  PoolWorker* local = internal::tls_worker;
  if (local == nullptr || local->pool != this) {
    internal::PushReturns(home, &task, &task, 1);
  } else if (&local->ids.returns == &home) {
    task.Release();  // spawned on this worker: this is the spawning side
  } else {
    internal::PendingReturns& pending = local->pending_returns;
    if (pending.list != &home) internal::FlushReturns(pending);
    pending.list = &home;
    internal::SetNextReturn(task, pending.head);
    pending.head = &task;
    if (pending.tail == nullptr) pending.tail = &task;
    if (++pending.count == internal::kReturnBatch) internal::FlushReturns(pending);
  }
  // After a deferred free (see ReleaseOrDeferFree) the last task to finish
  // frees the scheduler; the task core makes no further call into it.
  if (free_when_idle_.load(std::memory_order_acquire) && LiveTaskCount() == 0 &&
      !free_claimed_.exchange(true)) {
    delete this;
  }
}

bool ThreadPoolScheduler::IsTaskRunning(TaskId id) const {
  if (id.value == 0) return false;
  const uint64_t index = (id.value - 1) / internal::kIdBlock;
  const uint32_t offset = static_cast<uint32_t>((id.value - 1) % internal::kIdBlock);
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = blocks_->blocks.find(index);
  if (it == blocks_->blocks.end()) return false;
  const PoolIdBlock& block = *it->second;
  return offset < block.issued.load(std::memory_order_acquire) &&
         (block.word.load(std::memory_order_acquire) & (uint64_t{1} << offset)) != 0;
}

size_t ThreadPoolScheduler::LiveTaskCount() const {
  size_t count = 0;
  std::lock_guard<std::mutex> lock(registry_mu_);
  for (const auto& [index, block] : blocks_->blocks) {
    const uint32_t issued = block->issued.load(std::memory_order_acquire);
    const uint64_t issued_mask = issued == 32 ? internal::kLiveMask : (uint64_t{1} << issued) - 1;
    count += std::popcount(block->word.load(std::memory_order_acquire) & issued_mask);
  }
  return count;
}

void ThreadPoolScheduler::OnUnhandledTaskException(const TaskMetadata& task,
                                                   const std::exception_ptr& exception) {
  // The shared formatter: "exception escaped task 7 spawned at foo.cc:12 (Fn)
  // and was never observed: <what()>", through the "simsched" logger.
  LogUnhandledTaskException(task, exception);
}

std::shared_ptr<PoolBlockWaiter> ThreadPoolScheduler::RegisterBlockWaiter(TaskHeader& task,
                                                                          bool main_loop,
                                                                          absl::Status& error) {
  const uint64_t id = task.metadata.id.value;
  const uint64_t index = (id - 1) / internal::kIdBlock;
  const uint64_t live_bit = uint64_t{1} << ((id - 1) % internal::kIdBlock);
  const uint64_t waited_bit = live_bit << 32;
  // The registry lock keeps the block from being freed meanwhile.
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = blocks_->blocks.find(index);
  if (it == blocks_->blocks.end()) return nullptr;  // finished and no longer tracked
  PoolIdBlock& block = *it->second;
  auto waiter = std::make_shared<PoolBlockWaiter>(main_loop);
  {
    std::lock_guard<std::mutex> waiters_lock(waiters_mu_);
    auto [slot, inserted] = waiters_->waiters.try_emplace(id, waiter);
    if (!inserted) {
      error = absl::FailedPreconditionError(absl::StrCat(
          "BlockOn(", task.metadata.DebugString(),
          "): another BlockOn already waits for this task; a task has one owner"));
      return nullptr;
    }
  }
  // Published after the waiter is in the map: the finishing thread clears
  // both bits at once and, if it saw the waited bit, looks the waiter up.
  const uint64_t old = block.word.fetch_or(waited_bit, std::memory_order_acq_rel);
  if ((old & live_bit) != 0) return waiter;
  // Finished before the bit was set.
  block.word.fetch_and(~waited_bit, std::memory_order_acq_rel);
  std::lock_guard<std::mutex> waiters_lock(waiters_mu_);
  waiters_->waiters.erase(id);
  return nullptr;
}

void ThreadPoolScheduler::UnregisterBlockWaiter(TaskHeader& task) {
  const uint64_t id = task.metadata.id.value;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    auto it = blocks_->blocks.find((id - 1) / internal::kIdBlock);
    if (it != blocks_->blocks.end()) {
      const uint64_t waited_bit = uint64_t{1} << ((id - 1) % internal::kIdBlock + 32);
      it->second->word.fetch_and(~waited_bit, std::memory_order_acq_rel);
    }
  }
  std::lock_guard<std::mutex> lock(waiters_mu_);
  waiters_->waiters.erase(id);
}

void ThreadPoolScheduler::NotifyBlockWaiter(uint64_t id) {
  std::shared_ptr<PoolBlockWaiter> waiter;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = waiters_->waiters.find(id);
    if (it == waiters_->waiters.end()) return;  // it gave up meanwhile
    waiter = std::move(it->second);
    waiters_->waiters.erase(it);
  }
  if (waiter->main_loop) {
    // Under main_mu_, so the loop cannot return (and its caller destroy the
    // scheduler) before this notification is done.
    std::lock_guard<std::mutex> lock(main_mu_);
    waiter->done.store(true, std::memory_order_release);
    main_poked_ = true;
    if (main_waiting_) main_cv_.notify_one();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(waiter->mu);
    waiter->done.store(true, std::memory_order_release);
  }
  waiter->cv.notify_one();
}

// -----------------------------------------------------------------------------
// BlockOn and the main-thread loop
// -----------------------------------------------------------------------------

absl::Status ThreadPoolScheduler::CheckCanDrain(const char* operation) const {
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        operation, " was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of blocking its thread"));
  }
  if (!IsMainThread()) {
    return absl::FailedPreconditionError(absl::StrCat(
        operation,
        " must be called on the scheduler's main thread (the thread that constructed it); "
        "other threads may BlockOn a task, which waits without running foreground work"));
  }
  return absl::OkStatus();
}

absl::Status ThreadPoolScheduler::BlockOnTask(TaskHeader& task) {
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of blocking a worker thread"));
  }
  if (task.scheduler() != this) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), "): the task belongs to another scheduler"));
  }
  if (IsMainThread()) {
    return DrainMainLoop(LoopEnd::kBlockOn, [] { return false; }, std::nullopt, &task);
  }
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (shutting_down_) {
      return task.finished() ? absl::OkStatus()
                             : absl::AbortedError("BlockOn: the scheduler is being destroyed");
    }
    ++active_blockers_;
  }
  absl::Status error;
  if (std::shared_ptr<PoolBlockWaiter> waiter = RegisterBlockWaiter(task, false, error)) {
    // Shutdown cancels every task, so this wait always ends.
    std::unique_lock<std::mutex> lock(waiter->mu);
    waiter->cv.wait(lock, [&] { return waiter->done.load(std::memory_order_acquire); });
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  if (--active_blockers_ == 0 && shutting_down_) callers_cv_.notify_all();
  return error;
}

absl::Status ThreadPoolScheduler::Run() {
  if (absl::Status status = CheckCanDrain("Run()"); !status.ok()) return status;
  return DrainMainLoop(LoopEnd::kStop, [] { return false; }, std::nullopt, nullptr);
}

absl::Status ThreadPoolScheduler::RunUntil(absl::FunctionRef<bool()> done) {
  if (absl::Status status = CheckCanDrain("RunUntil()"); !status.ok()) return status;
  return DrainMainLoop(LoopEnd::kTaskOrPredicate, done, options_.predicate_recheck_interval,
                       nullptr);
}

absl::Status ThreadPoolScheduler::RunUntilTask(TaskHeader& task) {
  if (absl::Status status = CheckCanDrain("RunUntil(task)"); !status.ok()) return status;
  if (task.scheduler() != this) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RunUntil(", task.metadata.DebugString(), "): the task belongs to another scheduler"));
  }
  return DrainMainLoop(LoopEnd::kTaskOrPredicate, [] { return false; }, std::nullopt, &task);
}

absl::Status ThreadPoolScheduler::DrainMainLoop(LoopEnd end, absl::FunctionRef<bool()> done,
                                                std::optional<Duration> recheck_interval,
                                                TaskHeader* waited_task) {
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (shutting_down_) return absl::AbortedError("the scheduler is being destroyed");
    ++active_loops_;
  }
  // From here until active_loops_ drops, a destruction on another thread
  // waits for this loop, so the scheduler may be used freely.
  absl::Status status;
  std::shared_ptr<PoolBlockWaiter> waiter;
  if (waited_task != nullptr) {
    waiter = RegisterBlockWaiter(*waited_task, /*main_loop=*/true, status);
  }
  const ThreadPoolScheduler* const previous_loop = std::exchange(internal::tls_loop_of, this);
  // A waited task that already finished (no waiter) ends the loop at once.
  bool finished = waited_task != nullptr && waiter == nullptr;
  while (!finished) {
    if (waiter != nullptr ? waiter->done.load(std::memory_order_acquire)
                          : end != LoopEnd::kStop && done()) {
      break;
    }
    TaskHeader* next = nullptr;
    {
      std::unique_lock<std::mutex> lock(main_mu_);
      for (;;) {
        if (shutting_down_) {
          status = absl::AbortedError("the scheduler is being destroyed");
          finished = true;
          break;
        }
        if (end != LoopEnd::kBlockOn && stop_requested_) {
          if (end == LoopEnd::kTaskOrPredicate) {
            status = absl::CancelledError("RunUntil: Stop() was called before the condition held");
          }
          finished = true;
          break;
        }
        if (!main_queue_.empty()) {
          next = main_queue_.pop_front();
          break;
        }
        if (main_poked_) {  // a BlockOn/RunUntil task finished: re-check
          main_poked_ = false;
          break;
        }
        main_waiting_ = true;
        if (recheck_interval.has_value()) {
          main_cv_.wait_for(lock, *recheck_interval);
          main_waiting_ = false;
          break;  // re-check the predicate
        }
        main_cv_.wait(lock);
        main_waiting_ = false;
      }
    }
    if (next != nullptr) RunTask(next);
  }
  internal::tls_loop_of = previous_loop;
  if (waiter != nullptr && !waiter->done.load(std::memory_order_acquire)) {
    UnregisterBlockWaiter(*waited_task);  // left early (stop, shutdown)
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  // Notified under the lock: a destructor waiting for this cannot free the
  // scheduler before the lock is released, and nothing is touched after.
  if (--active_loops_ == 0 && shutting_down_) callers_cv_.notify_all();
  return status;
}

void ThreadPoolScheduler::Stop() {
  std::lock_guard<std::mutex> lock(main_mu_);
  stop_requested_ = true;
  if (main_waiting_) main_cv_.notify_one();
}

bool ThreadPoolScheduler::IsStopped() const {
  std::lock_guard<std::mutex> lock(main_mu_);
  return stop_requested_;
}

}  // namespace simsched
