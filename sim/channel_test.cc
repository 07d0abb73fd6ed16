// Channel: sending and receiving, order, capacity, close, reports and
// determinism. Cancellation of senders and receivers: channel_cancel_test.cc.

#include "sim/channel.h"

#include <algorithm>
#include <coroutine>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/mutex.h"
#include "sim/internal/testing/channel_test_util.h"
#include "sim/semaphore.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;
using internal::kChannelTestSeeds;
using internal::TryRecvValue;

TEST(ChannelTest, RecvSuspendsUntilAValueIsSent) {
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(4);
    std::optional<int> got;
    Spawn(s, [&]() -> Co<void> { got = co_await ch.Recv(); }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_FALSE(got.has_value());
    EXPECT_EQ(ch.WaitingReceivers(), 1u);
    ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                   EXPECT_TRUE((co_await ch.Send(42)).ok());
                 }()).ok());
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_EQ(got, 42) << "seed " << seed;
    EXPECT_EQ(ch.WaitingReceivers(), 0u);
  }
}

TEST(ChannelTest, ValuesComeOutInTheOrderTheyWereSent) {
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(2);
    std::vector<int> received;
    Spawn(s, [&]() -> Co<void> {
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE((co_await ch.Send(i)).ok());
        if (i % 3 == 0) co_await Yield();
      }
      ch.Close();
    }).Detach();
    Task<void> consumer = Spawn(s, [&]() -> Co<void> {
      while (std::optional<int> v = co_await ch.Recv()) {
        received.push_back(*v);
        if (*v % 4 == 0) co_await Yield();
      }
    });
    ASSERT_TRUE(s.BlockOn(consumer).ok());
    std::vector<int> expected(20);
    for (int i = 0; i < 20; ++i) expected[i] = i;
    EXPECT_EQ(received, expected) << "seed " << seed;
  }
}

TEST(ChannelTest, SendSuspendsWhileABoundedChannelIsFull) {
  TestScheduler s;
  Channel<int> ch(2);
  int sent = 0;
  Spawn(s, [&]() -> Co<void> {
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE((co_await ch.Send(i)).ok());
      ++sent;
    }
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch.WaitingSenders(), 1u);
  absl::StatusOr<int> first = ch.TryRecv();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 0);
  EXPECT_EQ(ch.size(), 2u) << "the waiting sender's value moved in at once";
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(sent, 3);
  EXPECT_EQ(ch.WaitingSenders(), 0u);
}

TEST(ChannelTest, UnboundedChannelNeverMakesASenderWait) {
  TestScheduler s;
  Channel<int> ch(kUnbounded);
  EXPECT_EQ(ch.capacity(), kUnbounded);
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 for (int i = 0; i < 1000; ++i) EXPECT_TRUE((co_await ch.Send(i)).ok());
               }()).ok());
  EXPECT_EQ(s.step_count(), 1u) << "no send suspended";
  EXPECT_EQ(ch.size(), 1000u);
}

TEST(ChannelTest, ReceiveUntilClosedDrainsBufferedValuesThenEnds) {
  TestScheduler s;
  Channel<std::string> ch(8);
  ASSERT_TRUE(ch.TrySend(std::string("a")).ok());
  ASSERT_TRUE(ch.TrySend(std::string("b")).ok());
  EXPECT_TRUE(ch.Close());
  EXPECT_FALSE(ch.Close()) << "closing twice is reported, not an error";
  std::vector<std::string> received;
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 while (std::optional<std::string> v = co_await ch.Recv()) {
                   received.push_back(*v);
                 }
               }()).ok());
  EXPECT_THAT(received, ElementsAre("a", "b"));
}

TEST(ChannelTest, CloseWakesWaitingReceiversWithNullopt) {
  TestScheduler s;
  Channel<int> ch(1);
  int ended = 0;
  for (int i = 0; i < 3; ++i) {
    Spawn(s, [&]() -> Co<void> {
      std::optional<int> v = co_await ch.Recv();
      EXPECT_FALSE(v.has_value());
      ++ended;
    }).Detach();
  }
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(ch.WaitingReceivers(), 3u);
  ch.Close();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(ended, 3);
}

TEST(ChannelTest, CloseFailsWaitingSendersAndLaterSends) {
  TestScheduler s;
  Channel<int> ch(1, "jobs");
  absl::Status waiting_send;
  Spawn(s, [&]() -> Co<void> {
    EXPECT_TRUE((co_await ch.Send(1)).ok());
    waiting_send = co_await ch.Send(2);
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(ch.WaitingSenders(), 1u);
  ch.Close();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(waiting_send.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(waiting_send.message()),
              ContainsRegex("Send on closed Channel<int> 'jobs' at .*channel_test.cc:[0-9]+"));

  absl::Status late = absl::OkStatus();
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> { late = co_await ch.Send(3); }()).ok());
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ch.TrySend(4).code(), absl::StatusCode::kFailedPrecondition);
  // The value buffered before the close is still there; the refused ones are not.
  absl::StatusOr<int> buffered = ch.TryRecv();
  ASSERT_TRUE(buffered.ok());
  EXPECT_EQ(*buffered, 1);
  EXPECT_EQ(ch.TryRecv().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(ChannelTest, MoveOnlyValuesPassThrough) {
  TestScheduler s;
  Channel<std::unique_ptr<int>> ch(1);
  std::vector<int> received;
  Spawn(s, [&]() -> Co<void> {
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE((co_await ch.Send(std::make_unique<int>(i))).ok());
    }
    ch.Close();
  }).Detach();
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 while (std::optional<std::unique_ptr<int>> v = co_await ch.Recv()) {
                   received.push_back(**v);
                 }
               }()).ok());
  EXPECT_THAT(received, ElementsAre(0, 1, 2, 3, 4));
}

TEST(ChannelTest, TrySendAndTryRecvReportFullEmptyAndClosed) {
  Channel<int> ch(1, "q");
  absl::StatusOr<int> empty = ch.TryRecv();
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("Channel<int> 'q' is empty"));
  EXPECT_TRUE(ch.TrySend(1).ok());
  absl::Status full = ch.TrySend(2);
  EXPECT_EQ(full.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(full.message()), HasSubstr("is full (capacity 1)"));
  ch.Close();
  EXPECT_EQ(ch.TrySend(3).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(TryRecvValue(ch), 1);
  EXPECT_EQ(ch.TryRecv().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(ChannelTest, TrySendLeavesTheValueWithTheCallerWhenItFails) {
  Channel<std::unique_ptr<int>> ch(1);
  ASSERT_TRUE(ch.TrySend(std::make_unique<int>(1)).ok());
  auto value = std::make_unique<int>(2);
  EXPECT_EQ(ch.TrySend(std::move(value)).code(), absl::StatusCode::kUnavailable);
  ASSERT_NE(value, nullptr) << "a refused TrySend must not consume the value";
  EXPECT_EQ(*value, 2);
}

TEST(ChannelTest, ZeroCapacityIsRejected) {
  EXPECT_THROW(Channel<int>(0), std::invalid_argument);
}

TEST(ChannelTest, WaitingReceiversAreServedOldestFirst) {
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(4);
    std::vector<std::pair<int, int>> got;  // (receiver, value)
    for (int r = 0; r < 4; ++r) {
      Spawn(s, [&, r]() -> Co<void> {
        std::optional<int> v = co_await ch.Recv();
        got.emplace_back(r, *v);
      }).Detach();
      ASSERT_TRUE(s.RunUntilIdle().ok());  // receiver r now waits, after r-1
    }
    for (int v = 0; v < 4; ++v) ASSERT_TRUE(ch.TrySend(v * 10).ok());
    ASSERT_TRUE(s.RunUntilIdle().ok());
    std::sort(got.begin(), got.end());
    EXPECT_THAT(got, ElementsAre(std::pair(0, 0), std::pair(1, 10), std::pair(2, 20),
                                 std::pair(3, 30)))
        << "seed " << seed;
  }
}

TEST(ChannelTest, WaitingSendersAreServedOldestFirst) {
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(1);
    ASSERT_TRUE(ch.TrySend(-1).ok());
    for (int i = 0; i < 4; ++i) {
      Spawn(s, [&, i]() -> Co<void> { EXPECT_TRUE((co_await ch.Send(i)).ok()); }).Detach();
      ASSERT_TRUE(s.RunUntilIdle().ok());  // sender i now waits, after i-1
    }
    ASSERT_EQ(ch.WaitingSenders(), 4u);
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<int> v = ch.TryRecv();  // lets the oldest waiting sender in
      ASSERT_TRUE(v.ok()) << v.status();
      order.push_back(*v);
      ASSERT_TRUE(s.RunUntilIdle().ok());
    }
    EXPECT_THAT(order, ElementsAre(-1, 0, 1, 2, 3)) << "seed " << seed;
  }
}

TEST(ChannelTest, DeadlockReportNamesChannelRecvAndTheWaitSite) {
  TestScheduler s;
  Channel<int> ch(4);
  Task<void> waiter = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Channel<int>::Recv at .*channel_test.cc:[0-9]+"));
}

TEST(ChannelTest, DeadlockReportNamesANamedChannelsSend) {
  TestScheduler s;
  Channel<std::string> ch(1, "jobs");
  Task<void> waiter = Spawn(s, [&]() -> Co<void> {
    (void)co_await ch.Send("first");
    (void)co_await ch.Send("second");  // full forever
  });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Channel<std::string> 'jobs'::Send at "
                            ".*channel_test.cc:[0-9]+"));
}

uint64_t PipelineTraceHash(uint64_t seed, std::vector<int>* out) {
  TestScheduler s({.seed = seed});
  Channel<int> raw(2, "raw");
  Channel<int> doubled(1, "doubled");
  std::vector<int> sink;
  Spawn(s, [&]() -> Co<void> {
    for (int i = 0; i < 12; ++i) EXPECT_TRUE((co_await raw.Send(i)).ok());
    raw.Close();
  }).Detach();
  for (int w = 0; w < 2; ++w) {
    Spawn(s, [&]() -> Co<void> {
      while (std::optional<int> v = co_await raw.Recv()) {
        co_await Yield();
        EXPECT_TRUE((co_await doubled.Send(*v * 2)).ok());
      }
    }).Detach();
  }
  Task<void> consumer = Spawn(s, [&]() -> Co<void> {
    for (int i = 0; i < 12; ++i) sink.push_back((co_await doubled.Recv()).value());
  });
  EXPECT_TRUE(s.BlockOn(consumer).ok());
  EXPECT_TRUE(s.RunUntilIdle().ok());
  *out = sink;
  return s.TraceHash();
}

TEST(ChannelTest, PipelineIsDeterministicPerSeedAndVariesAcrossSeeds) {
  std::set<uint64_t> hashes;
  std::set<std::vector<int>> orders;
  std::vector<int> expected;
  for (int i = 0; i < 12; ++i) expected.push_back(i * 2);
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::vector<int> first, second;
    const uint64_t hash = PipelineTraceHash(seed, &first);
    EXPECT_EQ(hash, PipelineTraceHash(seed, &second)) << "seed " << seed;
    EXPECT_EQ(first, second) << "seed " << seed;
    EXPECT_THAT(first, UnorderedElementsAreArray(expected)) << "seed " << seed;
    hashes.insert(hash);
    orders.insert(first);
  }
  EXPECT_GT(hashes.size(), 20u);
  EXPECT_GT(orders.size(), 1u) << "two doublers reorder values under some seeds";
}

// Every awaitable, awaited outside a simsched task, gives the one error
// (internal::ThrowNotInTask), with the non-waiting form where there is one.
// await_suspend is called directly: that is where the check runs.
TEST(ChannelTest, EveryAwaitableGivesTheSameErrorOutsideATask) {
  auto message_of = [](auto&& awaiter) -> std::string {
    try {
      (void)awaiter.await_suspend(std::noop_coroutine());
    } catch (const std::logic_error& e) {
      return e.what();
    }
    return "no exception";
  };
  const std::string spawn_hint =
      " was awaited outside a simsched task; spawn the coroutine on a Scheduler (Spawn, or "
      "BlockOn from plain code)";
  Channel<int> empty(1);
  EXPECT_EQ(message_of(empty.Recv()), "simsched: Channel::Recv()" + spawn_hint + ", or use TryRecv");
  Channel<int> full(1);
  ASSERT_TRUE(full.TrySend(1).ok());
  EXPECT_EQ(message_of(full.Send(2)), "simsched: Channel::Send()" + spawn_hint + ", or use TrySend");
  Mutex mu;
  std::optional<MutexGuard> held = mu.TryLock();
  EXPECT_EQ(message_of(mu.Lock()), "simsched: Mutex::Lock()" + spawn_hint + ", or use TryLock");
  Semaphore sem(0);
  EXPECT_EQ(message_of(sem.Acquire()),
            "simsched: Semaphore::Acquire()" + spawn_hint + ", or use TryAcquire");
  TestScheduler s;
  Task<void> task = Spawn(s, []() -> Co<void> { co_return; });
  EXPECT_EQ(message_of(task.operator co_await()), "simsched: co_await on a Task" + spawn_hint);
}

// The trace says what woke each waiter, not only which task: "woken by a
// channel send from task 2".
TEST(PrimitiveTraceTest, EachWakeSaysWhatTheWakerDid) {
  // FIFO order, so that each waiter surely waits before it is woken.
  TestScheduler s({.seed = 2, .strategy = "fifo", .record_trace = true});
  Channel<int> ch(1, "jobs");
  Mutex mutex("db");
  Semaphore permits(0, "slots");
  Task<void> receiver = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
  Task<void> sender = Spawn(s, [&]() -> Co<void> {
    co_await Yield();
    (void)co_await ch.Send(1);
  });
  Task<void> holder = Spawn(s, [&]() -> Co<void> {
    MutexGuard guard = co_await mutex.Lock();
    co_await Yield();
    co_await Yield();
  });
  Task<void> locker = Spawn(s, [&]() -> Co<void> {
    co_await Yield();
    MutexGuard guard = co_await mutex.Lock();
  });
  Task<void> acquirer = Spawn(s, [&]() -> Co<void> { co_await permits.Acquire(); });
  Task<void> releaser = Spawn(s, [&]() -> Co<void> {
    co_await Yield();
    permits.Release();
  });
  ASSERT_TRUE(s.Run().ok());
  std::string trace;
  for (const TraceEntry& e : s.trace()) absl::StrAppend(&trace, e.DebugString(), "\n");
  const auto woken = [&](const Task<void>& task) {
    for (const TraceEntry& e : s.trace()) {
      if (e.task == task.id() && e.cause == WakeCause::kTask) return e.DebugString();
    }
    return std::string("(never woken by a task)");
  };
  EXPECT_THAT(woken(receiver),
              HasSubstr(absl::StrCat("woken by a channel send from task ", sender.id().value)))
      << trace;
  EXPECT_THAT(woken(locker),
              HasSubstr(absl::StrCat("woken by a mutex unlock from task ", holder.id().value)))
      << trace;
  EXPECT_THAT(woken(acquirer), HasSubstr(absl::StrCat("woken by a semaphore release from task ",
                                                      releaser.id().value)))
      << trace;
}

}  // namespace
}  // namespace simsched
