// RingQueue (scheduler/internal/ring_queue.h) against a std::deque model:
// FIFO order across wrap-around and growth, and SwapRemove both on a queue
// never rotated (the unmasked path) and on one rotated by pop_front; the
// operations that keep a queue unrotated (the uniform strategy's fast step
// relies on them) give the same order as their general twins.

#include "scheduler/internal/ring_queue.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "gtest/gtest.h"
#include "sim/random.h"

namespace simsched::internal {
namespace {

void ExpectSame(RingQueue<uint64_t>& queue, const std::deque<uint64_t>& model) {
  ASSERT_EQ(queue.size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) EXPECT_EQ(queue[i], model[i]) << "index " << i;
}

uint64_t ModelSwapRemove(std::deque<uint64_t>& model, size_t i) {
  const uint64_t value = model[i];
  model[i] = model.back();
  model.pop_back();
  return value;
}

TEST(RingQueueTest, SwapRemoveOnAQueueNeverRotated) {
  RingQueue<uint64_t> queue;
  std::deque<uint64_t> model;
  for (uint64_t v = 1; v <= 100; ++v) {  // grows past the first capacity
    queue.push_back(v);
    model.push_back(v);
  }
  for (size_t i : {size_t{0}, size_t{5}, size_t{97}, size_t{3}}) {
    EXPECT_EQ(queue.SwapRemove(i), ModelSwapRemove(model, i));
  }
  ExpectSame(queue, model);
  while (!model.empty()) {
    const size_t last = model.size() - 1;
    EXPECT_EQ(queue.SwapRemove(last), ModelSwapRemove(model, last));
  }
  EXPECT_TRUE(queue.empty());
}

// The TestScheduler's idle points give a large empty queue's storage back
// (its high-water mark, 8 bytes a task, while the tasks sleep).
TEST(RingQueueTest, ReleaseStorageIfEmptyKeepsSmallOrBusyQueues) {
  RingQueue<uint64_t> queue;
  for (uint64_t v = 1; v <= 200; ++v) queue.push_back(v);
  ASSERT_EQ(queue.capacity(), 256u);
  queue.ReleaseStorageIfEmpty(64);  // not empty: kept
  EXPECT_EQ(queue.capacity(), 256u);
  EXPECT_EQ(queue[199], 200u);
  // Emptied through pop_front (rotated on the way) and SwapRemove.
  for (int i = 0; i < 100; ++i) (void)queue.pop_front();
  EXPECT_TRUE(queue.rotated());
  while (!queue.empty()) (void)queue.SwapRemove(0);
  queue.ReleaseStorageIfEmpty(256);  // not over the capacity kept
  EXPECT_EQ(queue.capacity(), 256u);
  queue.ReleaseStorageIfEmpty(255);
  EXPECT_EQ(queue.capacity(), 0u);
  EXPECT_FALSE(queue.rotated());
  // Usable again from scratch, as a plain array too.
  std::deque<uint64_t> model;
  for (uint64_t v = 1; v <= 70; ++v) {
    queue.PushBackUnrotated(v);
    model.push_back(v);
  }
  EXPECT_EQ(queue.capacity(), 128u);
  ExpectSame(queue, model);
}

TEST(RingQueueTest, SwapRemoveAfterPopFrontWrapsCorrectly) {
  RingQueue<uint64_t> queue;
  std::deque<uint64_t> model;
  for (uint64_t v = 1; v <= 64; ++v) {  // exactly the first capacity
    queue.push_back(v);
    model.push_back(v);
  }
  for (int k = 0; k < 40; ++k) {
    EXPECT_EQ(queue.pop_front(), model.front());
    model.pop_front();
  }
  for (uint64_t v = 100; v < 130; ++v) {  // wraps around the ring's end
    queue.push_back(v);
    model.push_back(v);
  }
  ExpectSame(queue, model);
  for (size_t i : {size_t{0}, size_t{20}, size_t{1}, size_t{50}}) {
    EXPECT_EQ(queue.SwapRemove(i), ModelSwapRemove(model, i));
    ExpectSame(queue, model);
  }
}

// Growth copies the ring as its two runs (head to the end of the storage,
// then the start): a full ring wrapped at every offset keeps its order.
TEST(RingQueueTest, GrowsAFullWrappedRingInOrder) {
  for (size_t offset : {size_t{0}, size_t{1}, size_t{31}, size_t{63}}) {
    SCOPED_TRACE(::testing::Message() << "offset " << offset);
    RingQueue<uint64_t> queue;
    std::deque<uint64_t> model;
    uint64_t next = 1;
    for (int i = 0; i < 64; ++i, ++next) {  // the first storage: 64 slots, full
      queue.push_back(next);
      model.push_back(next);
    }
    for (size_t i = 0; i < offset; ++i, ++next) {  // rotate: still full, wrapped
      ASSERT_EQ(queue.pop_front(), model.front());
      model.pop_front();
      queue.push_back(next);
      model.push_back(next);
    }
    for (int i = 0; i < 200; ++i, ++next) {  // grows twice
      queue.push_back(next);
      model.push_back(next);
    }
    ExpectSame(queue, model);
    while (!model.empty()) {
      ASSERT_EQ(queue.pop_front(), model.front());
      model.pop_front();
    }
    EXPECT_TRUE(queue.empty());
  }
}

TEST(RingQueueTest, RandomOperationsMatchTheModel) {
  RingQueue<uint64_t> queue;
  std::deque<uint64_t> model;
  Rng rng(7);
  uint64_t next = 1;
  for (int op = 0; op < 20000; ++op) {
    const uint64_t kind = rng.Below(10);
    if (model.empty() || kind < 5) {
      queue.push_back(next);
      model.push_back(next);
      ++next;
    } else if (kind < 7) {
      ASSERT_EQ(queue.pop_front(), model.front());
      model.pop_front();
    } else if (kind < 9) {
      const size_t i = rng.Below(model.size());
      ASSERT_EQ(queue.SwapRemove(i), ModelSwapRemove(model, i));
    } else {
      ASSERT_EQ(queue.pop_back(), model.back());
      model.pop_back();
    }
    ASSERT_EQ(queue.size(), model.size());
    if (!model.empty()) {
      ASSERT_EQ(queue.front(), model.front());
      ASSERT_EQ(queue.back(), model.back());
    }
  }
  ExpectSame(queue, model);
}

TEST(RingQueueTest, RemoveFirstInPlaceKeepsPopFrontsOrderWithoutRotating) {
  RingQueue<uint64_t> queue;
  std::deque<uint64_t> model;
  for (uint64_t v = 1; v <= 70; ++v) {  // grows past the first capacity
    queue.push_back(v);
    model.push_back(v);
  }
  for (int k = 0; k < 30; ++k) {
    EXPECT_EQ(queue.RemoveFirstInPlace(), model.front());
    model.pop_front();
    EXPECT_FALSE(queue.rotated());
    ExpectSame(queue, model);
  }
  // On a rotated queue it is pop_front.
  (void)queue.pop_front();
  model.pop_front();
  ASSERT_TRUE(queue.rotated());
  EXPECT_EQ(queue.RemoveFirstInPlace(), model.front());
  model.pop_front();
  ExpectSame(queue, model);
}

// What the uniform strategy does to its queue: swap-removes, pushes, the
// front taken in place and removals by Erase, never pop_front. The queue
// stays unrotated, and the unrotated operations match the general ones.
TEST(RingQueueTest, UnrotatedOperationsMatchTheModel) {
  RingQueue<uint64_t> queue;
  std::deque<uint64_t> model;
  Rng rng(11);
  uint64_t next = 1;
  for (int op = 0; op < 20000; ++op) {
    const uint64_t kind = rng.Below(12);
    if (model.empty() || kind < 4) {
      queue.PushBackUnrotated(next);
      model.push_back(next);
      ++next;
    } else if (kind < 6) {
      queue.push_back(next);
      model.push_back(next);
      ++next;
    } else if (kind < 8) {
      const size_t i = rng.Below(model.size());
      ASSERT_EQ(queue.SwapRemoveUnrotated(i), ModelSwapRemove(model, i));
    } else if (kind < 9) {
      const size_t i = rng.Below(model.size());
      ASSERT_EQ(queue.SwapRemove(i), ModelSwapRemove(model, i));
    } else if (kind < 10) {
      ASSERT_EQ(queue.RemoveFirstInPlace(), model.front());
      model.pop_front();
    } else if (kind < 11) {
      const size_t i = rng.Below(model.size());
      ASSERT_EQ(queue.Erase(i), model[i]);
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ASSERT_EQ(queue.pop_back(), model.back());
      model.pop_back();
    }
    ASSERT_FALSE(queue.rotated());
    ASSERT_EQ(queue.size(), model.size());
    // Unrotated: element i is slot i.
    for (size_t i = 0; i < model.size(); i += 7) ASSERT_EQ(queue.Guess(i), model[i]);
  }
  ExpectSame(queue, model);
}

}  // namespace
}  // namespace simsched::internal
