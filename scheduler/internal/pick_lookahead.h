// Internal: the TestScheduler's uniform pick (UniformPick, Rng::Below for
// the fast step), and guessing the next one, to prefetch it.
//
// Under a uniform pick the fast step draws `rng.Below(size)` and polls the
// task at that index of the background queue. A task's block (its header's
// hot words and the frame behind them) is cold in the cache when there are
// thousands of tasks, and reading it is a chain of misses: the queue slot,
// then the header, then the frame. The step can ask for the next step's
// task one poll early: the next draw is the generator's next 64 bits mapped
// onto the queue, as Below maps them, and the queue after a task that
// re-queues has the same size. PeekBelow() computes that index from a copy
// of the generator, so the sequence the generator gives to scheduling
// decisions is untouched: a guess that comes out wrong (the poll drew from
// the generator, woke or finished tasks, or Below's rare rejection step
// redraws) costs one wasted prefetch, never a different pick.
//
// Example (the fast step, test_scheduler_steps.cc):
//
//   const size_t index = rng_.Below(size);
//   TaskHeader* next = background_.SwapRemove(index);
//   internal::PrefetchForPoll(background_.Guess(internal::PeekBelow(rng_, size)));
//   ... poll `next` ...

#ifndef SIMSCHED_SCHEDULER_INTERNAL_PICK_LOOKAHEAD_H_
#define SIMSCHED_SCHEDULER_INTERNAL_PICK_LOOKAHEAD_H_

#include <cstddef>
#include <cstdint>

#include "scheduler/internal/task_header.h"
#include "sim/random.h"

namespace simsched::internal {

// UniformPick()
//
// `rng.Below(bound)`, the same value and the same draws, with Below's rare
// rejection step out of line, so that the fast step keeps the product in
// the registers the multiply leaves it in. `bound` must not be zero.
// Below's rejection step, from its first product's words.
[[gnu::cold, gnu::noinline]] inline size_t UniformPickRejecting(Rng& rng, uint64_t bound,
                                                                uint64_t low, uint64_t high) {
  const uint64_t threshold = (0 - bound) % bound;
  while (low < threshold) {
    const unsigned __int128 m = static_cast<unsigned __int128>(rng.Next64()) * bound;
    low = static_cast<uint64_t>(m);
    high = static_cast<uint64_t>(m >> 64);
  }
  return static_cast<size_t>(high);
}
[[gnu::always_inline]] inline size_t UniformPick(Rng& rng, size_t bound) {
  const unsigned __int128 m = static_cast<unsigned __int128>(rng.Next64()) * bound;
  const uint64_t low = static_cast<uint64_t>(m);
  const uint64_t high = static_cast<uint64_t>(m >> 64);
  if (low < bound) [[unlikely]] return UniformPickRejecting(rng, bound, low, high);
  return static_cast<size_t>(high);
}

// PeekBelow()
//
// What `rng.Below(bound)` returns on `rng`'s next draw, without advancing
// `rng`: exact unless Below's rejection step redraws (probability at most
// bound / 2^64). `bound` must not be zero.
[[gnu::always_inline]] inline size_t PeekBelow(const Rng& rng, size_t bound) {
  Rng ahead = rng;  // the compiler keeps only the one state word Next64's result reads
  return static_cast<size_t>((static_cast<unsigned __int128>(ahead.Next64()) * bound) >> 64);
}

// Runs of fast steps that start with fewer tasks queued than this do not
// prefetch: their blocks stay in the L1 cache (the seed sweep's 10 tasks),
// where a prefetch is only instructions.
inline constexpr size_t kPrefetchFromQueueSize = 64;

// PrefetchForPoll()
//
// Asks the CPU to bring in what a fast poll of `task` reads: the header's
// last 32 bytes (the id, the state, the reference count and flags, the
// leaf: task_header.h) and the first 64 bytes of the frame that follows a
// `Co<void>` header's room (its resume pointer and first locals). A hint
// only: it reads nothing and never faults, whatever `task` points to.
// (`task` may be null or stale, a guess read from a queue slot: the
// addresses are computed as integers, never through a member access.)
inline constexpr size_t kHotHeaderBytes = 32;
[[gnu::always_inline]] inline void PrefetchForPoll(const TaskHeader* task) {
  // The hot words start kHotHeaderBytes before the header's end
  // (task_header_layout_test checks it with the id's offset).
  const uintptr_t hot =
      reinterpret_cast<uintptr_t>(task) + (sizeof(TaskHeader) - kHotHeaderBytes);
  // Three addresses at most 63 bytes apart cover every line of the 96.
  __builtin_prefetch(reinterpret_cast<const void*>(hot));
  __builtin_prefetch(reinterpret_cast<const void*>(hot + 63));
  __builtin_prefetch(reinterpret_cast<const void*>(hot + 95));
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_PICK_LOOKAHEAD_H_
