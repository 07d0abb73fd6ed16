#include "scheduler/executor.h"

#include "scheduler/test_scheduler.h"

namespace simsched {

void BackgroundExecutor::Deprioritize(TaskLabel label) const {
  // Production schedulers have no priorities to change; only the
  // TestScheduler uses labels to explore schedules.
  if (auto* test_scheduler = dynamic_cast<TestScheduler*>(scheduler_.get())) {
    test_scheduler->Deprioritize(std::move(label));
  }
}

}  // namespace simsched
