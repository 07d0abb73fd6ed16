// The fast step's uniform pick and its guess of the next one
// (internal/pick_lookahead.h): UniformPick() is Rng::Below(), value and
// draws, rejection step included; PeekBelow() predicts Rng::Below() without
// advancing the generator, and a
// run whose queue is long enough to prefetch makes exactly the decisions of
// a run that never does (general steps, which neither guess nor prefetch).

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/internal/pick_lookahead.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"

namespace simsched {
namespace {

using internal::PeekBelow;

std::vector<uint64_t> Bounds(Rng& shapes) {
  std::vector<uint64_t> bounds = {1, 2, 3, 63, 64, 65, 1000, 10'000, uint64_t{1} << 32,
                                  (uint64_t{1} << 63) + 1, UINT64_MAX};
  for (int i = 0; i < 20; ++i) bounds.push_back(1 + shapes.Below(100'000));
  return bounds;
}

TEST(PickLookaheadTest, PeekBelowIsTheNextBelowAndDrawsNothing) {
  Rng shapes(7);
  uint64_t compared = 0;
  uint64_t rejections = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng rng(seed);
    for (int draw = 0; draw < 50; ++draw) {
      for (uint64_t bound : Bounds(shapes)) {
        const size_t peeked = PeekBelow(rng, bound);
        Rng copy = rng;
        Rng raw = rng;
        const uint64_t below = copy.Below(bound);
        // Below's rejection step (low word of the product under the bound)
        // redraws; only then may the guess differ.
        const unsigned __int128 product = static_cast<unsigned __int128>(raw.Next64()) * bound;
        const bool rejected = static_cast<uint64_t>(product) < (0 - bound) % bound;
        if (rejected) {
          ++rejections;
        } else {
          EXPECT_EQ(peeked, below) << "seed " << seed << " bound " << bound;
          ++compared;
        }
        EXPECT_LT(peeked, bound);
      }
      // The peek left the generator alone: it continues as a copy would.
      Rng copy = rng;
      EXPECT_EQ(rng.Next64(), copy.Next64());
    }
  }
  EXPECT_GT(compared, 300'000u);
  // Only huge bounds reject at all, and rarely.
  EXPECT_LT(rejections, compared / 50);
}

// UniformPick() must be Below() exactly: the same value and the generator
// left in the same state, over seeded generators and bounds of every size,
// including the huge ones whose products Below rejects and redraws (a
// difference there would move a scheduling decision, and every trace hash).
TEST(PickLookaheadTest, UniformPickIsBelow) {
  Rng shapes(19);
  uint64_t rejecting = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng below_rng(seed);
    Rng pick_rng(seed);
    for (int draw = 0; draw < 50; ++draw) {
      std::vector<uint64_t> bounds = Bounds(shapes);
      // Bounds just above 2^63 reject about half their draws.
      for (int i = 0; i < 5; ++i) bounds.push_back((uint64_t{1} << 63) + 1 + shapes.Below(1000));
      for (uint64_t bound : bounds) {
        Rng raw = below_rng;
        const unsigned __int128 product = static_cast<unsigned __int128>(raw.Next64()) * bound;
        if (static_cast<uint64_t>(product) < (0 - bound) % bound) ++rejecting;
        ASSERT_EQ(internal::UniformPick(pick_rng, bound), below_rng.Below(bound))
            << "seed " << seed << " bound " << bound;
        ASSERT_EQ(pick_rng.Next64(), below_rng.Next64()) << "seed " << seed;
      }
    }
  }
  EXPECT_GT(rejecting, 1000u);  // the rejection step was exercised
}

// A guess read from a queue slot may be null (a rotated ring's unused
// slot) or a freed task's address: prefetching it reads nothing (and under
// UndefinedBehaviorSanitizer must not count as a member access).
TEST(PickLookaheadTest, PrefetchForPollTakesAnyPointer) {
  internal::PrefetchForPoll(nullptr);
  internal::PrefetchForPoll(reinterpret_cast<const internal::TaskHeader*>(uintptr_t{16}));
  internal::PrefetchForPoll(reinterpret_cast<const internal::TaskHeader*>(UINTPTR_MAX - 8));
  internal::RingQueue<internal::TaskHeader*> queue;
  for (int i = 0; i < 3; ++i) queue.push_back(nullptr);
  (void)queue.pop_front();  // rotated: Guess reads raw slots, some never written
  for (size_t i = 0; i <= queue.size(); ++i) internal::PrefetchForPoll(queue.Guess(i));
  SUCCEED();
}

// Tasks that yield different numbers of times, some spawning more tasks
// (the queue grows and reallocates mid-run) and drawing from the scheduler's
// user generator, so the queue crosses the prefetch threshold both ways and
// a guess is often wrong (a task finished, or others were woken).
struct Outcome {
  uint64_t hash;
  uint64_t steps;
  bool operator==(const Outcome&) const = default;
};

Outcome RunManyTasks(uint64_t seed, int tasks, bool record_trace) {
  TestScheduler s({.seed = seed, .strategy = "random", .record_trace = record_trace});
  for (int i = 0; i < tasks; ++i) {
    Spawn(s, [&s, i]() -> Co<void> {
      const int yields = 1 + i % 7 + static_cast<int>(s.rng().Below(5));
      for (int y = 0; y < yields; ++y) {
        co_await Yield();
        if (i % 11 == 0 && y == 1) {
          for (int k = 0; k < 20; ++k) {
            Spawn(s, [k]() -> Co<void> {
              for (int z = 0; z < k % 4; ++z) co_await Yield();
            }).Detach();
          }
        }
      }
    }).Detach();
  }
  EXPECT_TRUE(s.Run().ok());
  return {s.TraceHash(), s.step_count()};
}

TEST(PickLookaheadTest, PrefetchingRunsDecideAsRunsThatDoNot) {
  for (int tasks : {static_cast<int>(internal::kPrefetchFromQueueSize) - 1, 100, 300}) {
    for (uint64_t seed = 0; seed < 40; ++seed) {
      const Outcome plain = RunManyTasks(seed, tasks, /*record_trace=*/false);
      EXPECT_EQ(plain, RunManyTasks(seed, tasks, /*record_trace=*/true))
          << tasks << " tasks, seed " << seed;
      EXPECT_GT(plain.steps, static_cast<uint64_t>(tasks));
    }
  }
}

}  // namespace
}  // namespace simsched
