// Channel: senders and receivers cancelled while they wait or after a value
// was handed to them, and channels destroyed with waiters. The seeded
// torture of every primitive is primitives_torture_test.cc.

#include "sim/channel.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/internal/testing/channel_test_util.h"

namespace simsched {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using internal::kChannelTestSeeds;
using internal::TryRecvValue;

TEST(ChannelTest, CancelledWaitingReceiverIsRemovedAndTheValueGoesToTheNext) {
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
  for (uint64_t seed = 0; seed < kChannelTestSeeds; ++seed) {
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
          const absl::Status sent = co_await ch.Send(value);  // not in the if: g++ 12
          if (sent.ok()) confirmed.push_back(value);
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

}  // namespace
}  // namespace simsched
