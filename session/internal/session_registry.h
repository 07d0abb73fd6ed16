// Internal: the bookkeeping behind CloudSimulatedScheduler and
// ExecutionContext. Not for users; include session/execution_context.h.
//
// The registry tracks every live task spawned through its CloudSimulatedScheduler
// (by TaskId, in a btree so every walk is in id order), which session each one
// belongs to, whether it is covered by WaitUntil, and, per session, when the
// response was sent and which tasks ran past it. It never holds a reference to
// a task header: a task leaves the registry in `OnTaskFinished`, which the task
// core calls before it drops the task's own reference, so a record's header
// pointer is valid for as long as the record exists.
//
// Thread-safe: one mutex guards everything. Nothing that can call back into
// the registry (cancelling or spawning a task) runs while it is held.

#ifndef SIMSCHED_SESSION_INTERNAL_SESSION_REGISTRY_H_
#define SIMSCHED_SESSION_INTERNAL_SESSION_REGISTRY_H_

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/scheduler.h"
#include "scheduler/task_metadata.h"
#include "scheduler/test_scheduler.h"

namespace simsched::session_internal {

class SessionRegistry {
 public:
  // `owner` is the CloudSimulatedScheduler this registry belongs to (tasks
  // spawned on it report here); `test_scheduler` is its inner scheduler if
  // that is a TestScheduler, else null.
  SessionRegistry(Scheduler& owner, TestScheduler* test_scheduler, Duration grace_period);
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  Scheduler& owner() const { return owner_; }
  Duration grace_period() const { return grace_period_; }

  SessionId CreateSession();
  // OK if `session` was created here; otherwise NotFound / InvalidArgument.
  absl::Status CheckKnown(SessionId session) const;
  std::vector<SessionId> Sessions() const;
  size_t TrackedSessionCount() const;
  bool HasEnded(SessionId session) const;

  // What an open SpawnScope said about a new task besides its session.
  struct SpawnClaim {
    bool covered = false;  // spawned as WaitUntil work
  };
  // Called by the owner first: applies an open SpawnScope's session to the
  // task (consuming the scope's one spawn).
  SpawnClaim ClaimSpawn(internal::TaskHeader& task) const;
  // Called by the owner after its inner scheduler assigned the task's id.
  void OnTaskSpawned(internal::TaskHeader& task, SpawnClaim claim);
  // Called by the owner before it forwards to the inner scheduler.
  void OnTaskFinished(internal::TaskHeader& task);

  // The response of `session` was sent: records what is still running and
  // starts the grace period.
  absl::Status End(SessionId session);
  // Whether WaitUntil may still extend `session` (its grace period has not
  // run out).
  absl::Status CheckCanWaitUntil(SessionId session) const;
  // Marks `task` (a task of `session` spawned through the owner) and its live
  // descendants as WaitUntil work.
  absl::Status WaitUntil(SessionId session, internal::TaskHeader& task);
  absl::Status Validate(SessionId session) const;

  // Cancels every live task spawned through the owner, in id order, until
  // none is left. For the owner's destructor.
  void CancelAll();

  // SpawnScope
  //
  // While alive, the next task spawned through the owner on this thread
  // belongs to `session` (none if nullopt) instead of inheriting the spawning
  // task's session, and is WaitUntil work if `covered`.
  class SpawnScope {
   public:
    SpawnScope(const SessionRegistry& registry, std::optional<SessionId> session, bool covered);
    ~SpawnScope();
    SpawnScope(const SpawnScope&) = delete;
    SpawnScope& operator=(const SpawnScope&) = delete;

   private:
    const SessionRegistry* previous_registry_;
    std::optional<SessionId> previous_session_;
    bool previous_covered_;
  };

 private:
  struct TaskRecord {
    internal::TaskHeader* header;
    std::optional<SessionId> session;
    TaskId parent;  // zero unless spawned by another task of the owner
    bool covered;   // WaitUntil work
  };

  enum class OffenceKind { kOutlivedResponse, kSpawnedAfterResponse, kCutOffByGracePeriod };

  // A scheduler time: its clock, plus the TestScheduler's step count (zero
  // over other schedulers), which orders events at one virtual instant.
  struct Moment {
    Instant time;
    uint64_t step;
  };

  struct Offence {
    OffenceKind kind;
    std::string task;   // TaskMetadata::DebugString()
    std::string brief;  // BriefName(): for the report's headline sentence
    std::string state;  // what it was doing at `at` ("waiting on Sleep at ...")
    Moment at;
    std::optional<Moment> finished_at;
  };

  struct SessionState {
    std::optional<Instant> ended_at;
    bool grace_over = false;
    absl::btree_set<TaskId> live;
    absl::btree_map<TaskId, Offence> offences;
  };

  Co<void> GraceWatchdog(SessionId session, Instant deadline);
  void ExpireGrace(SessionId session);

  absl::Status UnknownSession(SessionId session) const;  // mu_ held
  // "waiting on Sleep at f.cc:3 (Fn)", or "" when the state is unknown.
  std::string DescribeState(const internal::TaskHeader& task) const;
  std::string FormatOffence(TaskId id, const Offence& offence) const;  // mu_ held
  Moment Now() const;
  // 'task 7 "upload" spawned at foo.cc:12 (Fn)': a task as the headline names
  // it (its session goes without saying there).
  static std::string BriefName(const TaskMetadata& task);
  // Drops a session's record once nothing more can happen to it (only when
  // the inner scheduler is not a TestScheduler: nobody can validate then).
  // mu_ held exclusively.
  void MaybeRetire(absl::btree_map<SessionId, SessionState>::iterator it);

  Scheduler& owner_;
  TestScheduler* const test_scheduler_;
  const Duration grace_period_;

  // A std::shared_mutex, not absl::Mutex: ThreadSanitizer sees through
  // pthreads, not through the system Abseil's uninstrumented Mutex, and a
  // session scheduler may wrap the ThreadPoolScheduler. Guards the three
  // fields below.
  mutable std::shared_mutex mu_;
  uint64_t next_session_ = 1;
  absl::btree_map<TaskId, TaskRecord> live_;
  absl::btree_map<SessionId, SessionState> sessions_;
};

}  // namespace simsched::session_internal

#endif  // SIMSCHED_SESSION_INTERNAL_SESSION_REGISTRY_H_
