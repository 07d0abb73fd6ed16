// Internal: the pieces of TestScheduler that its source files share.
//
// The scheduler's implementation is split by what each part does (the list
// is at the top of scheduler/test_scheduler.cc). This header holds the small
// helpers more than one of them inlines: the trace digest's mixing step (the
// steps mix each poll into it, the timers each move of the clock), the
// owner-thread test, and the move of the clock itself. Nothing here is for
// users.
//
//   trace_state_ = internal::MixWord(trace_state_, word);
//   if (!OnOwnerThread()) return ScheduleFromForeignThread(...);

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_PARTS_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_PARTS_H_

#include <cstdint>

#include "scheduler/test_scheduler.h"

namespace simsched {
namespace internal {

// Mixes one 64-bit word into the running trace digest. A multiply-xorshift
// step: cheap (one multiply) and order-sensitive, which is all a digest of a
// decision sequence needs. The final value is avalanched by SplitMix64.
inline uint64_t MixWord(uint64_t state, uint64_t word) {
  state = (state ^ word) * 0x9fb21c651e98df25ULL;
  return state ^ (state >> 29);
}

// Tags that keep the kinds of trace words apart.
constexpr uint64_t kTimeWordTag = uint64_t{1} << 63;

// Identifies the OS thread cheaply: the address of a thread_local differs per
// thread. Compared for equality only, never used to decide an order. Inline
// (one variable for the whole program, defined where it is used) so that the
// test stays a compare against the thread pointer in every file.
inline thread_local char test_scheduler_thread_marker;

}  // namespace internal

// Declared inline in the class; every file that calls it includes this.
inline bool TestScheduler::OnOwnerThread() const {
  return &internal::test_scheduler_thread_marker == owner_thread_marker_;
}

// Declared inline in the class: BlockOn's time budget moves the clock too.
inline void TestScheduler::AdvanceTimeTo(Instant when) {
  if (when <= now_) return;
  now_ = when;
  trace_state_ = internal::MixWord(
      trace_state_, internal::kTimeWordTag | static_cast<uint64_t>(Elapsed().count()));
  FireDueTimers();
}

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_PARTS_H_
