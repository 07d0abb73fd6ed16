#include "scheduler/executor.h"

#include "scheduler/test_scheduler.h"

namespace simsched {

ForegroundExecutor ForegroundExecutor::ForNewLane(std::shared_ptr<Scheduler> scheduler,
                                                  std::string_view name) {
  // A virtual, not a dynamic_cast: decorators (CloudSimulatedScheduler)
  // forward it, so every simulated client gets its own lane through them.
  const std::optional<uint32_t> lane = scheduler->AddSimulatedLane(name);
  return ForegroundExecutor(std::move(scheduler), lane.value_or(0));
}

}  // namespace simsched
