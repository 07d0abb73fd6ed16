// File: tools/bench/scheduler_bench.cc
// -----------------------------------------------------------------------------
//
// Google Benchmark target comparing the seeded `TestScheduler` with a bare,
// hand-written coroutine loop ("reference") doing the same logical work.
// Workloads (see docs/performance.md for the figures):
//
//   W1  spawn 10,000 tasks that each `co_await Yield()` 100 times.
//       Items: polls (resumptions), 10,000 * 101 per iteration.
//   W2  100,000 tasks each sleeping a seeded random virtual duration in
//       [0, 1ms). Items: timers fired.
//   W3  1,000,000 messages ping-ponged between two tasks through single-slot
//       mailboxes. Items: messages.
//   Memory: heap bytes per task suspended in `Sleep(1h)`, 100,000 tasks.
//
// Each workload runs on three drivers:
//   *_TestScheduler     simsched::TestScheduler, randomized order, seed 1,
//                       no step budget.
//   *_FifoReference     a minimal coroutine type driven by a std::deque of
//                       handles: pop_front, resume; yield = push_back self.
//   *_RandomReference   the same over a std::vector, picking a uniformly random
//                       index with the same PRNG the TestScheduler uses
//                       (`simsched::Rng::Below`), swap with back, pop_back.
// The references keep the scheduler's logical work: every yield and every
// wake goes back through the ready queue, timers go through a binary min-heap
// of (deadline, sequence, handle) under a virtual clock that jumps to the
// earliest deadline when nothing is runnable.
//
// Run:
//   bazel build --config=opt //tools/bench:scheduler_bench
//   ./bazel-bin/tools/bench/scheduler_bench --benchmark_min_time=0.5
//
// SIMSCHED_BENCH_W1_TASKS=<n> shrinks (or grows) W1's task count, for running
// it under valgrind/callgrind.

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/block_allocator.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/wait_record.h"
#include "scheduler/waker.h"
#include "sim/channel.h"
#include "sim/random.h"
#include "testing/sim_test.h"
#include "testing/sweep_config.h"

// -----------------------------------------------------------------------------
// Heap accounting
// -----------------------------------------------------------------------------
//
// The global operator new/delete are replaced with malloc/free. While a
// `HeapCounter` is alive they also add/subtract `malloc_usable_size` of each
// block to a counter (relaxed atomics); otherwise the only extra cost is one
// relaxed load of the flag, so the timing benchmarks are not perturbed.
// Sanitizer builds keep the sanitizer's allocator and skip the memory
// benchmarks.

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SIMSCHED_BENCH_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(SIMSCHED_ASAN) || \
    defined(SIMSCHED_TSAN)
#define SIMSCHED_BENCH_SANITIZED 1
#endif
#ifndef SIMSCHED_BENCH_SANITIZED
#define SIMSCHED_BENCH_SANITIZED 0
#endif

namespace {

std::atomic<bool> g_count_heap{false};
std::atomic<int64_t> g_heap_bytes{0};
std::atomic<int64_t> g_heap_blocks{0};
std::atomic<int64_t> g_heap_allocations{0};  // every allocation, never decremented

[[maybe_unused]] inline void NoteAlloc(void* p) {
  if (g_count_heap.load(std::memory_order_relaxed)) [[unlikely]] {
    g_heap_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    g_heap_blocks.fetch_add(1, std::memory_order_relaxed);
    g_heap_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}

[[maybe_unused]] inline void NoteFree(void* p) {
  if (g_count_heap.load(std::memory_order_relaxed)) [[unlikely]] {
    g_heap_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    g_heap_blocks.fetch_sub(1, std::memory_order_relaxed);
  }
}

[[maybe_unused]] void* CountedAlloc(std::size_t size) noexcept {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p != nullptr) NoteAlloc(p);
  return p;
}

[[maybe_unused]] void* CountedAlignedAlloc(std::size_t size, std::align_val_t align) noexcept {
  const std::size_t alignment = std::max(static_cast<std::size_t>(align), sizeof(void*));
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) return nullptr;
  NoteAlloc(p);
  return p;
}

[[maybe_unused]] void CountedFree(void* p) noexcept {
  if (p == nullptr) return;
  NoteFree(p);
  std::free(p);
}

// Net heap growth (usable bytes and live blocks), and allocations made,
// between construction and the reading. Counting is on while one is alive; not reentrant.
class HeapCounter {
 public:
  HeapCounter()
      : bytes_(g_heap_bytes.load(std::memory_order_relaxed)),
        blocks_(g_heap_blocks.load(std::memory_order_relaxed)),
        allocations_(g_heap_allocations.load(std::memory_order_relaxed)) {
    g_count_heap.store(true, std::memory_order_relaxed);
  }
  ~HeapCounter() { g_count_heap.store(false, std::memory_order_relaxed); }
  HeapCounter(const HeapCounter&) = delete;
  HeapCounter& operator=(const HeapCounter&) = delete;

  int64_t bytes() const { return g_heap_bytes.load(std::memory_order_relaxed) - bytes_; }
  int64_t blocks() const { return g_heap_blocks.load(std::memory_order_relaxed) - blocks_; }
  // Allocations made (freed or not) since construction.
  int64_t allocations() const {
    return g_heap_allocations.load(std::memory_order_relaxed) - allocations_;
  }

 private:
  int64_t bytes_;
  int64_t blocks_;
  int64_t allocations_;
};

}  // namespace

#if !SIMSCHED_BENCH_SANITIZED
void* operator new(std::size_t size) {
  if (void* p = CountedAlloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = CountedAlloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return CountedAlloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = CountedAlignedAlloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
  if (void* p = CountedAlignedAlloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return CountedAlignedAlloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return CountedAlignedAlloc(size, align);
}
void operator delete(void* p) noexcept { CountedFree(p); }
void operator delete[](void* p) noexcept { CountedFree(p); }
void operator delete(void* p, std::size_t) noexcept { CountedFree(p); }
void operator delete[](void* p, std::size_t) noexcept { CountedFree(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { CountedFree(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { CountedFree(p); }
void operator delete(void* p, std::align_val_t) noexcept { CountedFree(p); }
void operator delete[](void* p, std::align_val_t) noexcept { CountedFree(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { CountedFree(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { CountedFree(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { CountedFree(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  CountedFree(p);
}
#endif  // !SIMSCHED_BENCH_SANITIZED

namespace {

using simsched::Co;
using simsched::Duration;

// -----------------------------------------------------------------------------
// Workload parameters
// -----------------------------------------------------------------------------

constexpr uint64_t kSchedulingSeed = 1;
constexpr int kW1DefaultTasks = 10'000;
constexpr int kW1Yields = 100;
constexpr int kW2Tasks = 100'000;
constexpr uint64_t kW2MaxSleepNs = 1'000'000;
constexpr uint64_t kW2DurationSeed = 2;
constexpr uint64_t kW3Messages = 1'000'000;  // both directions together
constexpr int kMemoryTasks = 100'000;
constexpr Duration kMemorySleep = std::chrono::hours(1);

int W1Tasks() {
  static const int tasks = [] {
    absl::StatusOr<uint64_t> n =
        simsched::testing::EnvironmentUint64("SIMSCHED_BENCH_W1_TASKS", kW1DefaultTasks);
    if (!n.ok() || *n == 0 || *n > INT32_MAX) {
      std::fprintf(stderr, "SIMSCHED_BENCH_W1_TASKS must be a positive task count: %s\n",
                   n.ok() ? "0 or too large" : std::string(n.status().message()).c_str());
      std::exit(2);
    }
    return static_cast<int>(*n);
  }();
  return tasks;
}

// The W2 sleep durations, identical for every driver: drawn once from
// simsched::Rng(kW2DurationSeed).Below(1ms).
const std::vector<int64_t>& W2Durations() {
  static const std::vector<int64_t> durations = [] {
    simsched::Rng rng(kW2DurationSeed);
    std::vector<int64_t> out(kW2Tasks);
    for (int64_t& d : out) d = static_cast<int64_t>(rng.Below(kW2MaxSleepNs));
    return out;
  }();
  return durations;
}

uint64_t W2ExpectedTimers() {
  static const uint64_t expected = [] {
    uint64_t n = 0;
    for (int64_t d : W2Durations()) n += d > 0 ? 1 : 0;
    return n;
  }();
  return expected;
}

simsched::TestSchedulerOptions BenchOptions() {
  simsched::TestSchedulerOptions options;
  options.seed = kSchedulingSeed;
  options.randomize_order = true;
  options.max_steps = 0;  // unlimited
  return options;
}

// The items one iteration processed, as a counter: `tools/bench/report
// --instructions` divides a callgrind count of the benchmark function by it.
void ReportItemsPerIteration(benchmark::State& state, uint64_t items_per_iteration) {
  state.counters["items_per_iteration"] =
      benchmark::Counter(static_cast<double>(items_per_iteration));
}

// Wall time of the whole benchmark loop, turned into `ns_per_item` at the end.
class PerItemTimer {
 public:
  PerItemTimer() : start_(std::chrono::steady_clock::now()) {}
  void Report(benchmark::State& state, uint64_t items_per_iteration) const {
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    const double ns = std::chrono::duration<double, std::nano>(elapsed).count();
    const double items =
        static_cast<double>(items_per_iteration) * static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<int64_t>(items));
    state.counters["ns_per_item"] = benchmark::Counter(items > 0 ? ns / items : 0.0);
    ReportItemsPerIteration(state, items_per_iteration);
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

bool CheckStatus(benchmark::State& state, const absl::Status& status) {
  if (status.ok()) return true;
  state.SkipWithError(status.ToString().c_str());
  return false;
}

// "what: expected N, got M", or "" when they agree.
std::string CountMismatch(const char* what, uint64_t actual, uint64_t expected) {
  if (actual == expected) return "";
  return std::string(what) + ": expected " + std::to_string(expected) + ", got " +
         std::to_string(actual);
}

bool CheckCount(benchmark::State& state, const char* what, uint64_t actual, uint64_t expected) {
  const std::string message = CountMismatch(what, actual, expected);
  if (message.empty()) return true;
  state.SkipWithError(message.c_str());
  return false;
}

[[noreturn]] void Fatal(const char* message) {
  std::fprintf(stderr, "scheduler_bench: %s\n", message);
  std::abort();
}

// -----------------------------------------------------------------------------
// TestScheduler workloads (public API only)
// -----------------------------------------------------------------------------

Co<void> YieldingTask(int yields) {
  for (int i = 0; i < yields; ++i) co_await simsched::Yield();
}

Co<void> SleepingTask(Duration duration, uint64_t* fired) {
  co_await simsched::Sleep(duration);
  if (duration > Duration::zero()) ++*fired;
}

// A single-slot mailbox over Waker/CurrentWaker: `Take()` suspends (storing
// the current task's waker) while the slot is empty; `Put()` fills the slot
// and wakes the stored waker. It describes its waits with a WaitRecord it
// holds, as docs/writing-awaitables.md tells a hot awaitable to: recording
// it is two stores. `DescribeWait("Mailbox::Take")` by value would look the
// site up in the per-thread cache on every wait (W3 196 instead of 187
// instructions a message: docs/performance.md, W3).
class Mailbox {
 public:
  void Put(uint64_t value) {
    if (slot_.has_value()) Fatal("Mailbox::Put on a full slot");
    slot_ = value;
    // A consuming wake: leaves waiter_ empty, and its reference goes to
    // the scheduler's queue.
    if (waiter_) std::move(waiter_).Wake();
  }

  class TakeAwaiter {
   public:
    explicit TakeAwaiter(Mailbox& box) : box_(box) {}
    bool await_ready() const noexcept { return box_.slot_.has_value(); }
    void await_suspend(std::coroutine_handle<>) {
      simsched::DescribeWait(box_.take_record_);
      box_.waiter_ = simsched::CurrentWaker();
    }
    uint64_t await_resume() {
      if (!box_.slot_.has_value()) Fatal("Mailbox::Take resumed on an empty slot");
      const uint64_t value = *box_.slot_;
      box_.slot_.reset();
      return value;
    }

   private:
    Mailbox& box_;
  };
  TakeAwaiter Take() { return TakeAwaiter(*this); }

 private:
  std::optional<uint64_t> slot_;
  simsched::Waker waiter_;
  // One record for every wait on this mailbox (a task waits on one at a
  // time, and the mailbox outlives its waiters).
  const simsched::WaitRecord take_record_{"Mailbox::Take", simsched::SourceLocation::current()};
};

Co<void> Pinger(Mailbox& out, Mailbox& in, uint64_t round_trips, uint64_t* messages) {
  for (uint64_t i = 0; i < round_trips; ++i) {
    out.Put(i);
    ++*messages;
    const uint64_t reply = co_await in.Take();
    if (reply != i + 1) Fatal("W3: wrong reply");
  }
}

Co<void> Ponger(Mailbox& in, Mailbox& out, uint64_t round_trips, uint64_t* messages) {
  for (uint64_t i = 0; i < round_trips; ++i) {
    const uint64_t value = co_await in.Take();
    out.Put(value + 1);
    ++*messages;
  }
}

Co<void> SleepForMemory() { co_await simsched::Sleep(kMemorySleep); }

// -----------------------------------------------------------------------------
// Reference: a minimal coroutine type and run loop
// -----------------------------------------------------------------------------

// A fire-and-forget coroutine: lazily started, frame freed when it returns.
struct RefTask {
  struct promise_type {
    RefTask get_return_object() noexcept {
      return RefTask{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }  // destroys the frame
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// FIFO ready queue: pop_front.
class FifoQueue {
 public:
  explicit FifoQueue(uint64_t /*seed*/) {}
  bool empty() const { return queue_.empty(); }
  void Push(std::coroutine_handle<> handle) { queue_.push_back(handle); }
  std::coroutine_handle<> Pop() {
    std::coroutine_handle<> handle = queue_.front();
    queue_.pop_front();
    return handle;
  }

 private:
  std::deque<std::coroutine_handle<>> queue_;
};

// Random-pick ready queue: uniform index via Rng::Below, swap with back, pop.
class RandomQueue {
 public:
  explicit RandomQueue(uint64_t seed) : rng_(seed) {}
  bool empty() const { return queue_.empty(); }
  void Push(std::coroutine_handle<> handle) { queue_.push_back(handle); }
  std::coroutine_handle<> Pop() {
    const size_t index = static_cast<size_t>(rng_.Below(queue_.size()));
    std::swap(queue_[index], queue_.back());
    std::coroutine_handle<> handle = queue_.back();
    queue_.pop_back();
    return handle;
  }

 private:
  std::vector<std::coroutine_handle<>> queue_;
  simsched::Rng rng_;
};

template <typename Queue>
class RefExecutor {
 public:
  explicit RefExecutor(uint64_t seed) : ready_(seed) {}
  ~RefExecutor() {
    while (!ready_.empty()) ready_.Pop().destroy();
    for (const Timer& timer : timers_) timer.handle.destroy();
  }
  RefExecutor(const RefExecutor&) = delete;
  RefExecutor& operator=(const RefExecutor&) = delete;

  void Spawn(RefTask task) { ready_.Push(task.handle); }
  void Wake(std::coroutine_handle<> handle) { ready_.Push(handle); }
  int64_t now() const { return now_; }
  uint64_t polls() const { return polls_; }
  uint64_t timers_fired() const { return timers_fired_; }

  void StartTimer(int64_t deadline, std::coroutine_handle<> handle) {
    timers_.push_back(Timer{deadline, timer_sequence_++, handle});
    std::push_heap(timers_.begin(), timers_.end(), TimerLater{});
  }

  // Polls until nothing is runnable; time stands still.
  void RunUntilIdle() {
    while (!ready_.empty()) {
      ++polls_;
      ready_.Pop().resume();
    }
  }

  // Polls, jumping the clock to the earliest timer whenever nothing is
  // runnable, until no work and no timers remain.
  void Run() {
    for (;;) {
      RunUntilIdle();
      if (timers_.empty()) return;
      now_ = timers_.front().deadline;
      while (!timers_.empty() && timers_.front().deadline <= now_) {
        std::pop_heap(timers_.begin(), timers_.end(), TimerLater{});
        ready_.Push(timers_.back().handle);
        timers_.pop_back();
        ++timers_fired_;
      }
    }
  }

  struct YieldAwaiter {
    RefExecutor& executor;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> self) { executor.Wake(self); }
    void await_resume() const noexcept {}
  };
  YieldAwaiter Yield() { return YieldAwaiter{*this}; }

  struct SleepAwaiter {
    RefExecutor& executor;
    int64_t duration_ns;
    bool await_ready() const noexcept { return duration_ns <= 0; }
    void await_suspend(std::coroutine_handle<> self) {
      executor.StartTimer(executor.now() + duration_ns, self);
    }
    void await_resume() const noexcept {}
  };
  SleepAwaiter Sleep(int64_t duration_ns) { return SleepAwaiter{*this, duration_ns}; }

 private:
  struct Timer {
    int64_t deadline;
    uint64_t sequence;
    std::coroutine_handle<> handle;
  };
  struct TimerLater {
    bool operator()(const Timer& a, const Timer& b) const {
      if (a.deadline != b.deadline) return a.deadline > b.deadline;
      return a.sequence > b.sequence;
    }
  };

  Queue ready_;
  std::vector<Timer> timers_;
  uint64_t timer_sequence_ = 0;
  int64_t now_ = 0;
  uint64_t polls_ = 0;
  uint64_t timers_fired_ = 0;
};

template <typename Executor>
RefTask RefYieldingTask(Executor& executor, int yields) {
  for (int i = 0; i < yields; ++i) co_await executor.Yield();
}

template <typename Executor>
RefTask RefSleepingTask(Executor& executor, int64_t duration_ns, uint64_t* fired) {
  co_await executor.Sleep(duration_ns);
  if (duration_ns > 0) ++*fired;
}

// The same single-slot mailbox with a raw handle: Put pushes the waiting
// handle back onto the ready queue.
template <typename Executor>
class RefMailbox {
 public:
  explicit RefMailbox(Executor& executor) : executor_(executor) {}

  void Put(uint64_t value) {
    if (slot_.has_value()) Fatal("RefMailbox::Put on a full slot");
    slot_ = value;
    if (waiter_) executor_.Wake(std::exchange(waiter_, nullptr));
  }

  struct TakeAwaiter {
    RefMailbox& box;
    bool await_ready() const noexcept { return box.slot_.has_value(); }
    void await_suspend(std::coroutine_handle<> self) noexcept { box.waiter_ = self; }
    uint64_t await_resume() {
      if (!box.slot_.has_value()) Fatal("RefMailbox::Take resumed on an empty slot");
      const uint64_t value = *box.slot_;
      box.slot_.reset();
      return value;
    }
  };
  TakeAwaiter Take() { return TakeAwaiter{*this}; }

 private:
  Executor& executor_;
  std::optional<uint64_t> slot_;
  std::coroutine_handle<> waiter_;
};

template <typename Executor>
RefTask RefPinger(RefMailbox<Executor>& out, RefMailbox<Executor>& in, uint64_t round_trips,
                  uint64_t* messages) {
  for (uint64_t i = 0; i < round_trips; ++i) {
    out.Put(i);
    ++*messages;
    const uint64_t reply = co_await in.Take();
    if (reply != i + 1) Fatal("W3 reference: wrong reply");
  }
}

template <typename Executor>
RefTask RefPonger(RefMailbox<Executor>& in, RefMailbox<Executor>& out, uint64_t round_trips,
                  uint64_t* messages) {
  for (uint64_t i = 0; i < round_trips; ++i) {
    const uint64_t value = co_await in.Take();
    out.Put(value + 1);
    ++*messages;
  }
}

template <typename Executor>
RefTask RefSleepForMemory(Executor& executor) {
  co_await executor.Sleep(
      std::chrono::duration_cast<std::chrono::nanoseconds>(kMemorySleep).count());
}

// -----------------------------------------------------------------------------
// W1: spawn + yield
// -----------------------------------------------------------------------------

void BM_W1_SpawnYield_TestScheduler(benchmark::State& state) {
  const int tasks = W1Tasks();
  const uint64_t expected_polls = static_cast<uint64_t>(tasks) * (kW1Yields + 1);
  uint64_t polls = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    simsched::TestScheduler scheduler(BenchOptions());
    for (int i = 0; i < tasks; ++i) simsched::Spawn(scheduler, YieldingTask(kW1Yields)).Detach();
    if (!CheckStatus(state, scheduler.Run())) return;
    polls = scheduler.step_count();
    if (!CheckCount(state, "polls", polls, expected_polls)) return;
    benchmark::DoNotOptimize(scheduler.TraceHash());
  }
  timer.Report(state, polls);
}

template <typename Queue>
void RunW1Reference(benchmark::State& state) {
  using Executor = RefExecutor<Queue>;
  const int tasks = W1Tasks();
  const uint64_t expected_polls = static_cast<uint64_t>(tasks) * (kW1Yields + 1);
  uint64_t polls = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    Executor executor(kSchedulingSeed);
    for (int i = 0; i < tasks; ++i) executor.Spawn(RefYieldingTask(executor, kW1Yields));
    executor.Run();
    polls = executor.polls();
    if (!CheckCount(state, "polls", polls, expected_polls)) return;
    benchmark::DoNotOptimize(polls);
  }
  timer.Report(state, polls);
}

void BM_W1_SpawnYield_FifoReference(benchmark::State& state) { RunW1Reference<FifoQueue>(state); }
void BM_W1_SpawnYield_RandomReference(benchmark::State& state) {
  RunW1Reference<RandomQueue>(state);
}

// -----------------------------------------------------------------------------
// W2: timers
// -----------------------------------------------------------------------------

void BM_W2_Timers_TestScheduler(benchmark::State& state) {
  const std::vector<int64_t>& durations = W2Durations();
  uint64_t fired = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    simsched::TestScheduler scheduler(BenchOptions());
    fired = 0;
    for (int64_t d : durations) {
      simsched::Spawn(scheduler, SleepingTask(Duration(d), &fired)).Detach();
    }
    if (!CheckStatus(state, scheduler.Run())) return;
    if (!CheckCount(state, "timers fired", fired, W2ExpectedTimers())) return;
    benchmark::DoNotOptimize(scheduler.TraceHash());
  }
  timer.Report(state, fired);
}

template <typename Queue>
void RunW2Reference(benchmark::State& state) {
  using Executor = RefExecutor<Queue>;
  const std::vector<int64_t>& durations = W2Durations();
  uint64_t fired = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    Executor executor(kSchedulingSeed);
    fired = 0;
    for (int64_t d : durations) executor.Spawn(RefSleepingTask(executor, d, &fired));
    executor.Run();
    if (!CheckCount(state, "timers fired", fired, W2ExpectedTimers())) return;
    if (!CheckCount(state, "executor timers fired", executor.timers_fired(), fired)) return;
    benchmark::DoNotOptimize(executor.now());
  }
  timer.Report(state, fired);
}

void BM_W2_Timers_FifoReference(benchmark::State& state) { RunW2Reference<FifoQueue>(state); }
void BM_W2_Timers_RandomReference(benchmark::State& state) { RunW2Reference<RandomQueue>(state); }

// -----------------------------------------------------------------------------
// W3: ping-pong
// -----------------------------------------------------------------------------

void BM_W3_PingPong_TestScheduler(benchmark::State& state) {
  const uint64_t round_trips = kW3Messages / 2;
  uint64_t messages = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    simsched::TestScheduler scheduler(BenchOptions());
    Mailbox to_pong;
    Mailbox to_ping;
    messages = 0;
    simsched::Spawn(scheduler, Pinger(to_pong, to_ping, round_trips, &messages)).Detach();
    simsched::Spawn(scheduler, Ponger(to_pong, to_ping, round_trips, &messages)).Detach();
    if (!CheckStatus(state, scheduler.Run())) return;
    if (!CheckCount(state, "messages", messages, kW3Messages)) return;
    benchmark::DoNotOptimize(scheduler.TraceHash());
  }
  timer.Report(state, messages);
}

template <typename Queue>
void RunW3Reference(benchmark::State& state) {
  using Executor = RefExecutor<Queue>;
  const uint64_t round_trips = kW3Messages / 2;
  uint64_t messages = 0;
  PerItemTimer timer;
  for (auto _ : state) {
    Executor executor(kSchedulingSeed);
    RefMailbox<Executor> to_pong(executor);
    RefMailbox<Executor> to_ping(executor);
    messages = 0;
    executor.Spawn(RefPinger(to_pong, to_ping, round_trips, &messages));
    executor.Spawn(RefPonger(to_pong, to_ping, round_trips, &messages));
    executor.Run();
    if (!CheckCount(state, "messages", messages, kW3Messages)) return;
    benchmark::DoNotOptimize(executor.polls());
  }
  timer.Report(state, messages);
}

void BM_W3_PingPong_FifoReference(benchmark::State& state) { RunW3Reference<FifoQueue>(state); }
void BM_W3_PingPong_RandomReference(benchmark::State& state) { RunW3Reference<RandomQueue>(state); }

// -----------------------------------------------------------------------------
// Memory per suspended task
// -----------------------------------------------------------------------------
//
// Net heap growth (malloc_usable_size of every live block) from just before
// the first spawn to the moment all kMemoryTasks tasks are suspended in a
// one-hour sleep, divided by the task count. Includes the coroutine frame,
// the task header and every container slot the driver keeps per task (ready
// queue leftovers, live-task map, timer heap and slots, amortized growth).
// `frame_bytes` is one coroutine frame on its own (its block's request: a
// task block from the block allocator's cache is not new heap, so the
// allocator's observer reports it; scheduler/internal/block_allocator.h).
// The slabs the blocks are carved from count in full, unused tails included.

bool MemoryCountingAvailable(benchmark::State& state) {
  if (SIMSCHED_BENCH_SANITIZED) {
    state.SkipWithError("heap counting is off in sanitizer builds");
    return false;
  }
  return true;
}

void ReportMemory(benchmark::State& state, int64_t bytes, int64_t blocks, int64_t frame_bytes) {
  state.counters["bytes_per_task"] = benchmark::Counter(static_cast<double>(bytes) / kMemoryTasks);
  state.counters["allocs_per_task"] =
      benchmark::Counter(static_cast<double>(blocks) / kMemoryTasks);
  state.counters["frame_bytes"] = benchmark::Counter(static_cast<double>(frame_bytes));
}

void BM_MemoryPerSuspendedTask_TestScheduler(benchmark::State& state) {
  if (!MemoryCountingAvailable(state)) return;
  int64_t bytes = 0;
  int64_t blocks = 0;
  int64_t frame_bytes = 0;
  for (auto _ : state) {
    simsched::TestScheduler scheduler(BenchOptions());
    {
      HeapCounter counter;
      for (int i = 0; i < kMemoryTasks; ++i) simsched::Spawn(scheduler, SleepForMemory()).Detach();
      if (!CheckStatus(state, scheduler.RunUntilIdle())) return;
      bytes = counter.bytes();
      blocks = counter.blocks();
    }
    if (!CheckCount(state, "suspended tasks", scheduler.LiveTaskCount(), kMemoryTasks)) return;
  }
  if constexpr (simsched::internal::kPlainTaskBlocks) {
    HeapCounter counter;
    Co<void> co = SleepForMemory();
    frame_bytes = counter.bytes();
  } else {
    static int64_t requested = 0;
    simsched::internal::tls_block_cache.SetObserver(
        [](std::size_t size, bool freed) { requested = freed ? requested : size; });
    Co<void> co = SleepForMemory();
    simsched::internal::tls_block_cache.SetObserver(nullptr);
    frame_bytes = requested;
  }
  ReportMemory(state, bytes, blocks, frame_bytes);
}

void BM_MemoryPerSuspendedTask_Reference(benchmark::State& state) {
  if (!MemoryCountingAvailable(state)) return;
  using Executor = RefExecutor<FifoQueue>;
  int64_t bytes = 0;
  int64_t blocks = 0;
  int64_t frame_bytes = 0;
  for (auto _ : state) {
    Executor executor(kSchedulingSeed);
    {
      HeapCounter counter;
      for (int i = 0; i < kMemoryTasks; ++i) executor.Spawn(RefSleepForMemory(executor));
      executor.RunUntilIdle();
      bytes = counter.bytes();
      blocks = counter.blocks();
    }
    if (!CheckCount(state, "polls", executor.polls(), kMemoryTasks)) return;
  }
  {
    Executor executor(kSchedulingSeed);
    HeapCounter counter;
    RefTask task = RefSleepForMemory(executor);
    frame_bytes = counter.bytes();
    task.handle.destroy();
  }
  ReportMemory(state, bytes, blocks, frame_bytes);
}

// --- Issue #5/#16: seed-sweep throughput of a small scenario. ---
//
// 10 tasks of about 100 steps each (99 yields), swept through the harness
// (RunSimTest: per seed a TestScheduler, gtest failure interception and the
// run-after-body), next to the same scenario on a bare TestScheduler loop (a
// fresh scheduler per seed, spawn, Run), so the harness's per-seed overhead
// is visible. Both run under the "random" strategy (the bare scheduler's default);
// `_HarnessMix` sweeps under the harness's default, "mix" (random, PCT and POS
// by seed; PCT's k is calibrated once per sweep from 3 extra runs of the
// body, which are not seeds of the sweep). `_RandomReference` sweeps the same
// scenario on W1-W3's hand-written random-pick loop (RefExecutor<RandomQueue>,
// seeded with the seed; the same 100 polls a task): what a seed costs on this
// machine with no scheduler at all, so the harness's absolute seeds/s can be
// read against it. The `_EmptyScenario` pair spawns nothing: what a seed
// costs before any step.
// Items are seeds: items_per_second is seeds/s on one core. `allocs_per_seed`
// is heap allocations per seed, counted over one extra sweep of the first
// iteration's seeds that the benchmark's Setup runs (CountSweepAllocations).
//
// SIMSCHED_BENCH_SWEEP_SEEDS=<n> changes the seeds per iteration (2000), for
// running under valgrind/callgrind.

constexpr int kSweepTasks = 10;
constexpr int kSweepYields = 99;
// Sweeps start here, clear of the seeds (0-2) PCT's calibration runs use.
constexpr uint64_t kSweepFirstSeed = 1000;

uint64_t SweepSeedsPerIteration() {
  static const uint64_t seeds = [] {
    absl::StatusOr<uint64_t> n =
        simsched::testing::EnvironmentUint64("SIMSCHED_BENCH_SWEEP_SEEDS", 2000);
    // The sweep keeps one counter per seed: cap the count well below memory.
    if (!n.ok() || *n == 0 || *n > (uint64_t{1} << 32)) {
      std::fprintf(stderr, "SIMSCHED_BENCH_SWEEP_SEEDS must be a positive seed count: %s\n",
                   n.ok() ? "0 or too large" : std::string(n.status().message()).c_str());
      std::exit(2);
    }
    return *n;
  }();
  return seeds;
}

simsched::Co<void> SweepTask() {
  for (int i = 0; i < kSweepYields; ++i) co_await simsched::Yield();
}

void SpawnSweepScenario(simsched::TestScheduler& scheduler) {
  for (int i = 0; i < kSweepTasks; ++i) simsched::Spawn(scheduler, SweepTask()).Detach();
}

// One sweep of `count` seeds from `start` through RunSimTest. Checks that
// every seed of the range ran exactly once and passed (the body may run for
// other seeds too: PCT's calibration runs). Returns what went wrong, or "".
std::string SweepThroughHarness(uint64_t start, uint64_t count, const std::string& strategy,
                                bool spawn) {
  std::vector<uint32_t> runs(count, 0);
  const std::string start_text = std::to_string(start);
  setenv("SIMSCHED_START_SEED", start_text.c_str(), 1);
  ::testing::TestPartResultArray gtest_failures;
  {
    // The harness reports a failed seed through gtest; catch it here.
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD,
        &gtest_failures);
    simsched::testing::RunSimTest(
        "Bench.SmallScenario",
        [&runs, start, count, spawn](simsched::testing::Sim& sim) {
          const uint64_t seed = sim.seed();
          if (seed >= start && seed - start < count) ++runs[seed - start];
          if (spawn) SpawnSweepScenario(sim.scheduler());
        },
        simsched::testing::SimTestOptions{
            .iterations = count, .print_summary = false, .strategy = strategy},
        "", "", simsched::SourceLocation::current());
  }
  unsetenv("SIMSCHED_START_SEED");
  if (gtest_failures.size() > 0) {
    return "the sweep failed: " + std::string(gtest_failures.GetTestPartResult(0).message());
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (runs[i] != 1) {
      return "seed " + std::to_string(start + i) + " ran " + std::to_string(runs[i]) +
             " times, not once";
    }
  }
  return "";
}

// The same seeds on a fresh TestScheduler each, no harness. Returns what went
// wrong, or "".
std::string BareSweep(uint64_t start, uint64_t count, bool spawn) {
  for (uint64_t seed = start; seed < start + count; ++seed) {
    simsched::TestScheduler scheduler({.seed = seed});
    if (spawn) SpawnSweepScenario(scheduler);
    if (!scheduler.Run().ok()) return "Run failed for seed " + std::to_string(seed);
  }
  return "";
}

// The small scenario on the bare random-pick loop: per seed a fresh
// RefExecutor<RandomQueue> seeded with the seed, kSweepTasks tasks of
// kSweepYields yields, run to the end. Checks the polls of the whole range
// (a task's polls are its yields plus its first run, as the TestScheduler's
// steps are), so a broken loop fails rather than reports. Returns what went
// wrong, or "".
std::string RandomReferenceSweep(uint64_t start, uint64_t count) {
  using Executor = RefExecutor<RandomQueue>;
  uint64_t polls = 0;
  for (uint64_t seed = start; seed < start + count; ++seed) {
    Executor executor(seed);
    for (int i = 0; i < kSweepTasks; ++i) executor.Spawn(RefYieldingTask(executor, kSweepYields));
    executor.Run();
    polls += executor.polls();
  }
  return CountMismatch("polls", polls, count * kSweepTasks * (kSweepYields + 1));
}

// What a sweep benchmark sweeps.
enum class SweepLoop { kHarness, kBareScheduler, kRandomReference };
struct SweepKind {
  SweepLoop loop;
  const char* strategy;  // the harness's; the bare scheduler's is always "random"
  bool spawn;            // the small scenario, or no task at all (not the reference)
};
constexpr SweepKind kSmallHarness{SweepLoop::kHarness, "random", true};
constexpr SweepKind kSmallHarnessMix{SweepLoop::kHarness, "mix", true};
constexpr SweepKind kSmallBare{SweepLoop::kBareScheduler, "random", true};
constexpr SweepKind kSmallRandomReference{SweepLoop::kRandomReference, "random", true};
constexpr SweepKind kEmptyHarness{SweepLoop::kHarness, "random", false};
constexpr SweepKind kEmptyBare{SweepLoop::kBareScheduler, "random", false};

std::string Sweep(const SweepKind& kind, uint64_t start, uint64_t count) {
  switch (kind.loop) {
    case SweepLoop::kHarness:
      return SweepThroughHarness(start, count, kind.strategy, kind.spawn);
    case SweepLoop::kBareScheduler:
      return BareSweep(start, count, kind.spawn);
    case SweepLoop::kRandomReference:
      return RandomReferenceSweep(start, count);
  }
  Fatal("Sweep: unknown SweepLoop");
}

// Heap allocations per seed, counted by a sweep benchmark's Setup over the
// seeds its first iteration runs, or the error that sweep hit. Setup runs
// outside the benchmark function, so neither the timed loop nor a callgrind
// count of the function (`tools/bench/report --instructions`) includes this
// extra sweep.
struct SweepAllocations {
  double per_seed = -1;  // not counted (sanitizer builds)
  std::string error;
};
SweepAllocations g_sweep_allocations;

template <const SweepKind& kKind>
void CountSweepAllocations(const benchmark::State& /*state*/) {
  g_sweep_allocations = SweepAllocations{};
  if (SIMSCHED_BENCH_SANITIZED) return;
  const uint64_t count = SweepSeedsPerIteration();
  int64_t allocations = 0;
  std::string error;
  {
    HeapCounter counter;
    error = Sweep(kKind, kSweepFirstSeed, count);
    allocations = counter.allocations();
  }
  g_sweep_allocations.error = std::move(error);
  g_sweep_allocations.per_seed = static_cast<double>(allocations) / static_cast<double>(count);
}

void RunSweepBenchmark(benchmark::State& state, const SweepKind& kind) {
  if (!g_sweep_allocations.error.empty()) {
    state.SkipWithError(("the allocation-counting sweep: " + g_sweep_allocations.error).c_str());
    return;
  }
  const uint64_t per_iteration = SweepSeedsPerIteration();
  uint64_t seeds = 0;
  for (auto _ : state) {
    const std::string error = Sweep(kind, kSweepFirstSeed + seeds, per_iteration);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      return;
    }
    seeds += per_iteration;
  }
  state.SetItemsProcessed(static_cast<int64_t>(seeds));
  ReportItemsPerIteration(state, per_iteration);
  if (g_sweep_allocations.per_seed >= 0) {
    state.counters["allocs_per_seed"] = benchmark::Counter(g_sweep_allocations.per_seed);
  }
}

void BM_SeedSweep_SmallScenario_Harness(benchmark::State& state) {
  RunSweepBenchmark(state, kSmallHarness);
}
void BM_SeedSweep_SmallScenario_HarnessMix(benchmark::State& state) {
  RunSweepBenchmark(state, kSmallHarnessMix);
}
void BM_SeedSweep_SmallScenario_BareScheduler(benchmark::State& state) {
  RunSweepBenchmark(state, kSmallBare);
}
void BM_SeedSweep_SmallScenario_RandomReference(benchmark::State& state) {
  RunSweepBenchmark(state, kSmallRandomReference);
}
void BM_SeedSweep_EmptyScenario_Harness(benchmark::State& state) {
  RunSweepBenchmark(state, kEmptyHarness);
}
void BM_SeedSweep_EmptyScenario_BareScheduler(benchmark::State& state) {
  RunSweepBenchmark(state, kEmptyBare);
}

// --- Issue #8: W3 ping-pong over sim::Channel, on both schedulers. ---
//
// The same coroutine pair on the TestScheduler and on the production
// ThreadPoolScheduler with 2 worker threads. Items are messages.

constexpr int kChannelMessages = 200'000;

simsched::Co<void> ChannelPinger(simsched::Channel<int>& ping, simsched::Channel<int>& pong,
                                 int round_trips) {
  for (int i = 0; i < round_trips; ++i) {
    (void)co_await ping.Send(i);
    (void)co_await pong.Recv();
  }
  ping.Close();
}

simsched::Co<void> ChannelPonger(simsched::Channel<int>& ping, simsched::Channel<int>& pong) {
  while (std::optional<int> v = co_await ping.Recv()) (void)co_await pong.Send(*v);
}

simsched::Co<void> ChannelPingPong(simsched::Scheduler& s, int round_trips) {
  simsched::Channel<int> ping(1, "ping"), pong(1, "pong");
  simsched::Task<void> ponger = simsched::Spawn(s, ChannelPonger(ping, pong));
  co_await simsched::Spawn(s, ChannelPinger(ping, pong, round_trips));
  co_await ponger;
}

void BM_W3_ChannelPingPong_TestScheduler(benchmark::State& state) {
  int64_t messages = 0;
  for (auto _ : state) {
    simsched::TestScheduler scheduler({.seed = 1, .max_steps = 0});
    if (!simsched::BlockOn(scheduler, ChannelPingPong(scheduler, kChannelMessages / 2)).ok()) {
      state.SkipWithError("BlockOn failed");
    }
    messages += kChannelMessages;
  }
  state.SetItemsProcessed(messages);
}

void BM_W3_ChannelPingPong_ThreadPoolScheduler(benchmark::State& state) {
  auto scheduler = simsched::ThreadPoolScheduler::Create({.worker_threads = 2});
  int64_t messages = 0;
  for (auto _ : state) {
    if (!simsched::BlockOn(*scheduler, ChannelPingPong(*scheduler, kChannelMessages / 2)).ok()) {
      state.SkipWithError("BlockOn failed");
    }
    messages += kChannelMessages;
  }
  state.SetItemsProcessed(messages);
}

// --- Issue #16: Event round trips on the TestScheduler. ---
//
// Two tasks hand control back and forth through two Events: each round is a
// Set that wakes a waiter, a Reset, and a Wait that suspends (IsSet plus the
// locked enqueue) on each side. Items are round trips. Run it under
// callgrind to count what Event's locking costs per operation.

constexpr int kEventRounds = 100'000;

simsched::Co<void> EventPinger(simsched::Event& a, simsched::Event& b, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    b.Reset();
    a.Set();
    co_await b.Wait();
  }
}

simsched::Co<void> EventPonger(simsched::Event& a, simsched::Event& b, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    co_await a.Wait();
    a.Reset();
    b.Set();
  }
}

void BM_Event_PingPong_TestScheduler(benchmark::State& state) {
  int64_t rounds = 0;
  for (auto _ : state) {
    simsched::TestScheduler scheduler({.seed = 1, .max_steps = 0});
    simsched::Event a("a"), b("b");
    simsched::Spawn(scheduler, EventPonger(a, b, kEventRounds)).Detach();
    simsched::Spawn(scheduler, EventPinger(a, b, kEventRounds)).Detach();
    if (!CheckStatus(state, scheduler.Run())) return;
    rounds += kEventRounds;
  }
  state.SetItemsProcessed(rounds);
}

// Every workload's inputs are made here, at start-up, before any benchmark
// runs: made on first use inside a benchmark function, they would count as
// its work (W2's durations, 100,000 draws, were 33 instructions a timer in a
// one-iteration callgrind run). The benchmark functions then only read them.
[[maybe_unused]] const bool kInputsMade = [] {
  W1Tasks();
  W2Durations();
  W2ExpectedTimers();
  SweepSeedsPerIteration();
  return true;
}();

BENCHMARK(BM_W3_ChannelPingPong_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Event_PingPong_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W3_ChannelPingPong_ThreadPoolScheduler)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK(BM_SeedSweep_SmallScenario_Harness)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kSmallHarness>);
BENCHMARK(BM_SeedSweep_SmallScenario_HarnessMix)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kSmallHarnessMix>);
BENCHMARK(BM_SeedSweep_SmallScenario_BareScheduler)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kSmallBare>);
BENCHMARK(BM_SeedSweep_SmallScenario_RandomReference)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kSmallRandomReference>);
BENCHMARK(BM_SeedSweep_EmptyScenario_Harness)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kEmptyHarness>);
BENCHMARK(BM_SeedSweep_EmptyScenario_BareScheduler)
    ->Unit(benchmark::kMillisecond)
    ->Setup(CountSweepAllocations<kEmptyBare>);

BENCHMARK(BM_W1_SpawnYield_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W1_SpawnYield_FifoReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W1_SpawnYield_RandomReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W2_Timers_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W2_Timers_FifoReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W2_Timers_RandomReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W3_PingPong_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W3_PingPong_FifoReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W3_PingPong_RandomReference)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemoryPerSuspendedTask_TestScheduler)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_MemoryPerSuspendedTask_Reference)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
