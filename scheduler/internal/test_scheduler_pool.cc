#include "scheduler/internal/test_scheduler_pool.h"

#include <utility>

namespace simsched::internal {
namespace {

// The address of a thread_local tells threads apart (compared, never ordered).
thread_local char pool_thread_marker;

}  // namespace

struct TestSchedulerPool::Shared {
  std::unique_ptr<TestScheduler> idle;  // shut down, waiting for Acquire
  bool open = true;                     // false once the pool is gone
  const void* thread = &pool_thread_marker;
  uint64_t reused = 0;
};

// The deleter of every pointer Acquire hands out.
struct TestSchedulerPool::Return {
  std::shared_ptr<Shared> shared;
  void operator()(TestScheduler* scheduler) const {
    if (!shared->open || shared->idle != nullptr || shared->thread != &pool_thread_marker) {
      delete scheduler;
      return;
    }
    // What the destructor does, now: frame destructors run where the
    // scheduler's last owner let go of it (the harness still intercepts
    // their failures).
    scheduler->Shutdown();
    if (shared->open && shared->idle == nullptr) {
      shared->idle.reset(scheduler);
    } else {  // the shutdown's own code acquired or closed the pool
      delete scheduler;
    }
  }
};

TestSchedulerPool::TestSchedulerPool() : shared_(std::make_shared<Shared>()) {}

TestSchedulerPool::~TestSchedulerPool() {
  shared_->open = false;
  shared_->idle.reset();
}

std::shared_ptr<TestScheduler> TestSchedulerPool::Acquire(TestSchedulerOptions options) {
  std::unique_ptr<TestScheduler> scheduler = std::move(shared_->idle);
  if (scheduler != nullptr) {
    scheduler->Reinit(std::move(options));
    ++shared_->reused;
  } else {
    scheduler = std::make_unique<TestScheduler>(std::move(options));
  }
  return std::shared_ptr<TestScheduler>(scheduler.release(), Return{shared_});
}

uint64_t TestSchedulerPool::reused() const { return shared_->reused; }

}  // namespace simsched::internal
