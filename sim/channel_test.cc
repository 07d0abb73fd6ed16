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
#include "sim/semaphore.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

constexpr uint64_t kSeeds = 20;

// The value TryRecv gives, or nullopt on any error (a failing test reports
// instead of crashing on a non-OK StatusOr).
template <typename T>
std::optional<T> TryRecvValue(Channel<T>& ch) {
  absl::StatusOr<T> v = ch.TryRecv();
  if (!v.ok()) return std::nullopt;
  return std::move(*v);
}

TEST(ChannelTest, RecvSuspendsUntilAValueIsSent) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
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

TEST(ChannelTest, CancelledWaitingReceiverIsRemovedAndTheValueGoesToTheNext) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(1);
    std::optional<int> first, second;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { first = co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> survivor = Spawn(s, [&]() -> Co<void> { second = co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_EQ(ch.WaitingReceivers(), 2u);
    doomed.Cancel();
    EXPECT_EQ(ch.WaitingReceivers(), 1u);
    ASSERT_TRUE(ch.TrySend(7).ok());
    ASSERT_TRUE(s.BlockOn(survivor).ok());
    EXPECT_FALSE(first.has_value());
    EXPECT_EQ(second, 7) << "seed " << seed;
  }
}

TEST(ChannelTest, CancelledWaitingSenderIsRemovedAndItsValueIsNeverSent) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(1);
    ASSERT_TRUE(ch.TrySend(1).ok());
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Send(2); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Spawn(s, [&]() -> Co<void> { EXPECT_TRUE((co_await ch.Send(3)).ok()); }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_EQ(ch.WaitingSenders(), 2u);
    doomed.Cancel();
    EXPECT_EQ(ch.WaitingSenders(), 1u);
    std::vector<int> received;
    Task<void> consumer = Spawn(s, [&]() -> Co<void> {
      for (int i = 0; i < 2; ++i) received.push_back((co_await ch.Recv()).value());
    });
    ASSERT_TRUE(s.BlockOn(consumer).ok());
    EXPECT_THAT(received, ElementsAre(1, 3)) << "seed " << seed;
    EXPECT_EQ(ch.size(), 0u);
  }
}

// The lost-value case: a value handed straight to a waiting receiver that is
// cancelled before it resumes.
TEST(ChannelTest, ValueHandedToACancelledReceiverGoesBackToTheChannel) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<std::unique_ptr<int>> ch(1);
    bool resumed = false;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> {
      (void)co_await ch.Recv();
      resumed = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_TRUE(ch.TrySend(std::make_unique<int>(7)).ok());  // handed to `doomed`
    EXPECT_EQ(ch.size(), 0u);
    doomed.Cancel();  // woken, but cancelled before it ran
    EXPECT_FALSE(resumed);
    ASSERT_EQ(ch.size(), 1u) << "the handed-over value came back";
    absl::StatusOr<std::unique_ptr<int>> v = ch.TryRecv();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(**v, 7);
  }
}

TEST(ChannelTest, ValueHandedToACancelledReceiverGoesToTheNextWaitingReceiver) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(1);
    std::optional<int> got;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> next = Spawn(s, [&]() -> Co<void> { got = co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_TRUE(ch.TrySend(7).ok());  // handed to `doomed`, the oldest
    EXPECT_EQ(ch.WaitingReceivers(), 1u);
    doomed.Cancel();
    EXPECT_EQ(ch.WaitingReceivers(), 0u) << "passed straight on to `next`";
    ASSERT_TRUE(s.BlockOn(next).ok());
    EXPECT_EQ(got, 7) << "seed " << seed;
  }
}

TEST(ChannelTest, HandedBackValueKeepsItsPlaceAheadOfLaterValues) {
  TestScheduler s;
  Channel<int> ch(1);
  Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(ch.TrySend(1).ok());  // to `doomed`
  ASSERT_TRUE(ch.TrySend(2).ok());  // buffered
  doomed.Cancel();
  EXPECT_EQ(ch.size(), 2u) << "one over capacity until it drains";
  EXPECT_EQ(ch.TrySend(3).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(TryRecvValue(ch), 1);
  EXPECT_EQ(TryRecvValue(ch), 2);
}

// The same promise seen by a suspended receiver: the handed-back value comes
// out first, then the later ones, in order.
TEST(ChannelTest, HandedBackValueIsTheFirstAWaitingReceiverGets) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(3);
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_TRUE(ch.TrySend(1).ok());  // handed to `doomed`
    ASSERT_TRUE(ch.TrySend(2).ok());
    ASSERT_TRUE(ch.TrySend(3).ok());
    doomed.Cancel();
    std::vector<int> got;
    ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                   for (int i = 0; i < 3; ++i) got.push_back(*co_await ch.Recv());
                 }())
                    .ok());
    EXPECT_THAT(got, ElementsAre(1, 2, 3)) << "seed " << seed;
  }
}

// A receive makes room for one value: waiting senders may fill the buffer
// back up to its capacity, never past it.
TEST(ChannelTest, ReceiveLetsWaitingSendersFillTheBufferToCapacityOnly) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(2);
    ASSERT_TRUE(ch.TrySend(1).ok());
    ASSERT_TRUE(ch.TrySend(2).ok());
    std::vector<Task<absl::Status>> senders;
    for (int v = 3; v <= 5; ++v) {
      senders.push_back(Spawn(s, [&ch, v]() -> Co<absl::Status> { co_return co_await ch.Send(v); }));
    }
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_EQ(ch.WaitingSenders(), 3u);
    EXPECT_EQ(TryRecvValue(ch), 1);
    EXPECT_EQ(ch.size(), 2u) << "one waiting sender filled the one free place";
    EXPECT_EQ(ch.WaitingSenders(), 2u);
    EXPECT_EQ(*s.BlockOn([&]() -> Co<int> { co_return *co_await ch.Recv(); }()), 2);
    EXPECT_EQ(ch.size(), 2u) << "capacity 2, seed " << seed;
    EXPECT_EQ(ch.WaitingSenders(), 1u);
    ch.Close();
    ASSERT_TRUE(s.Run().ok());
  }
}

TEST(ChannelTest, HandedBackValueAfterCloseIsStillReceived) {
  TestScheduler s;
  Channel<int> ch(1);
  Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
  std::vector<std::optional<int>> later;
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(ch.TrySend(1).ok());
  ch.Close();
  doomed.Cancel();
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 later.push_back(co_await ch.Recv());
                 later.push_back(co_await ch.Recv());
               }()).ok());
  EXPECT_THAT(later, ElementsAre(std::optional<int>(1), std::nullopt));
}

TEST(ChannelTest, ReceiverWokenByCloseTakesAValueHandedBackMeanwhile) {
  TestScheduler s({.randomize_order = false});
  Channel<int> ch(1);
  std::optional<int> got = -1;
  Task<void> doomed = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  Task<void> other = Spawn(s, [&]() -> Co<void> { got = co_await ch.Recv(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(ch.TrySend(1).ok());  // to `doomed`
  ch.Close();                       // `other` wakes for end-of-stream
  doomed.Cancel();                  // the 1 comes back before `other` runs
  ASSERT_TRUE(s.BlockOn(other).ok());
  EXPECT_EQ(got, 1) << "the channel was not drained when `other` resumed";
}

// Producers and consumers cancelled at random points: every value whose send
// was confirmed is received exactly once, and nothing is received twice or
// out of thin air.
TEST(ChannelTest, NoConfirmedValueIsLostWhenTasksAreCancelledAtRandom) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(2);
    std::vector<int> confirmed, received;
    std::vector<Task<void>> producers, consumers;
    for (int p = 0; p < 3; ++p) {
      producers.push_back(Spawn(s, [&, p]() -> Co<void> {
        for (int i = 0; i < 10; ++i) {
          const int value = p * 100 + i;
          if ((co_await ch.Send(value)).ok()) confirmed.push_back(value);
        }
      }));
    }
    for (int c = 0; c < 4; ++c) {
      consumers.push_back(Spawn(s, [&]() -> Co<void> {
        while (std::optional<int> v = co_await ch.Recv()) received.push_back(*v);
      }));
    }
    Rng& rng = s.rng();
    Task<void> chaos = Spawn(s, [&]() -> Co<void> {
      for (int round = 0; round < 6; ++round) {
        for (uint64_t i = rng.Below(6); i > 0; --i) co_await Yield();
        std::vector<Task<void>>& victims = rng.Chance(1, 2) ? producers : consumers;
        victims[rng.Below(victims.size())].Cancel();
      }
    });
    ASSERT_TRUE(s.BlockOn(chaos).ok());
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ch.Close();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    while (true) {
      absl::StatusOr<int> v = ch.TryRecv();
      if (!v.ok()) break;
      received.push_back(*v);
    }
    std::set<int> unique(received.begin(), received.end());
    EXPECT_EQ(unique.size(), received.size()) << "a value was received twice; seed " << seed;
    for (int value : confirmed) {
      EXPECT_TRUE(unique.contains(value)) << "confirmed value " << value << " lost; seed "
                                          << seed;
    }
    for (int value : received) {
      EXPECT_TRUE(value % 100 < 10 && value / 100 < 3) << value;
    }
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

TEST(ChannelTest, ChannelDestroyedWithWaitersLeavesThemWaiting) {
  TestScheduler s;
  Task<void> receiver, sender;
  {
    Channel<int> ch(1, "short-lived");
    receiver = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Recv(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
  }
  {
    Channel<int> ch(1);
    ASSERT_TRUE(ch.TrySend(0).ok());
    sender = Spawn(s, [&]() -> Co<void> { (void)co_await ch.Send(1); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
  }
  EXPECT_FALSE(receiver.IsFinished());
  EXPECT_FALSE(sender.IsFinished());
  EXPECT_THAT(s.DescribeLiveTasks(), HasSubstr("Channel<int> 'short-lived'::Recv"));
  receiver = Task<void>();  // the awaiters' destructors must not touch freed memory
  sender = Task<void>();
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

// A receiver woken with a value, cancelled only after the channel object is
// gone: the value goes back into the channel's orphaned state, which the
// awaiter keeps alive (ASan/TSan/LSan check this).
TEST(ChannelTest, ReceiverHandedAValueMayBeCancelledAfterTheChannelIsDestroyed) {
  TestScheduler s;
  auto ch = std::make_unique<Channel<std::unique_ptr<int>>>(1);
  Task<void> receiver = Spawn(s, [ch = ch.get()]() -> Co<void> { (void)co_await ch->Recv(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(ch->TrySend(std::make_unique<int>(1)).ok());  // handed over, queued
  ch.reset();
  receiver = Task<void>();
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

// A three-stage pipeline: source -> doubler -> sink over bounded channels.
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
