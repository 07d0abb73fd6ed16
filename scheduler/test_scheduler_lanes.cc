// TestScheduler's lanes (simulated main threads: one queue each, run in
// order) and deprioritized labels (work that runs only when nothing else
// can): the queues ScheduleForeground and ScheduleLabeled fill.

#include <string>
#include <string_view>

#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::TaskHeader;

void TestScheduler::EnqueueLabeled(TaskHeader* task, const TaskLabel& label) {
  const bool low = !deprioritized_labels_.empty() && deprioritized_labels_.contains(label);
  EnqueueHeader(low ? deprioritized_ : background_, task);
}

void TestScheduler::EnqueueOnLane(TaskHeader* task) {
  EnqueueHeader(lanes_[task->metadata.lane()].queue, task);
  ++lane_queued_;
  InvalidateFastSteps();  // lane work takes the general step
}

void TestScheduler::Deprioritize(TaskLabel label) { deprioritized_labels_.insert(label); }

LaneId TestScheduler::AddLane(std::string_view name) {
  lanes_.emplace_back();
  lanes_.back().name = std::string(name);
  return static_cast<LaneId>(lanes_.size() - 1);
}

std::string_view TestScheduler::LaneName(LaneId lane) const {
  return lane < lanes_.size() ? std::string_view(lanes_[lane].name) : std::string_view();
}

}  // namespace simsched
