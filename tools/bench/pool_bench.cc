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
// Each benchmark runs 5 repetitions; at the end the binary prints, per
// workload, the median items/s of both pools and their ratio (the figure
// docs/production.md reports), e.g.
//
//   pool vs asio (median of 5): SpawnComplete 1.44 M/s vs 1.10 M/s = 1.31x
//
// Run:
//   bazel build --config=opt //tools/bench:pool_bench
//   ./bazel-out/k8-opt/bin/tools/bench/pool_bench --benchmark_min_time=0.5
//
// Knobs: SIMSCHED_BENCH_W1_TASKS=<n> changes W1's task count;
// SIMSCHED_BENCH_ITERATIONS=<n> runs every benchmark exactly n iterations,
// once (no repetitions): for counting instructions under callgrind, where
// the per-item cost is (instructions - those of a run with
// --benchmark_filter=NONE) / (n x items per iteration).

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// SIMSCHED_BENCH_ITERATIONS, or 0 when unset.
int64_t FixedIterations() {
  static const int64_t iterations = [] {
    absl::StatusOr<uint64_t> n =
        simsched::testing::EnvironmentUint64("SIMSCHED_BENCH_ITERATIONS", 0);
    if (!n.ok() || *n > INT64_MAX) {
      std::fprintf(stderr, "SIMSCHED_BENCH_ITERATIONS must be an iteration count: %s\n",
                   n.ok() ? "too large" : std::string(n.status().message()).c_str());
      std::exit(2);
    }
    return static_cast<int64_t>(*n);
  }();
  return iterations;
}

constexpr int kRepetitions = 5;

// Every benchmark's settings: wall time, 5 repetitions (the summary compares
// medians), or a fixed iteration count for profiling.
void Configure(benchmark::internal::Benchmark* bench) {
  bench->UseRealTime()->Unit(benchmark::kMillisecond);
  if (FixedIterations() > 0) {
    bench->Iterations(FixedIterations())->Repetitions(1);
  } else {
    bench->Repetitions(kRepetitions);
  }
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
BENCHMARK(BM_Pool_SpawnComplete_ThreadPoolScheduler)->Apply(Configure);

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
BENCHMARK(BM_Pool_SpawnComplete_AsioThreadPool)->Apply(Configure);

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
BENCHMARK(BM_Pool_W1_SpawnYield_ThreadPoolScheduler)->Apply(Configure);

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
BENCHMARK(BM_Pool_W1_SpawnYield_AsioThreadPool)->Apply(Configure);

}  // namespace

// -----------------------------------------------------------------------------
// The summary: median items/s per pool and workload, and the ratio
// -----------------------------------------------------------------------------

namespace {

// Passes everything to the usual display reporter and keeps, for each
// benchmark, its median items/s (or its one run's, without repetitions).
class MedianCollector : public benchmark::BenchmarkReporter {
 public:
  explicit MedianCollector(benchmark::BenchmarkReporter* display) : display_(display) {}

  bool ReportContext(const Context& context) override {
    display_->SetOutputStream(&GetOutputStream());
    display_->SetErrorStream(&GetErrorStream());
    return display_->ReportContext(context);
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    display_->ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      auto items = run.counters.find("items_per_second");
      if (items == run.counters.end()) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      if (median || single) {
        medians_[run.run_name.function_name] = {items->second.value, median ? run.repetitions : 1};
      }
    }
  }

  void Finalize() override { display_->Finalize(); }

  // "pool vs asio (median of 5): SpawnComplete 4.55 M/s vs 2.08 M/s = 2.19x",
  // one line per workload both pools ran.
  void PrintSummary(std::FILE* out) const {
    constexpr std::string_view kPrefix = "BM_Pool_";
    constexpr std::string_view kOurs = "_ThreadPoolScheduler";
    constexpr std::string_view kAsio = "_AsioThreadPool";
    for (const auto& [name, ours] : medians_) {
      if (name.rfind(kPrefix, 0) != 0 || name.size() < kPrefix.size() + kOurs.size() ||
          name.compare(name.size() - kOurs.size(), kOurs.size(), kOurs) != 0) {
        continue;
      }
      const std::string workload(name.substr(kPrefix.size(),
                                             name.size() - kPrefix.size() - kOurs.size()));
      auto asio = medians_.find(std::string(kPrefix) + workload + std::string(kAsio));
      if (asio == medians_.end() || asio->second.items_per_second <= 0) continue;
      std::fprintf(out, "pool vs asio (median of %d): %s %.2f M/s vs %.2f M/s = %.2fx\n",
                   static_cast<int>(ours.repetitions), workload.c_str(),
                   ours.items_per_second / 1e6, asio->second.items_per_second / 1e6,
                   ours.items_per_second / asio->second.items_per_second);
    }
  }

 private:
  struct Median {
    double items_per_second;
    int64_t repetitions;
  };
  std::unique_ptr<benchmark::BenchmarkReporter> display_;
  std::map<std::string, Median> medians_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  MedianCollector collector(benchmark::CreateDefaultDisplayReporter());
  benchmark::RunSpecifiedBenchmarks(&collector);
  std::fflush(stdout);
  collector.PrintSummary(stdout);
  benchmark::Shutdown();
  return 0;
}
