#include "session/cloud_simulated_scheduler.h"

#include <memory>
#include <thread>
#include <utility>

#include "scheduler/internal/check.h"

namespace simsched {
namespace {

TestScheduler* AsTestScheduler(const std::shared_ptr<Scheduler>& inner) {
  SIMSCHED_CHECK(inner != nullptr, "CloudSimulatedScheduler needs an inner scheduler, got null");
  return dynamic_cast<TestScheduler*>(inner.get());
}

}  // namespace

std::shared_ptr<CloudSimulatedScheduler> CloudSimulatedScheduler::Create(
    std::shared_ptr<Scheduler> inner, CloudSchedulerOptions options) {
  return std::make_shared<CloudSimulatedScheduler>(std::move(inner), options);
}

CloudSimulatedScheduler::CloudSimulatedScheduler(std::shared_ptr<Scheduler> inner,
                                                 CloudSchedulerOptions options)
    : inner_(std::move(inner)),
      test_scheduler_(AsTestScheduler(inner_)),
      registry_(*this, test_scheduler_, options.grace_period) {}

CloudSimulatedScheduler::~CloudSimulatedScheduler() {
  SIMSCHED_CHECK(internal::current_task == nullptr || internal::current_task->scheduler() != this,
                 "a CloudSimulatedScheduler was destroyed from inside one of its own tasks");
  // Its tasks report to it when they finish, so none may outlive it.
  registry_.CancelAll();
  // A task the registry has let go may still be inside OnTaskFinished on a
  // pool worker (forwarding to the inner scheduler): wait for it to leave.
  while (finishing_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

SessionId CloudSimulatedScheduler::CreateSession() { return registry_.CreateSession(); }

absl::StatusOr<ExecutionContext> CloudSimulatedScheduler::Context(SessionId session) {
  if (absl::Status status = registry_.CheckKnown(session); !status.ok()) return status;
  return ExecutionContext(&registry_, session);
}

std::vector<SessionId> CloudSimulatedScheduler::Sessions() const { return registry_.Sessions(); }

absl::Status CloudSimulatedScheduler::ValidateSessionCleanup(SessionId session) const {
  return registry_.Validate(session);
}

void CloudSimulatedScheduler::Schedule(Runnable runnable) { inner_->Schedule(std::move(runnable)); }

void CloudSimulatedScheduler::ScheduleLabeled(Runnable runnable, TaskLabel label) {
  inner_->ScheduleLabeled(std::move(runnable), std::move(label));
}

void CloudSimulatedScheduler::ScheduleForeground(Runnable runnable) {
  inner_->ScheduleForeground(std::move(runnable));
}

bool CloudSimulatedScheduler::IsMainThread() const { return inner_->IsMainThread(); }

Instant CloudSimulatedScheduler::Now() const { return inner_->Now(); }

bool CloudSimulatedScheduler::Park(std::optional<Duration> timeout) {
  return inner_->Park(timeout);
}

Unparker CloudSimulatedScheduler::GetUnparker() { return inner_->GetUnparker(); }

TimerId CloudSimulatedScheduler::StartTimer(Instant deadline, Waker waker) {
  return inner_->StartTimer(deadline, std::move(waker));
}

void CloudSimulatedScheduler::CancelTimer(TimerId timer) { inner_->CancelTimer(timer); }

bool CloudSimulatedScheduler::IsTaskRunning(TaskId id) const { return inner_->IsTaskRunning(id); }

absl::Status CloudSimulatedScheduler::BlockOnTask(internal::TaskHeader& task) {
  return inner_->BlockOnTask(task);
}

void CloudSimulatedScheduler::OnTaskSpawned(internal::TaskHeader& task) {
  const session_internal::SessionRegistry::SpawnClaim claim = registry_.ClaimSpawn(task);
  internal::TaskCoreAccess::OnTaskSpawned(*inner_, task);  // assigns the id
  registry_.OnTaskSpawned(task, claim);
}

void CloudSimulatedScheduler::OnTaskFinished(internal::TaskHeader& task) {
  // Counted from before the registry lets the task go until the last use of
  // `this`: once a task has left the registry its owner may destroy this
  // scheduler, and the destructor waits for the count to drop.
  finishing_.fetch_add(1, std::memory_order_relaxed);
  registry_.OnTaskFinished(task);
  internal::TaskCoreAccess::OnTaskFinished(*inner_, task);
  finishing_.fetch_sub(1, std::memory_order_release);
}

void CloudSimulatedScheduler::OnUnhandledTaskException(const TaskMetadata& task,
                                                       const std::exception_ptr& exception) {
  internal::TaskCoreAccess::OnUnhandledTaskException(*inner_, task, exception);
}

bool CloudSimulatedScheduler::IsThreadConfined() const { return inner_->IsThreadConfined(); }

void CloudSimulatedScheduler::Deprioritize(TaskLabel label) { inner_->Deprioritize(label); }

std::optional<uint32_t> CloudSimulatedScheduler::AddSimulatedLane(std::string_view name) {
  return inner_->AddSimulatedLane(name);
}

uint32_t CloudSimulatedScheduler::RandomDelayYields(uint32_t max_yields) {
  return inner_->RandomDelayYields(max_yields);
}

}  // namespace simsched
