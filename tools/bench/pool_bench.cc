// File: tools/bench/pool_bench.cc
// -----------------------------------------------------------------------------
//
// Google Benchmark target comparing the production `ThreadPoolScheduler`
// with boost::asio's `thread_pool` doing the same work, both with 2 worker
// threads (see docs/production.md for the figures):
//
//   SpawnComplete  the benchmark thread spawns 10,000 tasks that complete at
//                  once (a detached `Co<void>` that counts down a latch; for
//                  asio a posted handler that does the same) and waits for
//                  all of them. Items: tasks.
//   W1 SpawnYield  10,000 tasks that each `co_await Yield()` 100 times; for
//                  asio a handler that re-posts itself 100 times (a "yield"
//                  is a re-post). Items: polls (handler invocations),
//                  10,000 x 101 per iteration.
//
// The pool (scheduler or asio) is created once per benchmark, outside the
// timed loop; spawning, running and waiting for completion are inside it.
// Times are wall-clock (`UseRealTime`): the work runs on the pools' threads.
//
// Run:
//   bazel build --config=opt //tools/bench:pool_bench
//   ./bazel-bin/tools/bench/pool_bench --benchmark_min_time=0.5

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <memory>
#include <mutex>

#include "benchmark/benchmark.h"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "testing/sweep_config.h"

namespace {

constexpr int kThreads = 2;
constexpr int64_t kSpawnBatch = 10'000;
constexpr int kW1Yields = 100;

// W1's task count: 10,000, or SIMSCHED_BENCH_W1_TASKS (to see the cache
// effect, or to run under valgrind).
int64_t W1Tasks() {
  static const int64_t tasks = [] {
    absl::StatusOr<uint64_t> n =
        simsched::testing::EnvironmentUint64("SIMSCHED_BENCH_W1_TASKS", 10'000);
    if (!n.ok() || *n == 0 || *n > INT64_MAX) {
      std::fprintf(stderr, "SIMSCHED_BENCH_W1_TASKS must be a positive task count: %s\n",
                   n.ok() ? "0 or too large" : std::string(n.status().message()).c_str());
      std::exit(2);
    }
    return static_cast<int64_t>(*n);
  }();
  return tasks;
}

// Latch
//
// Counts down from `count`; Wait() returns once it reached zero. The same
// completion signal for both pools.
class Latch {
 public:
  explicit Latch(int64_t count) : remaining_(count) {}

  void CountDown() {
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
    }
  }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  std::atomic<int64_t> remaining_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// -----------------------------------------------------------------------------
// Spawn and complete
// -----------------------------------------------------------------------------

simsched::Co<void> CompleteAtOnce(Latch* latch) {
  latch->CountDown();
  co_return;
}

void BM_Pool_SpawnComplete_ThreadPoolScheduler(benchmark::State& state) {
  auto pool = simsched::ThreadPoolScheduler::Create({.worker_threads = kThreads});
  for (auto _ : state) {
    Latch latch(kSpawnBatch);
    for (int64_t i = 0; i < kSpawnBatch; ++i) {
      simsched::Spawn(*pool, CompleteAtOnce(&latch)).Detach();
    }
    latch.Wait();
  }
  state.SetItemsProcessed(state.iterations() * kSpawnBatch);
}
BENCHMARK(BM_Pool_SpawnComplete_ThreadPoolScheduler)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Pool_SpawnComplete_AsioThreadPool(benchmark::State& state) {
  boost::asio::thread_pool pool(kThreads);
  for (auto _ : state) {
    Latch latch(kSpawnBatch);
    for (int64_t i = 0; i < kSpawnBatch; ++i) {
      boost::asio::post(pool, [&latch] { latch.CountDown(); });
    }
    latch.Wait();
  }
  pool.join();
  state.SetItemsProcessed(state.iterations() * kSpawnBatch);
}
BENCHMARK(BM_Pool_SpawnComplete_AsioThreadPool)->UseRealTime()->Unit(benchmark::kMillisecond);

// -----------------------------------------------------------------------------
// W1: spawn + yield
// -----------------------------------------------------------------------------

simsched::Co<void> YieldRepeatedly(Latch* latch) {
  for (int i = 0; i < kW1Yields; ++i) co_await simsched::Yield();
  latch->CountDown();
}

void BM_Pool_W1_SpawnYield_ThreadPoolScheduler(benchmark::State& state) {
  auto pool = simsched::ThreadPoolScheduler::Create({.worker_threads = kThreads});
  for (auto _ : state) {
    Latch latch(W1Tasks());
    for (int64_t i = 0; i < W1Tasks(); ++i) {
      simsched::Spawn(*pool, YieldRepeatedly(&latch)).Detach();
    }
    latch.Wait();
  }
  state.SetItemsProcessed(state.iterations() * W1Tasks() * (kW1Yields + 1));
}
BENCHMARK(BM_Pool_W1_SpawnYield_ThreadPoolScheduler)->UseRealTime()->Unit(benchmark::kMillisecond);

// A handler that re-posts itself `remaining` more times, then counts down.
struct AsioYielder {
  boost::asio::thread_pool* pool;
  Latch* latch;
  int remaining;

  void operator()() const {
    if (remaining > 0) {
      boost::asio::post(*pool, AsioYielder{pool, latch, remaining - 1});
    } else {
      latch->CountDown();
    }
  }
};

void BM_Pool_W1_SpawnYield_AsioThreadPool(benchmark::State& state) {
  boost::asio::thread_pool pool(kThreads);
  for (auto _ : state) {
    Latch latch(W1Tasks());
    for (int64_t i = 0; i < W1Tasks(); ++i) {
      boost::asio::post(pool, AsioYielder{&pool, &latch, kW1Yields});
    }
    latch.Wait();
  }
  pool.join();
  state.SetItemsProcessed(state.iterations() * W1Tasks() * (kW1Yields + 1));
}
BENCHMARK(BM_Pool_W1_SpawnYield_AsioThreadPool)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
