// File: session/cloud_simulated_scheduler.h
// -----------------------------------------------------------------------------
//
// `CloudSimulatedScheduler` models a serverless request lifecycle, as
// Cloudflare Workers run it, on top of any `Scheduler`. Each request is a
// session; work spawned while serving it belongs to it; once the response is
// sent, every task of the session must be finished unless it was handed to
// `WaitUntil`, which lets it outlive the response for a grace period (on
// Workers, 30 seconds). Anything else is work production silently kills
// mid-way: a leak this layer exists to catch.
//
// It is a decorator: every `Scheduler` function forwards to the inner
// scheduler, so code written against `Scheduler` runs on it unchanged, and
// the inner TestScheduler still decides the order. On the way it records which
// task belongs to which session:
//   * A session's root task is spawned with `ExecutionContext::Spawn`.
//   * A task spawned by a task of session S belongs to S (inherited from the
//     spawning task, never from whichever session was created last), as long
//     as it is spawned through this scheduler, e.g. `Spawn(*CurrentScheduler(),
//     ...)` inside a session task. `TaskMetadata::session` carries the id.
//   * Tasks spawned outside any session belong to none.
//
// `ValidateSessionCleanup(session)` then says whether the session cleaned up,
// naming each offending task with its spawn site and where it was suspended.
// It needs the TestScheduler underneath (it reads wait sites and relies on a
// run to the end in virtual time); over another scheduler it returns
// FailedPrecondition, and the layer only enforces the grace period.
//
// Thread-safe, like the scheduler it wraps. Destroying it cancels every task
// still running that was spawned through it; do that when none of them is
// being polled (with the TestScheduler: from plain code, not from a task).
//
// This header defines:
//   * `simsched::CloudSchedulerOptions`
//   * `simsched::CloudSimulatedScheduler`
//
// Example:
//
//   auto test = simsched::TestScheduler::Create({.seed = seed});
//   auto cloud = simsched::CloudSimulatedScheduler::Create(test);
//   simsched::SessionId session = cloud->CreateSession();
//   simsched::ExecutionContext ctx = *cloud->Context(session);
//   simsched::Spawn(*cloud, [&]() -> simsched::Co<void> {   // the server
//     co_await ctx.Spawn(HandleRequest(ctx));               // the request
//     ctx.End().IgnoreError();                              // response sent
//   }).Detach();
//   ASSERT_TRUE(test->Run().ok());
//   EXPECT_SESSION_CLEAN(cloud, session);  // session/session_test_helpers.h

#ifndef SIMSCHED_SESSION_CLOUD_SIMULATED_SCHEDULER_H_
#define SIMSCHED_SESSION_CLOUD_SIMULATED_SCHEDULER_H_

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/execution_context.h"
#include "session/internal/session_registry.h"

namespace simsched {

// CloudSchedulerOptions
struct CloudSchedulerOptions {
  // How long WaitUntil work may run after its session's response. Workers
  // allow 30 seconds.
  Duration grace_period = std::chrono::seconds(30);
};

// CloudSimulatedScheduler
//
// See the file comment.
class CloudSimulatedScheduler final : public Scheduler {
 public:
  // Create()
  //
  // The usual way to make one. `inner` must not be null.
  static std::shared_ptr<CloudSimulatedScheduler> Create(std::shared_ptr<Scheduler> inner,
                                                         CloudSchedulerOptions options = {});

  explicit CloudSimulatedScheduler(std::shared_ptr<Scheduler> inner,
                                   CloudSchedulerOptions options = {});
  ~CloudSimulatedScheduler() override;

  CloudSimulatedScheduler(const CloudSimulatedScheduler&) = delete;
  CloudSimulatedScheduler& operator=(const CloudSimulatedScheduler&) = delete;

  // -- Sessions --

  // CreateSession()
  //
  // Starts a new session (a request). Ids count up from 1.
  SessionId CreateSession();

  // Context()
  //
  // The ExecutionContext of `session`. Errors: NotFound for an id this
  // scheduler never issued, InvalidArgument for the zero id.
  absl::StatusOr<ExecutionContext> Context(SessionId session);

  // Sessions()
  //
  // Every session created so far, in id order (over a scheduler other than
  // the TestScheduler: those not yet released, see `tracked_session_count`).
  std::vector<SessionId> Sessions() const;

  // ValidateSessionCleanup()
  //
  // OK when every task of `session` has finished (or was cancelled) or is
  // covered by WaitUntil. Once the session has ended, "finished" means
  // finished by the time the response was sent: a task still running then
  // without WaitUntil is an error even if it finished later, and so is a task
  // spawned into the session afterwards outside WaitUntil work, and WaitUntil
  // work the grace period cut off. Call it after the run (`TestScheduler::
  // Run()`), so the grace period has played out.
  //
  // Errors:
  //   * FailedPrecondition listing each offending task (id, label, session,
  //     spawn site, where it was suspended, what became of it), with the
  //     run's seed.
  //   * FailedPrecondition if the inner scheduler is not a TestScheduler.
  //   * NotFound / InvalidArgument for an unknown / zero session id.
  absl::Status ValidateSessionCleanup(SessionId session) const;

  // grace_period()
  Duration grace_period() const { return registry_.grace_period(); }

  // tracked_session_count()
  //
  // Session records held. Over a TestScheduler every session is kept (for
  // validation); over any other scheduler a session's record is released once
  // it has ended, its grace period is over and its last task finished.
  size_t tracked_session_count() const { return registry_.TrackedSessionCount(); }

  // inner() / test_scheduler()
  //
  // The wrapped scheduler, and the same as a TestScheduler (null if it is
  // not one).
  const std::shared_ptr<Scheduler>& inner() const { return inner_; }
  TestScheduler* test_scheduler() const { return test_scheduler_; }

  // -- Scheduler: forwarded to the inner scheduler --
  void Schedule(Runnable runnable) override;
  void ScheduleLabeled(Runnable runnable, TaskLabel label) override;
  void ScheduleForeground(Runnable runnable) override;
  bool IsMainThread() const override;
  Instant Now() const override;
  bool Park(std::optional<Duration> timeout) override;
  Unparker GetUnparker() override;
  TimerId StartTimer(Instant deadline, Waker waker) override;
  void CancelTimer(TimerId timer) override;
  bool IsTaskRunning(TaskId id) const override;
  absl::Status BlockOnTask(internal::TaskHeader& task) override;
  Scheduler* WrappedScheduler() const override { return inner_.get(); }
  bool IsThreadConfined() const override;
  uint32_t RandomDelayYields(uint32_t max_yields) override;
  void Deprioritize(TaskLabel label) override;
  std::optional<uint32_t> AddSimulatedLane(std::string_view name) override;

 private:
  // The task core's hooks, reached through internal::TaskCoreAccess.
  // OnTaskSpawned also records the task under its session.
  void OnTaskSpawned(internal::TaskHeader& task) override;
  void OnTaskFinished(internal::TaskHeader& task) override;
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override;

  const std::shared_ptr<Scheduler> inner_;
  TestScheduler* const test_scheduler_;
  session_internal::SessionRegistry registry_;
  // OnTaskFinished calls in progress (see there).
  std::atomic<int> finishing_{0};
};

}  // namespace simsched

#endif  // SIMSCHED_SESSION_CLOUD_SIMULATED_SCHEDULER_H_
