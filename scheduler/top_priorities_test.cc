// TopPriorities::TakeNewestIfBest (scheduler/internal/top_priorities.h), the
// PCT and POS fast step's usual pick, against Best() then Take() and against
// a full scan of the queue (the pick the strategies are defined by): over
// thousands of seeded random sequences of enqueues (priorities kept, as PCT
// keeps them, or drawn on every enqueue, as POS draws them, from ranges small
// enough for ties to be common), picks, uniform removals, erasures from the
// middle and new runs, every pick must be the same entry and the queues must
// hold the same entries in the same order after every operation.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/top_priorities.h"
#include "sim/random.h"

namespace simsched {
namespace {

struct FakeTask {
  uint64_t enqueue_seq = 0;
};
using FakeQueue = internal::RingQueue<FakeTask*>;

// The pick the strategies are defined by: the first of the largest.
size_t ScanPick(FakeQueue& queue) {
  size_t best = 0;
  for (size_t i = 1; i < queue.size(); ++i) {
    if (queue[i]->enqueue_seq > queue[best]->enqueue_seq) best = i;
  }
  return best;
}

bool SameOrder(FakeQueue& a, FakeQueue& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

TEST(TopPrioritiesTest, TakeNewestIfBestPicksWhatBestAndTakePick) {
  constexpr uint64_t kSequences = 4000;
  uint64_t picks = 0, newest_taken = 0, fallbacks = 0, ties_at_top = 0;
  for (uint64_t sequence = 0; sequence < kSequences; ++sequence) {
    Rng r(sequence);
    const uint64_t range = std::vector<uint64_t>{2, 5, 40, uint64_t{1} << 62}[r.Below(4)];
    const bool pos = r.Below(2) == 0;  // redraw on every enqueue, or keep (PCT)
    std::deque<FakeTask> tasks;        // stable addresses
    FakeQueue slow, fast;              // Best()+Take(), TakeNewestIfBest() first
    internal::TopPriorities slow_top, fast_top;
    auto enqueue = [&](FakeTask* task) {
      if (pos || task->enqueue_seq == 0) task->enqueue_seq = 1 + r.Below(range);
      slow.push_back(task);
      fast.push_back(task);
    };
    const int operations = 1 + static_cast<int>(r.Below(400));
    for (int op = 0; op < operations; ++op) {
      const uint64_t what = r.Below(100);
      if (what < 20 || (slow.empty() && what < 90)) {
        enqueue(&tasks.emplace_back());
      } else if (what < 90) {
        if (slow.empty()) continue;
        ++picks;
        const size_t scan = ScanPick(slow);
        size_t equal = 0;
        for (size_t i = 0; i < slow.size(); ++i) {
          equal += slow[i]->enqueue_seq == slow[scan]->enqueue_seq;
        }
        ties_at_top += equal > 1;
        const size_t best = slow_top.Best(slow);
        ASSERT_EQ(best, scan) << "sequence " << sequence << " op " << op;
        FakeTask* expected = slow_top.Take(slow, best);
        FakeTask* got = fast_top.TakeNewestIfBest(fast);
        if (got != nullptr) {
          ++newest_taken;
        } else {
          ++fallbacks;
          got = fast_top.Take(fast, fast_top.Best(fast));
        }
        ASSERT_EQ(got, expected) << "sequence " << sequence << " op " << op;
        if (r.Below(6) != 0) enqueue(expected);  // it yields; else it finished
      } else if (what < 94) {
        // A uniform pick (PCT past its strict phase).
        if (slow.empty()) continue;
        const size_t index = r.Below(slow.size());
        FakeTask* picked = index == 0 ? slow.pop_front() : slow.SwapRemove(index);
        ASSERT_EQ(index == 0 ? fast.pop_front() : fast.SwapRemove(index), picked);
        slow_top.Reset();
        fast_top.Reset();
        if (r.Below(2) == 0) enqueue(picked);
      } else if (what < 98) {
        // BlockOn takes a queued task out of the middle.
        if (slow.empty()) continue;
        const size_t index = r.Below(slow.size());
        slow.Erase(index);
        fast.Erase(index);
        slow_top.Reset();
        fast_top.Reset();
      } else {
        // A new run on a reused scheduler.
        slow.clear();
        fast.clear();
        slow_top.Reset();
        fast_top.Reset();
      }
      ASSERT_TRUE(SameOrder(slow, fast)) << "sequence " << sequence << " op " << op;
    }
  }
  // Both paths and ties are exercised.
  EXPECT_GT(picks, 300000u);
  EXPECT_GT(newest_taken, 100000u);
  EXPECT_GT(fallbacks, 50000u);
  EXPECT_GT(ties_at_top, 10000u);
}

// POS's shape: the taken task is re-queued with a fresh draw on every step;
// the newest entry is on top on most steps, and every pick is the scan's.
TEST(TopPrioritiesTest, PosStepsTakeTheNewestEntryOnMostSteps) {
  for (size_t tasks_queued : {1, 2, 10, 100}) {
    Rng r(tasks_queued);
    std::deque<FakeTask> tasks(tasks_queued);
    FakeQueue queue;
    internal::TopPriorities top;
    for (FakeTask& task : tasks) {
      task.enqueue_seq = 1 + (r.Next64() >> 2);
      queue.push_back(&task);
    }
    uint64_t newest_taken = 0;
    constexpr int kSteps = 20000;
    for (int step = 0; step < kSteps; ++step) {
      const size_t scan = ScanPick(queue);
      FakeTask* const expected = queue[scan];
      FakeTask* got = top.TakeNewestIfBest(queue);
      if (got != nullptr) {
        ++newest_taken;
      } else {
        got = top.Take(queue, top.Best(queue));
      }
      ASSERT_EQ(got, expected) << tasks_queued << " tasks, step " << step;
      got->enqueue_seq = 1 + (r.Next64() >> 2);
      queue.push_back(got);
    }
    EXPECT_GT(newest_taken, kSteps * 9 / 10) << tasks_queued << " tasks";
  }
}

}  // namespace
}  // namespace simsched
