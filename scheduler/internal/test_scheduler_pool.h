// Internal: one TestScheduler reused by the seeds of a sweep.
//
// A sweep makes a scheduler per seed; making one costs allocations (its
// queues, maps and lanes grow again every seed) that the seed's own work
// does not need. The pool hands out one scheduler again and again: when a
// seed's last `shared_ptr` to it is dropped, it shuts down exactly as its
// destructor would (every task cancelled, frame destructors run, timers
// dropped) and the next `Acquire` re-initializes every field as the
// constructor does, keeping only containers' storage. Same seed, same trace
// hash and reports as a fresh scheduler (scheduler/test_scheduler_pool_test.cc).
//
// Each `Acquire` returns a pointer with its own control block, so a
// `weak_ptr` kept from an earlier seed expires as it would have. A scheduler
// someone still holds is never reused: the pool makes a new one, and the old
// one is destroyed by its last owner. Confined to the thread that made it
// (a scheduler released on another thread is simply destroyed there).
//
//   internal::TestSchedulerPool pool;
//   for (uint64_t seed : seeds) {
//     std::shared_ptr<TestScheduler> scheduler = pool.Acquire({.seed = seed});
//     RunBody(*scheduler);
//   }  // each seed's scheduler shuts down when `scheduler` goes

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_POOL_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_POOL_H_

#include <cstdint>
#include <memory>

#include "scheduler/test_scheduler.h"

namespace simsched::internal {

class TestSchedulerPool {
 public:
  TestSchedulerPool();
  ~TestSchedulerPool();
  TestSchedulerPool(const TestSchedulerPool&) = delete;
  TestSchedulerPool& operator=(const TestSchedulerPool&) = delete;

  // A scheduler in the state `TestScheduler::Create(options)` gives.
  std::shared_ptr<TestScheduler> Acquire(TestSchedulerOptions options);

  // How many Acquire calls handed out a reused scheduler (for tests).
  uint64_t reused() const;

 private:
  struct Shared;
  struct Return;
  std::shared_ptr<Shared> shared_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TEST_SCHEDULER_POOL_H_
