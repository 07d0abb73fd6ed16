// TimerQueue (scheduler/internal/timer_queue.h) against a simple model: a
// std::map ordered by (deadline, start order). Thousands of seeded random
// Add/Cancel/PopDue/NextDeadline sequences, with the edge cases the heap's
// bookkeeping can get wrong: equal deadlines, the end of time, deadlines
// already past, cancelling after firing, stale ids after a slot is reused,
// forged ids, the stale-entry rebuild and sequence renumbering (ids across
// it, stale entries of renumbered timers).

#include "scheduler/internal/timer_queue.h"

#include <coroutine>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/waker.h"
#include "sim/random.h"

namespace simsched {
namespace {

using internal::TimerQueue;

// Wakers of distinct tasks, parked forever, to tell timers apart: a timer's
// waker names its task.
class WakerPool {
 public:
  explicit WakerPool(int tasks) {
    for (int i = 0; i < tasks; ++i) Spawn(scheduler_, Park(&wakers_)).Detach();
    while (scheduler_.Step()) {
    }
  }
  const Waker& operator[](size_t i) const { return wakers_[i]; }
  size_t size() const { return wakers_.size(); }

 private:
  struct ParkAwaiter {
    std::vector<Waker>* out;
    bool await_ready() const { return false; }
    void await_suspend(std::coroutine_handle<>) { out->push_back(CurrentWaker()); }
    void await_resume() const {}
  };
  static Co<void> Park(std::vector<Waker>* out) { co_await ParkAwaiter{out}; }

  TestScheduler scheduler_;
  std::vector<Waker> wakers_;
};

Instant At(int64_t ns) { return Instant(Duration(ns)); }

// The model: live timers by (deadline, start order), and each id's key.
struct Model {
  struct Key {
    Instant deadline;
    uint64_t order;
    friend bool operator<(const Key& a, const Key& b) {
      return a.deadline != b.deadline ? a.deadline < b.deadline : a.order < b.order;
    }
  };
  std::map<Key, TaskId> timers;          // key -> the waker's task
  std::map<uint64_t, Key> live_ids;      // TimerId::value -> key
  uint64_t next_order = 0;
};

// Runs `steps` random operations on a queue and the model side by side.
void RunRandomSequence(uint64_t seed, int steps, uint64_t sequence_limit,
                       const WakerPool& wakers) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  TimerQueue queue(sequence_limit);
  Model model;
  std::vector<TimerId> issued;  // every id ever returned, fired or not
  int64_t now = static_cast<int64_t>(rng.Below(3)) - 1;  // sometimes before the epoch
  // Narrow deadline ranges make equal deadlines common.
  const int64_t spread = 1 + static_cast<int64_t>(rng.Below(rng.Below(2) == 0 ? 8 : 10'000));
  std::vector<Waker> due;
  for (int step = 0; step < steps; ++step) {
    const uint64_t op = rng.Below(100);
    if (op < 45) {
      // Add.
      Instant deadline;
      const uint64_t kind = rng.Below(20);
      if (kind == 0) {
        deadline = kEndOfTime;
      } else if (kind == 1) {
        deadline = At(now - static_cast<int64_t>(rng.Below(5)));  // already due
      } else if (kind == 2) {
        deadline = kEndOfTime - Duration(1);  // the latest reachable deadline
      } else {
        deadline = At(now + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(spread))));
      }
      const Waker& waker = wakers[rng.Below(wakers.size())];
      const TimerId id = queue.Add(deadline, waker);
      if (deadline == kEndOfTime) {
        ASSERT_EQ(id, TimerId{}) << "a timer at the end of time is not kept";
      } else {
        ASSERT_NE(id, TimerId{});
        ASSERT_EQ(model.live_ids.count(id.value), 0u) << "id reused while live";
        const Model::Key key{deadline, model.next_order++};
        model.timers.emplace(key, waker.task_id());
        model.live_ids.emplace(id.value, key);
      }
      issued.push_back(id);
    } else if (op < 70) {
      // Cancel: an issued id (live, fired, cancelled or stale), zero, or forged.
      TimerId id;
      const uint64_t kind = rng.Below(10);
      if (kind == 0 || issued.empty()) {
        id = TimerId{rng.Below(4) == 0 ? 0 : rng.Next64()};
      } else if (kind == 1) {
        // Right slot, wrong generation.
        id = issued[rng.Below(issued.size())];
        id.value ^= uint64_t{2} << 32;
      } else {
        id = issued[rng.Below(issued.size())];
      }
      const Waker returned = queue.Cancel(id);
      auto it = model.live_ids.find(id.value);
      if (it == model.live_ids.end()) {
        ASSERT_FALSE(returned) << "cancelling a dead id " << id.value << " returned a waker";
      } else {
        ASSERT_TRUE(returned) << "cancelling live id " << id.value << " returned nothing";
        ASSERT_EQ(returned.task_id(), model.timers.at(it->second));
        model.timers.erase(it->second);
        model.live_ids.erase(it);
      }
    } else if (op < 95) {
      // Advance and pop what is due.
      const uint64_t jump = rng.Below(4);
      if (jump == 1) now += static_cast<int64_t>(rng.Below(static_cast<uint64_t>(spread)));
      if (jump == 2) now += static_cast<int64_t>(rng.Below(static_cast<uint64_t>(spread) * 4));
      due.clear();
      queue.PopDue(At(now), due);
      std::vector<TaskId> expected;
      while (!model.timers.empty() && model.timers.begin()->first.deadline <= At(now)) {
        expected.push_back(model.timers.begin()->second);
        model.timers.erase(model.timers.begin());
      }
      std::erase_if(model.live_ids, [&](const auto& e) { return e.second.deadline <= At(now); });
      std::vector<TaskId> actual;
      for (const Waker& w : due) actual.push_back(w.task_id());
      ASSERT_EQ(actual, expected) << "fired out of (deadline, start) order at " << now;
    } else {
      const Instant expected =
          model.timers.empty() ? Instant::max() : model.timers.begin()->first.deadline;
      ASSERT_EQ(queue.NextDeadline(), expected);
    }
    ASSERT_EQ(queue.live(), model.timers.size());
  }
  // Drain: everything left fires in order at the end of reachable time.
  due.clear();
  queue.PopDue(kEndOfTime, due);
  ASSERT_EQ(due.size(), model.timers.size());
  size_t i = 0;
  for (const auto& [key, task] : model.timers) ASSERT_EQ(due[i++].task_id(), task);
  EXPECT_EQ(queue.live(), 0u);
  EXPECT_EQ(queue.NextDeadline(), Instant::max());
}

TEST(TimerQueueTest, MatchesModelOverThousandsOfShortSequences) {
  WakerPool wakers(61);
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    RunRandomSequence(seed, 150, TimerQueue::kSequenceLimit, wakers);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(TimerQueueTest, MatchesModelOverLongSequences) {
  // Long enough for more than 1024 cancelled entries to pile up and force a
  // rebuild of the heap.
  WakerPool wakers(61);
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    RunRandomSequence(seed * 7919, 40'000, TimerQueue::kSequenceLimit, wakers);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(TimerQueueTest, MatchesModelWhileRenumberingSequences) {
  // A tiny sequence space renumbers the live entries every few hundred
  // starts; order and ids must survive it.
  WakerPool wakers(61);
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    RunRandomSequence(seed, 600, 257, wakers);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// PopNextDue one timer at a time, with starts and cancels between two pops
// (what a wake that calls back into the scheduler's timers would do): each
// pop is the model's first due timer at that moment.
TEST(TimerQueueTest, PopNextDueInterleavedWithAddAndCancelMatchesModel) {
  WakerPool wakers(61);
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    TimerQueue queue;
    std::map<std::pair<int64_t, uint64_t>, std::pair<TimerId, TaskId>> model;  // (deadline, order)
    uint64_t order = 0;
    int64_t now = 0;
    const auto add = [&](int64_t deadline) {
      const Waker& waker = wakers[rng.Below(wakers.size())];
      const TimerId id = queue.Add(At(deadline), waker);
      model.emplace(std::make_pair(deadline, order++), std::make_pair(id, waker.task_id()));
    };
    for (int i = 0; i < 40; ++i) add(static_cast<int64_t>(rng.Below(20)));
    for (int round = 0; round < 30; ++round) {
      now += static_cast<int64_t>(rng.Below(4));
      Waker waker;
      while (queue.PopNextDue(At(now), waker)) {
        ASSERT_FALSE(model.empty());
        ASSERT_LE(model.begin()->first.first, now);
        ASSERT_EQ(waker.task_id(), model.begin()->second.second);
        model.erase(model.begin());
        const uint64_t op = rng.Below(4);
        if (op == 0) add(now - static_cast<int64_t>(rng.Below(3)));  // due at once
        if (op == 1) add(now + 1 + static_cast<int64_t>(rng.Below(10)));
        if (op == 2 && !model.empty()) {
          auto it = model.begin();
          std::advance(it, rng.Below(model.size()));
          ASSERT_TRUE(queue.Cancel(it->second.first));
          model.erase(it);
        }
      }
      ASSERT_TRUE(model.empty() || model.begin()->first.first > now) << "a due timer was left";
      ASSERT_EQ(queue.live(), model.size());
      if (rng.Below(2) == 0) add(now + static_cast<int64_t>(rng.Below(10)));
    }
  }
}

TEST(TimerQueueTest, EqualDeadlinesFireInStartOrder) {
  WakerPool wakers(40);
  TimerQueue queue;
  for (size_t i = 0; i < wakers.size(); ++i) queue.Add(At(5), wakers[i]);
  std::vector<Waker> due;
  queue.PopDue(At(4), due);
  EXPECT_TRUE(due.empty());
  queue.PopDue(At(5), due);
  ASSERT_EQ(due.size(), wakers.size());
  for (size_t i = 0; i < wakers.size(); ++i) EXPECT_EQ(due[i], wakers[i]) << i;
}

TEST(TimerQueueTest, CancelAfterFireAndStaleIdsAreIgnoredWhenTheSlotIsReused) {
  WakerPool wakers(2);
  TimerQueue queue;
  const TimerId first = queue.Add(At(1), wakers[0]);
  std::vector<Waker> due;
  queue.PopDue(At(1), due);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_FALSE(queue.Cancel(first)) << "cancel after fire";
  // The freed slot is reused; the old id must not reach the new timer.
  const TimerId second = queue.Add(At(2), wakers[1]);
  EXPECT_EQ(static_cast<uint32_t>(second.value), static_cast<uint32_t>(first.value));
  EXPECT_NE(second, first);
  EXPECT_FALSE(queue.Cancel(first));
  EXPECT_EQ(queue.live(), 1u);
  EXPECT_EQ(queue.Cancel(second), wakers[1]);
  EXPECT_FALSE(queue.Cancel(second)) << "cancelled twice";
  EXPECT_EQ(queue.live(), 0u);
  EXPECT_EQ(queue.NextDeadline(), Instant::max());
}

// Growth links the new slots onto the free list in index order, so slots
// are handed out as appending them would (ids stay what they were), a freed
// slot is reused first, and a linked slot never armed is not a timer.
TEST(TimerQueueTest, SlotsAreHandedOutInIndexOrderAcrossGrowth) {
  TimerQueue queue;
  const Instant t0 = Instant() + std::chrono::seconds(1);
  std::vector<TimerId> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(queue.Add(t0, Waker()));
  for (int i = 0; i < 40; ++i) EXPECT_EQ(static_cast<uint32_t>(ids[i].value), i + 1u);
  queue.Cancel(ids[4]);
  EXPECT_EQ(static_cast<uint32_t>(queue.Add(t0, Waker()).value), 5u);
  EXPECT_EQ(static_cast<uint32_t>(queue.Add(t0, Waker()).value), 41u);
  // Slot 44 is on the free list (linked by growth), never armed.
  queue.Cancel(TimerId{45});
  EXPECT_EQ(queue.live(), 41u);
  EXPECT_EQ(static_cast<uint32_t>(queue.Add(t0, Waker()).value), 42u);
}

TEST(TimerQueueTest, EndOfTimeKeepsNothing) {
  WakerPool wakers(1);
  TimerQueue queue;
  EXPECT_EQ(queue.Add(kEndOfTime, wakers[0]), TimerId{});
  EXPECT_EQ(queue.live(), 0u);
  EXPECT_FALSE(queue.Cancel(TimerId{}));
  EXPECT_EQ(queue.NextDeadline(), Instant::max());
}

TEST(TimerQueueTest, ExtremeDeadlinesOrderAcrossTheEpoch) {
  WakerPool wakers(4);
  TimerQueue queue;
  queue.Add(kEndOfTime - Duration(1), wakers[0]);
  queue.Add(At(0), wakers[1]);
  queue.Add(Instant::min(), wakers[2]);
  queue.Add(At(-1), wakers[3]);
  EXPECT_EQ(queue.NextDeadline(), Instant::min());
  std::vector<Waker> due;
  queue.PopDue(kEndOfTime, due);
  ASSERT_EQ(due.size(), 4u);
  EXPECT_EQ(due[0], wakers[2]);
  EXPECT_EQ(due[1], wakers[3]);
  EXPECT_EQ(due[2], wakers[1]);
  EXPECT_EQ(due[3], wakers[0]);
}

TEST(TimerQueueTest, MovedFromQueueIsEmptyAndUsable) {
  WakerPool wakers(1);
  TimerQueue queue;
  const TimerId id = queue.Add(At(3), wakers[0]);
  TimerQueue moved(std::move(queue));
  EXPECT_EQ(moved.live(), 1u);
  EXPECT_EQ(queue.live(), 0u);  // NOLINT(bugprone-use-after-move): documented
  EXPECT_FALSE(queue.Cancel(id));
  EXPECT_EQ(queue.NextDeadline(), Instant::max());
  queue.Add(At(1), wakers[0]);
  EXPECT_EQ(queue.live(), 1u);
  EXPECT_EQ(moved.Cancel(id), wakers[0]);
}

TEST(TimerQueueTest, MassCancellationRebuildsAndKeepsOrder) {
  WakerPool wakers(61);
  TimerQueue queue;
  Rng rng(42);
  std::vector<std::pair<TimerId, int64_t>> timers;
  for (int i = 0; i < 5000; ++i) {
    const int64_t deadline = static_cast<int64_t>(rng.Below(100));
    timers.emplace_back(queue.Add(At(deadline), wakers[static_cast<size_t>(i) % 61]), deadline);
  }
  std::map<std::pair<int64_t, int>, TaskId> kept;
  for (int i = 0; i < 5000; ++i) {
    if (i % 5 == 0) {
      kept.emplace(std::make_pair(timers[i].second, i), wakers[static_cast<size_t>(i) % 61].task_id());
    } else {
      ASSERT_TRUE(queue.Cancel(timers[i].first));
    }
  }
  EXPECT_EQ(queue.live(), kept.size());
  std::vector<Waker> due;
  queue.PopDue(At(100), due);
  ASSERT_EQ(due.size(), kept.size());
  size_t i = 0;
  for (const auto& [key, task] : kept) EXPECT_EQ(due[i++].task_id(), task);
}

// A timer's id carries its start sequence, which a renumbering changes in
// the heap; the slot keeps the id's. Long timers started before many
// renumberings are cancelled by their ids, and fire in order if not
// cancelled; ids of timers that fired or were cancelled, in this epoch or
// the one before, cancel nothing, even once their slots hold new timers.
TEST(TimerQueueTest, IdsSurviveRenumberingAndStaleIdsOfTheEpochBeforeCancelNothing) {
  // At most 36 timers live, so an epoch is over 90 starts: the ids of the
  // round before (at most 60 starts old) are of this epoch or the one before.
  constexpr uint64_t kLimit = 128;
  WakerPool wakers(61);
  TimerQueue queue(kLimit);
  // Long timers at equal deadlines (their order is their start order).
  std::vector<TimerId> long_ids;
  for (int i = 0; i < 6; ++i) long_ids.push_back(queue.Add(At(1000), wakers[i]));
  std::vector<TimerId> stale;  // fired or cancelled, in recent epochs
  int64_t now = 0;
  // Churn: 30 starts per round through slots that are reused at once; a
  // renumbering every 90-odd starts.
  for (int round = 0; round < 40; ++round) {
    std::vector<TimerId> round_ids;
    for (int i = 0; i < 30; ++i) {
      round_ids.push_back(queue.Add(At(now + 1 + i % 3), wakers[10 + (i % 40)]));
    }
    // Cancel a third, fire the rest.
    for (size_t i = 0; i < round_ids.size(); i += 3) {
      ASSERT_TRUE(queue.Cancel(round_ids[i])) << "round " << round << " timer " << i;
    }
    now += 3;
    std::vector<Waker> due;
    queue.PopDue(At(now), due);
    ASSERT_EQ(due.size(), 20u) << "round " << round;
    // Stale ids of this round and the one before: none may hit a live timer
    // (the slots they name hold newer timers, or the long ones).
    const size_t live = queue.live();
    for (const TimerId id : stale) ASSERT_FALSE(queue.Cancel(id)) << "round " << round;
    for (const TimerId id : round_ids) ASSERT_FALSE(queue.Cancel(id)) << "round " << round;
    ASSERT_EQ(queue.live(), live);
    stale = round_ids;
  }
  // 40 rounds of 30 starts: a dozen renumberings. The long timers' ids
  // still work: cancel two, the rest fire in start order.
  EXPECT_EQ(queue.Cancel(long_ids[1]), wakers[1]);
  EXPECT_EQ(queue.Cancel(long_ids[4]), wakers[4]);
  EXPECT_FALSE(queue.Cancel(long_ids[4])) << "cancelled twice";
  std::vector<Waker> due;
  queue.PopDue(At(1000), due);
  ASSERT_EQ(due.size(), 4u);
  EXPECT_EQ(due[0], wakers[0]);
  EXPECT_EQ(due[1], wakers[2]);
  EXPECT_EQ(due[2], wakers[3]);
  EXPECT_EQ(due[3], wakers[5]);
  for (const TimerId id : long_ids) EXPECT_FALSE(queue.Cancel(id));
  EXPECT_EQ(queue.live(), 0u);
}

// A renumbered timer that is cancelled leaves a stale heap entry; its slot,
// reused by a new timer, must not make that entry look live.
TEST(TimerQueueTest, AStaleEntryOfARenumberedTimerIsSkippedWhenItsSlotIsReused) {
  constexpr uint64_t kLimit = 4;
  WakerPool wakers(8);
  TimerQueue queue(kLimit);
  const TimerId early = queue.Add(At(5), wakers[0]);
  queue.Add(At(9), wakers[1]);
  queue.Add(At(9), wakers[2]);
  queue.Add(At(9), wakers[3]);
  queue.Add(At(7), wakers[4]);  // renumbers the four before it first
  EXPECT_EQ(queue.Cancel(early), wakers[0]);  // its heap entry stays, stale
  const TimerId reuse = queue.Add(At(6), wakers[5]);  // takes the freed slot
  EXPECT_EQ(static_cast<uint32_t>(reuse.value), static_cast<uint32_t>(early.value));
  EXPECT_EQ(queue.NextDeadline(), At(6));
  std::vector<Waker> due;
  queue.PopDue(At(9), due);
  ASSERT_EQ(due.size(), 5u);
  EXPECT_EQ(due[0], wakers[5]);
  EXPECT_EQ(due[1], wakers[4]);
  EXPECT_EQ(due[2], wakers[1]);
  EXPECT_EQ(due[3], wakers[2]);
  EXPECT_EQ(due[4], wakers[3]);
  EXPECT_EQ(queue.live(), 0u);
}

}  // namespace
}  // namespace simsched
