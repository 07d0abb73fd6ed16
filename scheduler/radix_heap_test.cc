// RadixHeap (scheduler/internal/radix_heap.h) against a std::set model over
// thousands of seeded random Push/Min/Pop/reject/Filter/Drain sequences.
// The keys are built as TimerQueue builds them (a high word that is a
// deadline and a low word numbered in push order), and the sequences mix the
// cases the buckets can get wrong: equal high words (the run), pushes at the
// last popped high word and below it (the below-heap), high words far apart
// (every hex digit), keys rejected while they are a bucket's smallest, in
// order and out of order, and pops through all of it.

#include "scheduler/internal/radix_heap.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/random.h"

namespace simsched {
namespace {

using internal::RadixHeap;
using Key = RadixHeap::Key;

Key MakeKey(uint64_t high, uint64_t low) { return (Key{high} << 64) | low; }
uint64_t High(Key key) { return static_cast<uint64_t>(key >> 64); }

// The model: the live keys, plus the keys rejected (cancelled) but possibly
// still in the heap.
struct Model {
  std::set<Key> live;
  std::set<Key> rejected;
};

void RunRandomSequence(uint64_t seed, int steps) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  RadixHeap heap;
  Model model;
  uint64_t next_low = 0;  // keys are numbered in push order, as timers are
  uint64_t floor = rng.Below(2) == 0 ? 0 : rng.Next64() >> 1;  // the "now"
  const uint64_t spread = uint64_t{1} << rng.Below(64);  // 1 .. 2^63
  int keep_calls_rejecting = 0;
  const auto keep = [&](Key key) {
    if (model.rejected.count(key) == 0) return true;
    model.rejected.erase(key);  // dropped: the heap must not ask again
    ++keep_calls_rejecting;
    return false;
  };
  const auto check_min = [&]() -> const Key* {
    const Key* min = heap.Min(keep);
    if (model.live.empty()) {
      EXPECT_EQ(min, nullptr);
    } else {
      EXPECT_NE(min, nullptr);
      if (min != nullptr) EXPECT_TRUE(*min == *model.live.begin());
    }
    return min;
  };
  for (int step = 0; step < steps; ++step) {
    const uint64_t op = rng.Below(100);
    if (op < 45) {
      uint64_t high;
      const uint64_t kind = rng.Below(16);
      if (kind == 0 && floor > 0) {
        high = floor - 1 - rng.Below(std::min<uint64_t>(floor, 5));  // already past
      } else if (kind == 1) {
        high = floor;  // at now
      } else if (kind == 2) {
        high = ~uint64_t{0} - rng.Below(3);  // far future
      } else if (kind == 3 && !model.live.empty()) {
        high = High(*model.live.begin());  // ties with the smallest
      } else {
        const uint64_t room = ~uint64_t{0} - floor;
        high = floor + rng.Below(std::max<uint64_t>(1, std::min(spread, room)));
      }
      const Key key = MakeKey(high, next_low++);
      heap.Push(key);
      model.live.insert(key);
    } else if (op < 60) {
      // Reject a live key: the smallest (timeouts cancelled in order) or any.
      if (model.live.empty()) continue;
      auto it = model.live.begin();
      if (rng.Below(3) != 0) std::advance(it, rng.Below(std::min<uint64_t>(model.live.size(), 50)));
      model.rejected.insert(*it);
      model.live.erase(it);
    } else if (op < 90) {
      // Pop everything up to a new floor, as PopDue does.
      if (rng.Below(3) != 0) {
        const uint64_t room = ~uint64_t{0} - floor;
        floor += rng.Below(std::min(rng.Below(2) == 0 ? spread : spread / 64 + 1, room) + 1);
      }
      for (;;) {
        const Key* min = check_min();
        if (::testing::Test::HasFailure()) return;
        if (min == nullptr || High(*min) > floor) break;
        model.live.erase(model.live.begin());
        heap.Pop();
      }
    } else if (op < 97) {
      check_min();
    } else if (op < 99) {
      heap.Filter(keep);
      ASSERT_TRUE(model.rejected.empty()) << "Filter left a rejected key unasked";
      ASSERT_EQ(heap.size(), model.live.size());
    } else {
      // Drain and push back what is live, as TimerQueue's renumbering does.
      std::vector<Key> keys;
      heap.Drain(keys);
      ASSERT_EQ(heap.size(), 0u);
      ASSERT_EQ(keys.size(), model.live.size() + model.rejected.size());
      model.rejected.clear();
      for (const Key key : model.live) heap.Push(key);
    }
    ASSERT_GE(heap.size(), model.live.size());
    ASSERT_LE(heap.size(), model.live.size() + model.rejected.size());
    if (::testing::Test::HasFailure()) return;
  }
  // Everything left pops in order.
  for (const Key expected : std::set<Key>(model.live)) {
    const Key* min = heap.Min(keep);
    ASSERT_NE(min, nullptr);
    ASSERT_TRUE(*min == expected);
    heap.Pop();
  }
  EXPECT_EQ(heap.Min(keep), nullptr);
  EXPECT_EQ(heap.size(), 0u);
  EXPECT_TRUE(model.rejected.empty()) << "a rejected key was never dropped";
}

TEST(RadixHeapTest, MatchesModelOverThousandsOfShortSequences) {
  for (uint64_t seed = 1; seed <= 4000; ++seed) {
    RunRandomSequence(seed, 200);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) return;
  }
}

TEST(RadixHeapTest, MatchesModelOverLongSequences) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunRandomSequence(seed * 104729, 20'000);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) return;
  }
}

TEST(RadixHeapTest, EqualHighWordsPopInLowWordOrder) {
  RadixHeap heap;
  const auto keep_all = [](Key) { return true; };
  // Pushed out of order across three high words.
  for (uint64_t low : {5u, 1u, 9u, 3u}) heap.Push(MakeKey(100, low));
  for (uint64_t low : {2u, 0u}) heap.Push(MakeKey(7, low));
  heap.Push(MakeKey(1000, 4));
  std::vector<Key> popped;
  while (const Key* min = heap.Min(keep_all)) {
    popped.push_back(*min);
    heap.Pop();
    // A key at the last popped high word, numbered after the rest.
    if (popped.size() == 3) heap.Push(MakeKey(100, 10));
  }
  const std::vector<Key> expected = {MakeKey(7, 0),   MakeKey(7, 2),   MakeKey(100, 1),
                                     MakeKey(100, 3), MakeKey(100, 5), MakeKey(100, 9),
                                     MakeKey(100, 10), MakeKey(1000, 4)};
  EXPECT_TRUE(popped == expected);
}

TEST(RadixHeapTest, KeysBelowTheLastPoppedStillPopFirstAndInOrder) {
  RadixHeap heap;
  const auto keep_all = [](Key) { return true; };
  heap.Push(MakeKey(50, 0));
  heap.Push(MakeKey(60, 1));
  ASSERT_TRUE(*heap.Min(keep_all) == MakeKey(50, 0));
  heap.Pop();
  heap.Push(MakeKey(40, 3));  // below 50: already past
  heap.Push(MakeKey(10, 2));
  heap.Push(MakeKey(55, 4));
  std::vector<uint64_t> highs;
  while (const Key* min = heap.Min(keep_all)) {
    highs.push_back(High(*min));
    heap.Pop();
  }
  EXPECT_EQ(highs, (std::vector<uint64_t>{10, 40, 55, 60}));
}

TEST(RadixHeapTest, RejectingInOrderDropsEachKeyOnce) {
  // Timeouts cancelled in deadline order: every rejection is the bucket's
  // smallest key; each must be asked about exactly once.
  RadixHeap heap;
  std::set<Key> rejected;
  int asked = 0;
  const auto keep = [&](Key key) {
    if (rejected.count(key) == 0) return true;
    ++asked;
    rejected.erase(key);
    return false;
  };
  for (uint64_t i = 0; i < 2000; ++i) heap.Push(MakeKey(1'000'000 + i * 17, i));
  for (uint64_t i = 0; i < 1999; ++i) {
    rejected.insert(MakeKey(1'000'000 + i * 17, i));
    const Key* min = heap.Min(keep);
    ASSERT_NE(min, nullptr);
    ASSERT_TRUE(*min == MakeKey(1'000'000 + (i + 1) * 17, i + 1));
  }
  EXPECT_EQ(asked, 1999);
  EXPECT_EQ(heap.size(), 1u);
}

}  // namespace
}  // namespace simsched
