// One application body, unchanged, on both schedulers: the seeded
// TestScheduler (where it must also be deterministic per seed) and the
// production ThreadPoolScheduler (where it must be correct under real
// threads). The bodies only use the Scheduler interface and sim/ primitives,
// the way application code does.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "sim/channel.h"
#include "sim/combinators.h"
#include "sim/mutex.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

// --- The application code: knows only Scheduler and the primitives. ---

// A three-stage pipeline: producers -> squares -> one consumer summing.
Co<int64_t> Pipeline(Scheduler& s, int producers, int items_each) {
  auto raw = std::make_shared<Channel<int>>(4, "raw");
  auto squared = std::make_shared<Channel<int64_t>>(4, "squared");
  std::vector<Task<void>> producer_tasks;
  for (int p = 0; p < producers; ++p) {
    producer_tasks.push_back(Spawn(s, [raw, p, items_each]() -> Co<void> {
      for (int i = 1; i <= items_each; ++i) {
        absl::Status sent = co_await raw->Send(p * items_each + i);
        EXPECT_TRUE(sent.ok()) << sent.message();
      }
    }));
  }
  Task<void> squarer = Spawn(s, [raw, squared]() -> Co<void> {
    while (std::optional<int> v = co_await raw->Recv()) {
      absl::Status sent = co_await squared->Send(int64_t{*v} * *v);
      EXPECT_TRUE(sent.ok()) << sent.message();
    }
    squared->Close();
  });
  Task<int64_t> consumer = Spawn(s, [squared]() -> Co<int64_t> {
    int64_t sum = 0;
    while (std::optional<int64_t> v = co_await squared->Recv()) sum += *v;
    co_return sum;
  });
  for (Task<void>& t : producer_tasks) co_await t;
  raw->Close();
  co_await squarer;
  co_return co_await consumer;
}

// Tasks increment a plain counter under the async mutex, yielding inside the
// critical section to invite interleaving.
Co<int> MutexCounter(Scheduler& s, int tasks, int increments) {
  auto mu = std::make_shared<Mutex>("counter");
  auto counter = std::make_shared<int>(0);
  std::vector<Task<void>> workers;
  for (int t = 0; t < tasks; ++t) {
    workers.push_back(Spawn(s, [mu, counter, increments]() -> Co<void> {
      for (int i = 0; i < increments; ++i) {
        MutexGuard guard = co_await mu->Lock();
        const int seen = *counter;
        co_await Yield();
        *counter = seen + 1;
      }
    }));
  }
  for (Task<void>& w : workers) co_await w;
  co_return *counter;
}

// A slow call raced against a short timeout, and a fast one against a long
// timeout.
Co<std::pair<bool, bool>> TimeoutRace(Scheduler& s) {
  auto slow = []() -> Co<int> {
    co_await Sleep(milliseconds(200));
    co_return 1;
  };
  auto fast = []() -> Co<int> {
    co_await Sleep(milliseconds(1));
    co_return 2;
  };
  absl::StatusOr<int> timed_out = co_await WithTimeout(Spawn(s, slow()), milliseconds(20));
  absl::StatusOr<int> in_time = co_await WithTimeout(Spawn(s, fast()), milliseconds(2000));
  co_return std::make_pair(timed_out.status().code() == absl::StatusCode::kDeadlineExceeded,
                           in_time.ok() && *in_time == 2);
}

// --- Running it on both schedulers. ---

constexpr int kProducers = 4;
constexpr int kItems = 50;

int64_t ExpectedPipelineSum() {
  int64_t sum = 0;
  for (int i = 1; i <= kProducers * kItems; ++i) sum += int64_t{i} * i;
  return sum;
}

TEST(BothSchedulersTest, PipelineOnTheTestSchedulerIsCorrectAndDeterministicPerSeed) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    uint64_t hashes[2];
    for (int run = 0; run < 2; ++run) {
      auto s = TestScheduler::Create({.seed = seed});
      absl::StatusOr<int64_t> sum = BlockOn(*s, Pipeline(*s, kProducers, kItems));
      ASSERT_TRUE(sum.ok()) << sum.status();
      EXPECT_EQ(*sum, ExpectedPipelineSum()) << "seed " << seed;
      hashes[run] = s->TraceHash();
    }
    EXPECT_EQ(hashes[0], hashes[1]) << "seed " << seed;
  }
}

TEST(BothSchedulersTest, PipelineOnTheThreadPoolIsCorrect) {
  auto s = ThreadPoolScheduler::Create({.worker_threads = 2});
  for (int round = 0; round < 10; ++round) {
    absl::StatusOr<int64_t> sum = BlockOn(*s, Pipeline(*s, kProducers, kItems));
    ASSERT_TRUE(sum.ok()) << sum.status();
    EXPECT_EQ(*sum, ExpectedPipelineSum());
  }
}

TEST(BothSchedulersTest, MutexCounterOnTheTestSchedulerIsExactAndDeterministicPerSeed) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    uint64_t hashes[2];
    for (int run = 0; run < 2; ++run) {
      auto s = TestScheduler::Create({.seed = seed});
      absl::StatusOr<int> count = BlockOn(*s, MutexCounter(*s, 5, 20));
      ASSERT_TRUE(count.ok()) << count.status();
      EXPECT_EQ(*count, 100) << "seed " << seed;
      hashes[run] = s->TraceHash();
    }
    EXPECT_EQ(hashes[0], hashes[1]) << "seed " << seed;
  }
}

TEST(BothSchedulersTest, MutexCounterOnTheThreadPoolIsExact) {
  auto s = ThreadPoolScheduler::Create({.worker_threads = 2});
  for (int round = 0; round < 10; ++round) {
    absl::StatusOr<int> count = BlockOn(*s, MutexCounter(*s, 5, 200));
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count, 1000);
  }
}

TEST(BothSchedulersTest, TimeoutRaceOnTheTestSchedulerIsDeterministicPerSeed) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    uint64_t hashes[2];
    for (int run = 0; run < 2; ++run) {
      auto s = TestScheduler::Create({.seed = seed});
      absl::StatusOr<std::pair<bool, bool>> result = BlockOn(*s, TimeoutRace(*s));
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_TRUE(result->first) << "the slow call must time out";
      EXPECT_TRUE(result->second) << "the fast call must finish in time";
      EXPECT_EQ(s->Elapsed(), milliseconds(21)) << "virtual time: 20ms timeout + 1ms call";
      hashes[run] = s->TraceHash();
    }
    EXPECT_EQ(hashes[0], hashes[1]) << "seed " << seed;
  }
}

TEST(BothSchedulersTest, TimeoutRaceOnTheThreadPool) {
  auto s = ThreadPoolScheduler::Create({.worker_threads = 2});
  absl::StatusOr<std::pair<bool, bool>> result = BlockOn(*s, TimeoutRace(*s));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->first);
  EXPECT_TRUE(result->second);
}

}  // namespace
}  // namespace simsched
