#include "session/internal/session_registry.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "scheduler/internal/check.h"

namespace simsched::session_internal {
namespace {

// The session (and WaitUntil coverage) the next task spawned through a given
// registry on this thread gets, set by SpawnScope and consumed by
// OnTaskSpawned. Per thread, so concurrent spawns on a production scheduler
// cannot take each other's session.
struct PendingSpawn {
  const SessionRegistry* registry = nullptr;
  std::optional<SessionId> session;
  bool covered = false;
};
thread_local PendingSpawn pending_spawn;

const TaskLabel& GraceLabel() {
  static const TaskLabel* const label = new TaskLabel("session-grace-period");
  return *label;
}

// "+1500ms": a time of the scheduler's clock, as reports print it.
std::string FormatTime(Instant time) { return FormatDuration(time - Instant{}); }

// "a", "a and b", "a, b and c".
std::string JoinAsProse(const std::vector<std::string>& items) {
  if (items.size() <= 1) return items.empty() ? "" : items[0];
  return absl::StrCat(absl::StrJoin(items.begin(), items.end() - 1, ", "), " and ", items.back());
}

// "1 task", "2 tasks".
std::string Tasks(size_t n) { return absl::StrCat(n, n == 1 ? " task" : " tasks"); }

}  // namespace

std::string SessionRegistry::BriefName(const TaskMetadata& task) {
  std::string out = absl::StrCat("task ", task.id.value);
  if (task.label.has_value()) absl::StrAppend(&out, " \"", std::string(task.label->name()), "\"");
  absl::StrAppend(&out, " spawned at ", FormatLocation(task.spawn_location));
  return out;
}

SessionRegistry::SpawnScope::SpawnScope(const SessionRegistry& registry,
                                        std::optional<SessionId> session, bool covered)
    : previous_registry_(pending_spawn.registry),
      previous_session_(pending_spawn.session),
      previous_covered_(pending_spawn.covered) {
  pending_spawn = PendingSpawn{&registry, session, covered};
}

SessionRegistry::SpawnScope::~SpawnScope() {
  pending_spawn = PendingSpawn{previous_registry_, previous_session_, previous_covered_};
}

SessionRegistry::SessionRegistry(Scheduler& owner, TestScheduler* test_scheduler,
                                 Duration grace_period)
    : owner_(owner), test_scheduler_(test_scheduler), grace_period_(grace_period) {}

SessionId SessionRegistry::CreateSession() {
  std::unique_lock lock(mu_);
  const SessionId session{next_session_++};
  sessions_.emplace(session, SessionState{});
  return session;
}

absl::Status SessionRegistry::UnknownSession(SessionId session) const {
  if (session.value == 0) {
    return absl::InvalidArgumentError(
        "session 0 means \"no session\"; pass an id that CloudSimulatedScheduler::"
        "CreateSession() returned");
  }
  if (session.value < next_session_) {
    // Only released records are missing below the counter.
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", session.value,
        " has ended and its grace period is over, so its record was released (a "
        "CloudSimulatedScheduler that does not run over a TestScheduler keeps no record "
        "of finished sessions)"));
  }
  return absl::NotFoundError(absl::StrCat(
      "session ", session.value, " was not created by this CloudSimulatedScheduler (",
      next_session_ == 1 ? std::string("it has created no session yet")
                         : absl::StrCat("it has created sessions 1 to ", next_session_ - 1),
      "); pass an id that its CreateSession() returned"));
}

absl::Status SessionRegistry::CheckKnown(SessionId session) const {
  std::shared_lock lock(mu_);
  if (sessions_.contains(session)) return absl::OkStatus();
  return UnknownSession(session);
}

std::vector<SessionId> SessionRegistry::Sessions() const {
  std::shared_lock lock(mu_);
  std::vector<SessionId> out;
  out.reserve(sessions_.size());
  for (const auto& [session, state] : sessions_) out.push_back(session);
  return out;
}

size_t SessionRegistry::TrackedSessionCount() const {
  std::shared_lock lock(mu_);
  return sessions_.size();
}

bool SessionRegistry::HasEnded(SessionId session) const {
  std::shared_lock lock(mu_);
  auto it = sessions_.find(session);
  // A released record belonged to an ended session.
  if (it == sessions_.end()) return session.value != 0 && session.value < next_session_;
  return it->second.ended_at.has_value();
}

std::string SessionRegistry::DescribeState(const internal::TaskHeader& task) const {
  if (test_scheduler_ == nullptr) return "";
  // "<metadata>[ [lane N]]: <state>": keep the state.
  std::string state = test_scheduler_->DescribeTask(task.metadata.id);
  const std::string prefix = task.metadata.DebugString();
  if (state.compare(0, prefix.size(), prefix) == 0) {
    if (const size_t colon = state.find(": ", prefix.size()); colon != std::string::npos) {
      state.erase(0, colon + 2);
    }
  }
  return state;
}

SessionRegistry::Moment SessionRegistry::Now() const {
  return Moment{owner_.Now(), test_scheduler_ == nullptr ? 0 : test_scheduler_->step_count()};
}

SessionRegistry::SpawnClaim SessionRegistry::ClaimSpawn(internal::TaskHeader& task) const {
  // Without an open SpawnScope for this registry, internal::SpawnTask has
  // already given the task the spawning task's session.
  if (pending_spawn.registry != this) return SpawnClaim{};
  pending_spawn.registry = nullptr;  // for this one spawn only
  task.metadata.set_session(pending_spawn.session);
  return SpawnClaim{pending_spawn.covered};
}

void SessionRegistry::OnTaskSpawned(internal::TaskHeader& task, SpawnClaim claim) {
  internal::TaskHeader* const spawner = internal::current_task;
  const TaskId id = task.metadata.id;
  const std::optional<SessionId> session = task.metadata.session();

  std::unique_lock lock(mu_);
  TaskRecord record{&task, session, TaskId{}, claim.covered};
  if (spawner != nullptr && spawner->scheduler() == &owner_) {
    if (auto parent = live_.find(spawner->metadata.id); parent != live_.end()) {
      record.parent = parent->first;
      // Work spawned by WaitUntil work is WaitUntil work.
      if (parent->second.covered && parent->second.session == session) record.covered = true;
    }
  }
  live_.emplace(id, record);
  if (!session.has_value()) return;
  auto it = sessions_.find(*session);
  if (it == sessions_.end()) return;  // a session of another scheduler, or released
  SessionState& state = it->second;
  state.live.insert(id);
  if (state.ended_at.has_value() && !record.covered) {
    state.offences.emplace(id,
                           Offence{OffenceKind::kSpawnedAfterResponse, task.metadata.DebugString(),
                                   BriefName(task.metadata.Unpack()),
                                   "queued to run", Now(), std::nullopt});
  }
}

void SessionRegistry::OnTaskFinished(internal::TaskHeader& task) {
  const TaskId id = task.metadata.id;
  std::unique_lock lock(mu_);
  auto record = live_.find(id);
  if (record == live_.end()) return;
  const std::optional<SessionId> session = record->second.session;
  live_.erase(record);
  if (!session.has_value()) return;
  auto it = sessions_.find(*session);
  if (it == sessions_.end()) return;
  it->second.live.erase(id);
  if (auto offence = it->second.offences.find(id); offence != it->second.offences.end()) {
    if (offence->second.kind != OffenceKind::kCutOffByGracePeriod) {
      offence->second.finished_at = Now();
    }
  }
  MaybeRetire(it);
}

void SessionRegistry::MaybeRetire(absl::btree_map<SessionId, SessionState>::iterator it) {
  if (test_scheduler_ != nullptr) return;  // kept for ValidateSessionCleanup
  if (it->second.grace_over && it->second.live.empty()) sessions_.erase(it);
}

absl::Status SessionRegistry::End(SessionId session) {
  Instant deadline;
  {
    std::unique_lock lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) {
      if (session.value != 0 && session.value < next_session_) {
        return absl::FailedPreconditionError(absl::StrCat(
            "session ", session.value,
            " has already ended: End() says the response was sent, which happens once per "
            "session"));
      }
      return UnknownSession(session);
    }
    SessionState& state = it->second;
    if (state.ended_at.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("session ", session.value, " already ended at ", FormatTime(*state.ended_at),
                       ": End() says the response was sent, which happens once per session"));
    }
    const Moment now = Now();
    state.ended_at = now.time;
    deadline = DeadlineAfter(now.time, grace_period_);
    // A task of the session that calls End() is the one sending the
    // response; it is not a leak for still running while it does.
    TaskId responder;
    if (internal::TaskHeader* current = internal::current_task;
        current != nullptr && current->scheduler() == &owner_) {
      responder = current->metadata.id;
    }
    for (TaskId id : state.live) {
      const TaskRecord& record = live_.at(id);
      if (record.covered || id == responder) continue;
      state.offences.emplace(
          id, Offence{OffenceKind::kOutlivedResponse, record.header->metadata.DebugString(),
                      BriefName(record.header->metadata.Unpack()),
                      DescribeState(*record.header), now, std::nullopt});
    }
  }
  // The grace timer, in the scheduler's time. It belongs to no session.
  SpawnScope scope(*this, std::nullopt, /*covered=*/false);
  Task<void> watchdog = SpawnLabeled(owner_, GraceLabel(), GraceWatchdog(session, deadline));
  // Framework work: traces mark it and reports hide it by default.
  if (test_scheduler_ != nullptr) test_scheduler_->MarkInternal(watchdog.id());
  watchdog.Detach();
  return absl::OkStatus();
}

Co<void> SessionRegistry::GraceWatchdog(SessionId session, Instant deadline) {
  co_await SleepUntil(deadline);
  ExpireGrace(session);
}

void SessionRegistry::ExpireGrace(SessionId session) {
  std::vector<internal::TaskHeader*> cut_off;
  {
    std::unique_lock lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    SessionState& state = it->second;
    state.grace_over = true;
    const Moment now = Now();
    for (TaskId id : state.live) {
      const TaskRecord& record = live_.at(id);
      if (!record.covered) continue;  // a leak: already reported, left running
      state.offences.insert_or_assign(
          id, Offence{OffenceKind::kCutOffByGracePeriod, record.header->metadata.DebugString(),
                      BriefName(record.header->metadata.Unpack()),
                      DescribeState(*record.header), now, std::nullopt});
      record.header->AddRef();
      cut_off.push_back(record.header);
    }
    MaybeRetire(it);
  }
  // As production would: the request's remaining WaitUntil work is killed.
  for (internal::TaskHeader* task : cut_off) {
    task->Cancel();
    task->Release();
  }
}

absl::Status SessionRegistry::CheckCanWaitUntil(SessionId session) const {
  std::shared_lock lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return UnknownSession(session);
  if (it->second.grace_over) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", session.value, "'s grace period (", FormatDuration(grace_period_, DurationStyle::kLength),
        " after its response) is over, so WaitUntil can no longer extend it; finish the "
        "work before the response or within the grace period"));
  }
  return absl::OkStatus();
}

absl::Status SessionRegistry::WaitUntil(SessionId session, internal::TaskHeader& task) {
  std::unique_lock lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return UnknownSession(session);
  const TaskMetadata metadata = task.metadata.Unpack();
  if (task.scheduler() != &owner_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WaitUntil was given ", metadata.DebugString(),
        ", which was not spawned through this CloudSimulatedScheduler, so its grace period "
        "could not cut it off; spawn session work with ExecutionContext::Spawn, or with "
        "Spawn(*CurrentScheduler(), ...) from a task of the session"));
  }
  if (metadata.session != session) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WaitUntil on session ", session.value, "'s ExecutionContext was given ",
        metadata.DebugString(), ", which belongs to ",
        metadata.session.has_value() ? absl::StrCat("session ", metadata.session->value)
                                     : std::string("no session"),
        "; a session can only extend its own work: use the ExecutionContext of the "
        "task's session"));
  }
  if (it->second.grace_over) {
    return absl::FailedPreconditionError(
        absl::StrCat("session ", session.value, "'s grace period (", FormatDuration(grace_period_, DurationStyle::kLength),
                     " after its response) is over, so WaitUntil can no longer extend it with ",
                     metadata.DebugString()));
  }
  auto record = live_.find(metadata.id);
  if (task.finished() || record == live_.end()) return absl::OkStatus();
  record->second.covered = true;
  // Cover what it already spawned too. Ids grow in spawn order, so a parent
  // is visited before its children.
  for (auto id = it->second.live.upper_bound(metadata.id); id != it->second.live.end(); ++id) {
    TaskRecord& child = live_.at(*id);
    if (child.covered || child.parent.value == 0) continue;
    auto parent = live_.find(child.parent);
    if (parent != live_.end() && parent->second.covered && parent->second.session == session) {
      child.covered = true;
    }
  }
  return absl::OkStatus();
}

std::string SessionRegistry::FormatOffence(TaskId id, const Offence& offence) const {
  // What became of it (not needed for a task the grace period cancelled).
  std::string afterwards = "it has finished since";
  if (offence.finished_at.has_value()) {
    // At one virtual instant, steps say how much later.
    afterwards = absl::StrCat("it finished later, at ", FormatTime(offence.finished_at->time));
    if (test_scheduler_ != nullptr) {
      absl::StrAppend(&afterwards, ", step ", offence.finished_at->step);
    }
  } else if (auto record = live_.find(id); record != live_.end()) {
    afterwards = absl::StrCat("it is still running: ", DescribeState(*record->second.header));
  }
  std::string at = FormatTime(offence.at.time);
  if (test_scheduler_ != nullptr) absl::StrAppend(&at, ", step ", offence.at.step);
  std::string out = absl::StrCat("  ", offence.task, "\n    ");
  switch (offence.kind) {
    case OffenceKind::kOutlivedResponse:
      absl::StrAppend(&out, "outlived the response without WaitUntil: it was ", offence.state,
                      " when the response was sent (", at, "); ", afterwards);
      break;
    case OffenceKind::kSpawnedAfterResponse:
      absl::StrAppend(&out, "was spawned after the response (", at, "), outside WaitUntil work; ",
                      afterwards);
      break;
    case OffenceKind::kCutOffByGracePeriod:
      absl::StrAppend(&out, "WaitUntil work cancelled when the ", FormatDuration(grace_period_, DurationStyle::kLength),
                      " grace period ran out (", at, "): it was ", offence.state);
      break;
  }
  return out;
}

absl::Status SessionRegistry::Validate(SessionId session) const {
  if (test_scheduler_ == nullptr) {
    return absl::FailedPreconditionError(
        "ValidateSessionCleanup needs the TestScheduler: only it records where each task is "
        "suspended and runs a session to its end in virtual time, and this "
        "CloudSimulatedScheduler runs over another scheduler. Validate sessions in tests, over "
        "TestScheduler::Create(...)");
  }
  std::shared_lock lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return UnknownSession(session);
  const SessionState& state = it->second;
  // One sentence first (which tasks, and why each is a problem), then a
  // paragraph per task.
  std::vector<std::string> lines;
  std::string headline;
  if (!state.ended_at.has_value()) {
    std::vector<std::string> names;
    for (TaskId id : state.live) {
      const TaskRecord& record = live_.at(id);
      if (record.covered) continue;
      names.push_back(BriefName(record.header->metadata.Unpack()));
      lines.push_back(absl::StrCat(
          "  ", record.header->metadata.DebugString(),
          "\n    is still running without WaitUntil: ", DescribeState(*record.header)));
    }
    headline = absl::StrCat(
        "session ", session.value,
        " did not clean up: it has not ended (ExecutionContext::End() was not called) and has ",
        Tasks(names.size()), " still running that ", names.size() == 1 ? "was" : "were",
        " not handed to WaitUntil: ", JoinAsProse(names), ".");
  } else {
    std::vector<std::string> leaked;
    std::vector<std::string> cut_off;
    for (const auto& [id, offence] : state.offences) {
      lines.push_back(FormatOffence(id, offence));
      (offence.kind == OffenceKind::kCutOffByGracePeriod ? cut_off : leaked)
          .push_back(offence.brief);
    }
    headline = absl::StrCat("session ", session.value,
                            " did not clean up: its response was sent at ",
                            FormatTime(*state.ended_at));
    if (!leaked.empty()) {
      absl::StrAppend(&headline, ", and ", Tasks(leaked.size()),
                      " not handed to WaitUntil ran past it: ", JoinAsProse(leaked));
    }
    if (!cut_off.empty()) {
      absl::StrAppend(&headline, leaked.empty() ? ", and " : "; and ", Tasks(cut_off.size()),
                      " of its WaitUntil work outlasted the ",
                      FormatDuration(grace_period_, DurationStyle::kLength),
                      " grace period: ", JoinAsProse(cut_off));
    }
    absl::StrAppend(&headline, ". Production would kill ", lines.size() == 1 ? "it" : "them",
                    " mid-way.");
  }
  if (lines.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(headline, "\n", absl::StrJoin(lines, "\n"),
                   "\nAwait or cancel such a task before the response is sent, or hand it to "
                   "ExecutionContext::WaitUntil and let it finish within the grace period.\n",
                   test_scheduler_->RunSummary()));
}

void SessionRegistry::CancelAll() {
  absl::btree_set<TaskId> attempted;
  for (;;) {
    std::vector<internal::TaskHeader*> tasks;
    bool all_finishing = true;
    {
      std::unique_lock lock(mu_);
      if (live_.empty()) return;
      for (const auto& [id, record] : live_) {
        if (!attempted.insert(id).second) {
          // Still here after its cancel: finishing on another thread (a
          // task a BlockOn saw complete reports here a moment later), or
          // being polled there.
          all_finishing = all_finishing && record.header->finished();
          continue;
        }
        record.header->AddRef();
        tasks.push_back(record.header);
      }
    }
    if (tasks.empty()) {
      SIMSCHED_CHECK(all_finishing,
                     "a CloudSimulatedScheduler was destroyed while one of its tasks was being "
                     "polled on another thread; destroy it only when none of its tasks runs");
      std::this_thread::yield();  // its OnTaskFinished is on the way
      continue;
    }
    // In id order; frame destructors may spawn more, cancelled next round.
    for (internal::TaskHeader* task : tasks) {
      task->Cancel();
      task->Release();
    }
  }
}

}  // namespace simsched::session_internal
