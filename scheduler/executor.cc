#include "scheduler/executor.h"

#include "scheduler/test_scheduler.h"

namespace simsched {

ForegroundExecutor ForegroundExecutor::ForNewLane(std::shared_ptr<Scheduler> scheduler,
                                                  std::string_view name) {
  uint32_t lane = 0;
  if (auto* test_scheduler = dynamic_cast<TestScheduler*>(scheduler.get())) {
    lane = test_scheduler->AddLane(name);
  }
  return ForegroundExecutor(std::move(scheduler), lane);
}

}  // namespace simsched
