// File: session/execution_context.h
// -----------------------------------------------------------------------------
//
// `ExecutionContext` is a request's view of its session, modelled on the
// `ctx` a Cloudflare Worker's fetch handler receives. Through it a handler
// spawns the request's work, hands work that may outlive the response to
// `WaitUntil`, and the server says when the response was sent (`End()`).
//
// The rules it enforces (checked by `CloudSimulatedScheduler::
// ValidateSessionCleanup`):
//   * Every task of the session must be finished (or cancelled) when the
//     response is sent, unless it is WaitUntil work.
//   * WaitUntil work may run on for the grace period after the response
//     (virtual time under the TestScheduler; default 30 s, as on Workers).
//     What is still pending then is cancelled and reported, as production
//     would cut it off.
//   * Tasks spawned by WaitUntil work are WaitUntil work too; tasks spawned
//     by any other task of the session are ordinary session work.
//
// An ExecutionContext is a cheap, copyable handle (a pointer and an id); pass
// it by value into handlers. It is valid while its CloudSimulatedScheduler
// lives.
//
// This header defines:
//   * `simsched::ExecutionContext`
//
// Example:
//
//   simsched::Co<Reply> HandlePost(simsched::ExecutionContext ctx, Request request) {
//     co_await ctx.Spawn(WriteToStore(request));            // awaited: fine
//     absl::Status status = ctx.WaitUntil(RefreshCache());   // may outlive the reply
//     if (!status.ok()) co_return Reply::Error(status);
//     co_return Reply::Ok();
//   }
//
//   // The server, for each request (outside any session):
//   simsched::SessionId session = cloud->CreateSession();
//   simsched::ExecutionContext ctx = *cloud->Context(session);
//   Reply reply = co_await ctx.Spawn(HandlePost(ctx, request));
//   absl::Status ended = ctx.End();                          // response sent

#ifndef SIMSCHED_SESSION_EXECUTION_CONTEXT_H_
#define SIMSCHED_SESSION_EXECUTION_CONTEXT_H_

#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "scheduler/task.h"
#include "scheduler/task_metadata.h"
#include "session/internal/session_registry.h"

namespace simsched {

class CloudSimulatedScheduler;

// ExecutionContext
//
// One session's handle. Made by `CloudSimulatedScheduler::Context()`.
class ExecutionContext {
 public:
  // session()
  //
  // The session this context belongs to.
  SessionId session() const { return session_; }

  // Spawn()
  //
  // Starts `co` as a task of this session, from anywhere: plain code, a task
  // of no session, or a task of another session (a server loop spawning a
  // request's root task). Tasks that task spawns inherit the session.
  template <typename T>
  Task<T> Spawn(Co<T> co, SourceLocation location = SourceLocation::current()) const {
    Scope scope(*registry_, session_, /*covered=*/false);
    return simsched::Spawn(registry_->owner(), std::move(co), location);
  }
  template <internal::CoFactory F>
  Task<internal::CoFactoryResult<F>> Spawn(
      F&& factory, SourceLocation location = SourceLocation::current()) const {
    return Spawn(internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))), location);
  }

  // SpawnLabeled()
  //
  // As `Spawn`, with a label (which reports print, and the TestScheduler may
  // deprioritize).
  template <typename T>
  Task<T> SpawnLabeled(TaskLabel label, Co<T> co,
                       SourceLocation location = SourceLocation::current()) const {
    Scope scope(*registry_, session_, /*covered=*/false);
    return simsched::SpawnLabeled(registry_->owner(), std::move(label), std::move(co), location);
  }
  template <internal::CoFactory F>
  Task<internal::CoFactoryResult<F>> SpawnLabeled(
      TaskLabel label, F&& factory, SourceLocation location = SourceLocation::current()) const {
    return SpawnLabeled(std::move(label),
                        internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))), location);
  }
  // With the label as a string literal: `ctx.SpawnLabeled("upload", co)`.
  template <size_t N, typename C>
  auto SpawnLabeled(const char (&label)[N], C&& co,
                    SourceLocation location = SourceLocation::current()) const {
    return SpawnLabeled(TaskLabel(label), std::forward<C>(co), location);
  }

  // WaitUntil()
  //
  // Lets `task` outlive the response for the grace period, as
  // `ctx.waitUntil(promise)` does on Workers. On success the context owns the
  // task (the handle is emptied; the task runs on, detached) and cancels it if
  // it is still pending when the grace period runs out. Tasks it spawns are
  // covered too. An exception escaping it is reported like any detached
  // task's (the TestScheduler fails the run).
  //
  // Errors (the task then stays with the caller, untouched):
  //   * InvalidArgument: `task` is empty; belongs to another session or to
  //     none; or was not spawned through this context's CloudSimulatedScheduler.
  //   * FailedPrecondition: the session's grace period is already over.
  template <typename T>
  absl::Status WaitUntil(Task<T>&& task) const {
    if (!task) {
      return absl::InvalidArgumentError(
          "WaitUntil was given an empty Task (moved from, detached or default-made); pass "
          "the Task that Spawn returned");
    }
    absl::Status status = registry_->WaitUntil(session_, *task.state());
    if (status.ok()) task.Detach();
    return status;
  }

  // WaitUntil(Co)
  //
  // Spawns `co` as WaitUntil work of this session. Fails with
  // FailedPrecondition (and does not start `co`) once the grace period is over.
  // (On a multi-threaded scheduler the check and the spawn are two steps: work
  // started in the very instant the grace period ends is not cut off.)
  template <typename T>
  absl::Status WaitUntil(Co<T> co, SourceLocation location = SourceLocation::current()) const {
    if (absl::Status status = registry_->CheckCanWaitUntil(session_); !status.ok()) {
      return status;
    }
    Scope scope(*registry_, session_, /*covered=*/true);
    simsched::Spawn(registry_->owner(), std::move(co), location).Detach();
    return absl::OkStatus();
  }
  template <internal::CoFactory F>
  absl::Status WaitUntil(F&& factory, SourceLocation location = SourceLocation::current()) const {
    return WaitUntil(internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))), location);
  }

  // End()
  //
  // Says the response was sent. Every task of the session still running then
  // and not covered by WaitUntil is recorded as a leak (except the task
  // calling End(), if it belongs to the session: it is the one responding),
  // as is any task later spawned into the session outside WaitUntil work.
  // Starts the grace period.
  //
  // Errors: FailedPrecondition if the session already ended.
  absl::Status End() const { return registry_->End(session_); }

  // ended()
  //
  // Whether `End()` was called.
  bool ended() const { return registry_->HasEnded(session_); }

  // grace_period()
  //
  // How long WaitUntil work may run after the response.
  Duration grace_period() const { return registry_->grace_period(); }

 private:
  friend class CloudSimulatedScheduler;
  using Scope = session_internal::SessionRegistry::SpawnScope;

  ExecutionContext(session_internal::SessionRegistry* registry, SessionId session)
      : registry_(registry), session_(session) {}

  session_internal::SessionRegistry* registry_;
  SessionId session_;
};

}  // namespace simsched

#endif  // SIMSCHED_SESSION_EXECUTION_CONTEXT_H_
