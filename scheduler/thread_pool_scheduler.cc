#include "scheduler/thread_pool_scheduler.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"

namespace simsched {
namespace internal {
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
// A test-and-test-and-set lock for the run queues and the task registry,
// whose critical sections are a few dozen instructions. After a short spin
// it yields the CPU, so a holder preempted on an oversubscribed machine gets
// to run.
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

// RunQueue
//
// A FIFO ring of Runnables that grows by doubling. Not synchronized.
class RunQueue {
 public:
  RunQueue() : slots_(kInitialCapacity) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void Push(Runnable runnable) {
    if (size_ == slots_.size()) Grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(runnable);
    ++size_;
  }

  Runnable Pop() {
    Runnable runnable = std::move(slots_[head_]);
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return runnable;
  }

 private:
  static constexpr size_t kInitialCapacity = 256;  // a power of two

  void Grow() {
    std::vector<Runnable> bigger(slots_.size() * 2);
    for (size_t i = 0; i < size_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<Runnable> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

// PoolWorker
//
// One worker thread and its run queue. The injection queue (work scheduled
// from threads that are not workers) is a PoolWorker without a thread.
struct alignas(64) PoolWorker {
  SpinLock lock;
  RunQueue queue;  // guarded by lock
  // queue.size(), written under the lock, read without it by thieves and by
  // workers deciding whether to sleep.
  std::atomic<size_t> queued{0};

  ThreadPoolScheduler* pool = nullptr;
  uint32_t index = 0;
  // Owner-only state.
  uint32_t ticks = 0;
  uint64_t rng = 0;
  std::thread thread;
};

// PoolShard
//
// One shard of the live-task registry.
struct alignas(64) PoolShard {
  SpinLock lock;
  absl::flat_hash_map<uint64_t, TaskHeader*> tasks;  // id -> header; guarded by lock
  // BlockOn calls waiting for a task of this shard; guarded by lock.
  absl::flat_hash_map<uint64_t, std::shared_ptr<PoolBlockWaiter>> waiters;
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

namespace {

constexpr size_t kShardCount = 64;
// Runnables moved per steal or per pull from the injection queue, at most.
constexpr size_t kBatchMax = 32;
// A worker checks the injection queue before its own queue every this many
// polls, so work from outside is not starved by a busy local queue.
constexpr uint32_t kInjectorCheckInterval = 61;
// Rounds an idle worker looks for work before it sleeps: the first ones with
// a pause loop, the rest yielding the CPU.
constexpr int kSpinRoundsPause = 16;
constexpr int kSpinRoundsYield = 16;

// Set on each worker thread (to its worker) and on the timer thread and the
// main thread while it drains the loop (to the scheduler).
thread_local constinit PoolWorker* tls_worker = nullptr;
thread_local constinit const ThreadPoolScheduler* tls_timer_of = nullptr;
thread_local constinit const ThreadPoolScheduler* tls_loop_of = nullptr;

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
using internal::PoolShard;
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
      shards_(new PoolShard[internal::kShardCount]) {
  int count = options_.worker_threads;
  if (count <= 0) count = static_cast<int>(std::thread::hardware_concurrency());
  if (count <= 0) count = 1;
  workers_.reserve(count);
  uint64_t seed = reinterpret_cast<uintptr_t>(this);
  for (int i = 0; i < count; ++i) {
    auto worker = std::make_unique<PoolWorker>();
    worker->pool = this;
    worker->index = static_cast<uint32_t>(i);
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
  // 1. Stop accepting work: from now on a scheduled Runnable is dropped,
  // which cancels its task.
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
  // 6. Timers hold wakers (references to task headers): drop them last,
  // outside the lock (a header's destruction runs the result's destructor).
  std::vector<TimerSlot> slots;
  std::vector<TimerEntry> heap;
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    slots.swap(timer_slots_);
    heap.swap(timer_heap_);
    free_timer_slots_.clear();
  }
}

void ThreadPoolScheduler::CancelEverything() {
  // Rounds: a frame's destructor may spawn or wake. Since `accepting_` is
  // false such work is dropped (cancelled) at once, but a round costs little
  // and keeps this correct whatever the destructors do.
  for (;;) {
    std::vector<Runnable> dropped;
    auto drain = [&dropped](PoolWorker& queue) {
      std::lock_guard<internal::SpinLock> lock(queue.lock);
      while (!queue.queue.empty()) dropped.push_back(queue.queue.Pop());
      queue.queued.store(0, std::memory_order_relaxed);
    };
    drain(*injector_);
    for (auto& worker : workers_) drain(*worker);
    {
      std::lock_guard<std::mutex> lock(main_mu_);
      for (Runnable& runnable : main_queue_) dropped.push_back(std::move(runnable));
      main_queue_.clear();
    }
    const bool had_queued = !dropped.empty();
    dropped.clear();  // cancels each task: frames destroyed, RAII runs

    // Every other live task, in id order. A task that is already finished
    // but still registered is being torn down right now on this thread (its
    // frame dropped the last reference to the scheduler): leave it.
    std::vector<TaskHeader*> live;
    for (size_t i = 0; i < internal::kShardCount; ++i) {
      PoolShard& shard = shards_[i];
      std::lock_guard<internal::SpinLock> lock(shard.lock);
      for (const auto& [id, task] : shard.tasks) {
        if (task->finished()) continue;
        task->AddRef();  // the registry entry implies the task's own reference
        live.push_back(task);
      }
    }
    std::sort(live.begin(), live.end(), [](const TaskHeader* a, const TaskHeader* b) {
      return a->metadata.id < b->metadata.id;
    });
    for (TaskHeader* task : live) {
      task->Cancel();
      task->Release();
    }
    if (!had_queued && live.empty()) break;
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
  if (!accepting_.load(std::memory_order_acquire)) {
    runnable = Runnable();  // shutting down: dropping cancels the task
    return;
  }
  PoolWorker* local = internal::tls_worker;
  PoolWorker& target = (local != nullptr && local->pool == this) ? *local : *injector_;
  {
    std::lock_guard<internal::SpinLock> lock(target.lock);
    target.queue.Push(std::move(runnable));
    target.queued.store(target.queue.size(), std::memory_order_relaxed);
  }
  NotifyWorkAvailable();
}

void ThreadPoolScheduler::ScheduleLabeled(Runnable runnable, TaskLabel) {
  Schedule(std::move(runnable));  // labels carry no priority in production
}

void ThreadPoolScheduler::ScheduleForeground(Runnable runnable) {
  if (!accepting_.load(std::memory_order_acquire)) {
    runnable = Runnable();
    return;
  }
  std::lock_guard<std::mutex> lock(main_mu_);
  main_queue_.push_back(std::move(runnable));
  if (main_waiting_) main_cv_.notify_one();
}

bool ThreadPoolScheduler::IsMainThread() const {
  return std::this_thread::get_id() == main_thread_;
}

void ThreadPoolScheduler::NotifyWorkAvailable() {
  // Pairs with the fence in WaitForWork: either this load sees the sleeper's
  // registration, or the sleeper's re-check sees the work just queued.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_relaxed) == 0) return;
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
  while (!stopping_workers_.load(std::memory_order_relaxed)) {
    if (Runnable next = FindWork(self)) {
      std::move(next).Run();
      continue;
    }
    if (!WaitForWork(self)) break;
  }
  internal::tls_worker = nullptr;
}

Runnable ThreadPoolScheduler::FindWork(PoolWorker& self) {
  if (++self.ticks % internal::kInjectorCheckInterval == 0) {
    if (Runnable next = PopInjected(self)) return next;
  }
  if (Runnable next = PopLocal(self)) return next;
  if (Runnable next = PopInjected(self)) return next;
  return Steal(self);
}

Runnable ThreadPoolScheduler::PopLocal(PoolWorker& self) {
  if (self.queued.load(std::memory_order_relaxed) == 0) return Runnable();
  std::lock_guard<internal::SpinLock> lock(self.lock);
  if (self.queue.empty()) return Runnable();
  Runnable next = self.queue.Pop();
  self.queued.store(self.queue.size(), std::memory_order_relaxed);
  return next;
}

namespace {

// Moves up to `count` Runnables from the front of `from` (whose lock the
// caller holds) into `out`, returning how many.
size_t TakeFront(internal::RunQueue& from, size_t count,
                 std::array<Runnable, internal::kBatchMax>& out) {
  count = std::min({count, from.size(), out.size()});
  for (size_t i = 0; i < count; ++i) out[i] = from.Pop();
  return count;
}

}  // namespace

Runnable ThreadPoolScheduler::PopInjected(PoolWorker& self) {
  PoolWorker& injector = *injector_;
  if (injector.queued.load(std::memory_order_relaxed) == 0) return Runnable();
  std::array<Runnable, internal::kBatchMax> batch;
  size_t taken;
  {
    std::lock_guard<internal::SpinLock> lock(injector.lock);
    // A fair share, so the other workers find some too.
    const size_t share = injector.queue.size() / workers_.size() + 1;
    taken = TakeFront(injector.queue, share, batch);
    injector.queued.store(injector.queue.size(), std::memory_order_relaxed);
  }
  if (taken == 0) return Runnable();
  if (taken > 1) {
    {
      std::lock_guard<internal::SpinLock> lock(self.lock);
      for (size_t i = 1; i < taken; ++i) self.queue.Push(std::move(batch[i]));
      self.queued.store(self.queue.size(), std::memory_order_relaxed);
    }
    NotifyWorkAvailable();  // an idle worker may steal some
  }
  return std::move(batch[0]);
}

Runnable ThreadPoolScheduler::Steal(PoolWorker& self) {
  const size_t count = workers_.size();
  if (count < 2) return Runnable();
  const size_t start = internal::SplitMix(self.rng) % count;
  for (size_t i = 0; i < count; ++i) {
    PoolWorker& victim = *workers_[(start + i) % count];
    if (&victim == &self || victim.queued.load(std::memory_order_relaxed) == 0) continue;
    std::array<Runnable, internal::kBatchMax> batch;
    size_t taken;
    {
      std::lock_guard<internal::SpinLock> lock(victim.lock);
      taken = TakeFront(victim.queue, (victim.queue.size() + 1) / 2, batch);
      victim.queued.store(victim.queue.size(), std::memory_order_relaxed);
    }
    if (taken == 0) continue;
    if (taken > 1) {
      std::lock_guard<internal::SpinLock> lock(self.lock);
      for (size_t j = 1; j < taken; ++j) self.queue.Push(std::move(batch[j]));
      self.queued.store(self.queue.size(), std::memory_order_relaxed);
    }
    return std::move(batch[0]);
  }
  return Runnable();
}

bool ThreadPoolScheduler::HasVisibleWork() const {
  if (injector_->queued.load(std::memory_order_relaxed) != 0) return true;
  for (const auto& worker : workers_) {
    if (worker->queued.load(std::memory_order_relaxed) != 0) return true;
  }
  return false;
}

bool ThreadPoolScheduler::WaitForWork(PoolWorker&) {
  // Spin first: work often arrives within microseconds, and a sleep costs a
  // system call on both sides.
  for (int round = 0; round < internal::kSpinRoundsPause + internal::kSpinRoundsYield; ++round) {
    if (stopping_workers_.load(std::memory_order_relaxed)) return false;
    if (HasVisibleWork()) return true;
    if (round < internal::kSpinRoundsPause) {
      for (int i = 0; i < 32; ++i) internal::CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  std::unique_lock<std::mutex> lock(idle_mu_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  // Pairs with the fence in NotifyWorkAvailable (see there).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool keep_running = true;
  for (;;) {
    if (stopping_workers_.load(std::memory_order_relaxed)) {
      keep_running = false;
      break;
    }
    if (HasVisibleWork()) break;
    if (wake_tokens_ > 0) {
      --wake_tokens_;
      break;
    }
    idle_cv_.wait(lock);
  }
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
    // Cancelled entries are skipped as they surface.
    while (!timer_heap_.empty()) {
      const TimerEntry& top = timer_heap_.front();
      const TimerSlot& slot = timer_slots_[top.slot];
      if (slot.armed && slot.generation == top.generation) break;
      std::pop_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
      timer_heap_.pop_back();
      --stale_timer_entries_;
    }
    if (timer_heap_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    const Instant now = Clock::now();
    if (timer_heap_.front().deadline > now) {
      timer_cv_.wait_until(lock, timer_heap_.front().deadline);
      continue;
    }
    while (!timer_heap_.empty() && timer_heap_.front().deadline <= now) {
      std::pop_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
      const TimerEntry fired = timer_heap_.back();
      timer_heap_.pop_back();
      TimerSlot& slot = timer_slots_[fired.slot];
      if (!slot.armed || slot.generation != fired.generation) {
        --stale_timer_entries_;
        continue;
      }
      due.push_back(std::move(slot.waker));
      slot.armed = false;
      ++slot.generation;
      free_timer_slots_.push_back(fired.slot);
    }
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
  if (deadline <= Clock::now()) {
    waker.Wake();
    return TimerId{};  // already fired; cancelling it is a no-op
  }
  std::lock_guard<std::mutex> lock(timer_mu_);
  uint32_t slot;
  if (!free_timer_slots_.empty()) {
    slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  }
  TimerSlot& entry = timer_slots_[slot];
  entry.waker = std::move(waker);
  entry.armed = true;
  timer_heap_.push_back(TimerEntry{deadline, timer_sequence_++, slot, entry.generation});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
  // Only a new earliest deadline changes what the timer thread waits for.
  const TimerEntry& top = timer_heap_.front();
  if (top.slot == slot && top.generation == entry.generation) timer_cv_.notify_one();
  // Zero is never a valid id (the slot is stored plus one).
  return TimerId{(uint64_t{entry.generation} << 32) | (uint64_t{slot} + 1)};
}

void ThreadPoolScheduler::CancelTimer(TimerId timer) {
  if (timer.value == 0) return;
  const uint32_t slot = static_cast<uint32_t>(timer.value) - 1;
  const uint32_t generation = static_cast<uint32_t>(timer.value >> 32);
  Waker dropped;  // released after the lock
  std::lock_guard<std::mutex> lock(timer_mu_);
  if (slot >= timer_slots_.size()) return;
  TimerSlot& entry = timer_slots_[slot];
  if (!entry.armed || entry.generation != generation) return;
  dropped = std::move(entry.waker);
  entry.armed = false;
  ++entry.generation;
  free_timer_slots_.push_back(slot);
  // The heap entry stays until it surfaces. If stale entries pile up (long
  // timers cancelled early, over and over), rebuild the heap without them.
  if (++stale_timer_entries_ > 1024 && stale_timer_entries_ > timer_heap_.size() / 2) {
    std::erase_if(timer_heap_, [this](const TimerEntry& e) {
      const TimerSlot& s = timer_slots_[e.slot];
      return !s.armed || s.generation != e.generation;
    });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
    stale_timer_entries_ = 0;
  }
}

// -----------------------------------------------------------------------------
// Parking
// -----------------------------------------------------------------------------

bool ThreadPoolScheduler::Park(std::optional<Duration> timeout) { return parker_->Park(timeout); }

Unparker ThreadPoolScheduler::GetUnparker() { return Unparker(parker_); }

// -----------------------------------------------------------------------------
// Task tracking
// -----------------------------------------------------------------------------

PoolShard& ThreadPoolScheduler::ShardFor(uint64_t id) const {
  return shards_[id % internal::kShardCount];
}

void ThreadPoolScheduler::OnTaskSpawned(TaskHeader& task) {
  const uint64_t id = next_task_id_.fetch_add(1, std::memory_order_relaxed);
  task.metadata.id = TaskId{id};
  PoolShard& shard = ShardFor(id);
  std::lock_guard<internal::SpinLock> lock(shard.lock);
  shard.tasks.emplace(id, &task);
}

void ThreadPoolScheduler::OnTaskFinished(TaskHeader& task) {
  const uint64_t id = task.metadata.id.value;
  PoolShard& shard = ShardFor(id);
  std::shared_ptr<PoolBlockWaiter> waiter;
  {
    std::lock_guard<internal::SpinLock> lock(shard.lock);
    shard.tasks.erase(id);
    if (!shard.waiters.empty()) {
      auto it = shard.waiters.find(id);
      if (it != shard.waiters.end()) {
        waiter = std::move(it->second);
        shard.waiters.erase(it);
      }
    }
  }
  if (waiter != nullptr) {
    if (waiter->main_loop) {
      // Under main_mu_, so the loop cannot return (and its caller destroy the
      // scheduler) before this notification is done.
      std::lock_guard<std::mutex> lock(main_mu_);
      waiter->done.store(true, std::memory_order_release);
      main_poked_ = true;
      if (main_waiting_) main_cv_.notify_one();
    } else {
      {
        std::lock_guard<std::mutex> lock(waiter->mu);
        waiter->done.store(true, std::memory_order_release);
      }
      waiter->cv.notify_one();
    }
  }
  // After a deferred free (see ReleaseOrDeferFree) the last task to finish
  // frees the scheduler; the task core makes no further call into it.
  if (free_when_idle_.load(std::memory_order_acquire) && LiveTaskCount() == 0 &&
      !free_claimed_.exchange(true)) {
    delete this;
  }
}

bool ThreadPoolScheduler::IsTaskRunning(TaskId id) const {
  PoolShard& shard = ShardFor(id.value);
  std::lock_guard<internal::SpinLock> lock(shard.lock);
  return shard.tasks.contains(id.value);
}

size_t ThreadPoolScheduler::LiveTaskCount() const {
  size_t count = 0;
  for (size_t i = 0; i < internal::kShardCount; ++i) {
    PoolShard& shard = shards_[i];
    std::lock_guard<internal::SpinLock> lock(shard.lock);
    count += shard.tasks.size();
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
  PoolShard& shard = ShardFor(id);
  std::lock_guard<internal::SpinLock> lock(shard.lock);
  if (!shard.tasks.contains(id)) return nullptr;  // finished and no longer tracked
  auto [it, inserted] = shard.waiters.try_emplace(id);
  if (!inserted) {
    error = absl::FailedPreconditionError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(),
        "): another BlockOn already waits for this task; a task has one owner"));
    return nullptr;
  }
  it->second = std::make_shared<PoolBlockWaiter>(main_loop);
  return it->second;
}

void ThreadPoolScheduler::UnregisterBlockWaiter(TaskHeader& task) {
  const uint64_t id = task.metadata.id.value;
  PoolShard& shard = ShardFor(id);
  std::lock_guard<internal::SpinLock> lock(shard.lock);
  shard.waiters.erase(id);
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
    absl::Status error;
    std::shared_ptr<PoolBlockWaiter> waiter = RegisterBlockWaiter(task, true, error);
    if (waiter == nullptr) return error;
    absl::Status status = DrainMainLoop(
        LoopEnd::kBlockOn, [&] { return waiter->done.load(std::memory_order_acquire); },
        std::nullopt);
    if (!waiter->done.load(std::memory_order_acquire)) UnregisterBlockWaiter(task);
    return status;
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
  return DrainMainLoop(LoopEnd::kStop, [] { return false; }, std::nullopt);
}

absl::Status ThreadPoolScheduler::RunUntil(absl::FunctionRef<bool()> done) {
  if (absl::Status status = CheckCanDrain("RunUntil()"); !status.ok()) return status;
  return DrainMainLoop(LoopEnd::kTaskOrPredicate, done, options_.predicate_recheck_interval);
}

absl::Status ThreadPoolScheduler::RunUntilTask(TaskHeader& task) {
  if (absl::Status status = CheckCanDrain("RunUntil(task)"); !status.ok()) return status;
  if (task.scheduler() != this) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RunUntil(", task.metadata.DebugString(), "): the task belongs to another scheduler"));
  }
  absl::Status error;
  std::shared_ptr<PoolBlockWaiter> waiter = RegisterBlockWaiter(task, true, error);
  if (waiter == nullptr) return error;
  absl::Status status = DrainMainLoop(
      LoopEnd::kTaskOrPredicate, [&] { return waiter->done.load(std::memory_order_acquire); },
      std::nullopt);
  if (!waiter->done.load(std::memory_order_acquire)) UnregisterBlockWaiter(task);
  return status;
}

absl::Status ThreadPoolScheduler::DrainMainLoop(LoopEnd end, absl::FunctionRef<bool()> done,
                                                std::optional<Duration> recheck_interval) {
  {
    std::lock_guard<std::mutex> lock(main_mu_);
    if (shutting_down_) return absl::AbortedError("the scheduler is being destroyed");
    ++active_loops_;
  }
  const ThreadPoolScheduler* const previous_loop = std::exchange(internal::tls_loop_of, this);
  absl::Status status;
  bool finished = false;
  while (!finished) {
    if (end != LoopEnd::kStop && done()) break;
    Runnable next;
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
          next = std::move(main_queue_.front());
          main_queue_.pop_front();
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
    if (next) std::move(next).Run();
  }
  internal::tls_loop_of = previous_loop;
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
