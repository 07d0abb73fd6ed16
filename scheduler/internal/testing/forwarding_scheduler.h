// Test-only: a Scheduler that forwards every call to a TestScheduler but is
// not one, for tests of code that must work over any scheduler (a
// production-like decorator) and for tests that intercept one call, such as
// a StartTimer that fires at once, to force a race the pool only shows once
// in thousands of runs.
//
//   auto test = TestScheduler::Create();
//   auto forwarding = std::make_shared<ForwardingScheduler>(test);
//   Task<void> t = Spawn(*forwarding, Body());
//   ASSERT_TRUE(test->Run().ok());

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_FORWARDING_SCHEDULER_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_FORWARDING_SCHEDULER_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched::internal {

class ForwardingScheduler : public Scheduler {
 public:
  explicit ForwardingScheduler(std::shared_ptr<TestScheduler> inner) : inner_(std::move(inner)) {}

  void Schedule(Runnable runnable) override { inner_->Schedule(std::move(runnable)); }
  void ScheduleLabeled(Runnable runnable, TaskLabel label) override {
    inner_->ScheduleLabeled(std::move(runnable), label);
  }
  void ScheduleForeground(Runnable runnable) override {
    inner_->ScheduleForeground(std::move(runnable));
  }
  bool IsMainThread() const override { return inner_->IsMainThread(); }
  Instant Now() const override { return inner_->Now(); }
  bool Park(std::optional<Duration> timeout) override { return inner_->Park(timeout); }
  Unparker GetUnparker() override { return inner_->GetUnparker(); }
  TimerId StartTimer(Instant deadline, Waker waker) override {
    return inner_->StartTimer(deadline, std::move(waker));
  }
  void CancelTimer(TimerId timer) override { inner_->CancelTimer(timer); }
  bool IsTaskRunning(TaskId id) const override { return inner_->IsTaskRunning(id); }
  absl::Status BlockOnTask(TaskHeader& task) override { return inner_->BlockOnTask(task); }
  Scheduler* WrappedScheduler() const override { return inner_.get(); }
  bool IsThreadConfined() const override { return true; }

 protected:
  void OnTaskSpawned(TaskHeader& task) override { TaskCoreAccess::OnTaskSpawned(*inner_, task); }
  void OnTaskFinished(TaskHeader& task) override {
    TaskCoreAccess::OnTaskFinished(*inner_, task);
  }
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override {
    TaskCoreAccess::OnUnhandledTaskException(*inner_, task, exception);
  }

  TestScheduler& inner() { return *inner_; }

 private:
  std::shared_ptr<TestScheduler> inner_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_FORWARDING_SCHEDULER_H_
