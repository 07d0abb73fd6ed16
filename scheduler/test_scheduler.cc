// TestScheduler: construction, reuse (Reinit) and shutdown; the scheduling
// calls (Schedule, ScheduleLabeled, ScheduleForeground) and what other
// threads may do (the inbox, parking); failures. The other parts live beside
// it, each in a file named for what it does:
//   test_scheduler_steps.cc    steps and run loops (the hot path), BlockOn
//   test_scheduler_pick.cc     the general step's pick (lanes, FIFO, PCT, POS)
//   test_scheduler_timers.cc   timers and virtual time
//   test_scheduler_lanes.cc    lanes and deprioritized labels
//   test_scheduler_tasks.cc    task tracking, and what record_trace records
//   test_scheduler_reports.cc  trace entries as text, deadlock and task reports
// internal/test_scheduler_parts.h holds the helpers several of them inline.

#include "scheduler/test_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/debugging/stacktrace.h"
#include "absl/debugging/symbolize.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/internal/cancel_in_rounds.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/test_scheduler_parts.h"

namespace simsched {
namespace {

// Seed of the test-data stream: a fixed, documented derivation from the run's
// seed so that it differs from the scheduling stream.
constexpr uint64_t kUserStreamSalt = 0x5eed5eed5eed5eedULL;

// A status with `status`'s code and payloads (its Outcome) and a new message.
absl::Status WithMessage(const absl::Status& status, const std::string& message) {
  absl::Status out(status.code(), message);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

std::string CallerStack() {
  void* frames[12];
  const int depth = absl::GetStackTrace(frames, 12, /*skip_count=*/2);
  std::string out;
  for (int i = 0; i < depth; ++i) {
    char name[256];
    if (absl::Symbolize(frames[i], name, sizeof(name))) {
      absl::StrAppend(&out, "\n    ", name);
    } else {
      absl::StrAppend(&out, "\n    ", absl::StrFormat("%p", frames[i]));
    }
  }
  return out;
}

}  // namespace

using internal::TaskHeader;

TestScheduler::TestScheduler(TestSchedulerOptions options) { Reinit(std::move(options)); }

// Every field, to what a fresh scheduler has: the constructor runs this on
// default-initialized members, TestSchedulerPool on a scheduler that a seed
// used and Shutdown() emptied (containers keep their capacity; nothing else
// survives). A field added to the class must be reset here.
void TestScheduler::Reinit(TestSchedulerOptions options) {
  options_ = std::move(options);
  rng_ = Rng(options_.seed);
  user_rng_ = Rng(SplitMix64(options_.seed ^ kUserStreamSalt));
  now_ = Instant{};
  steps_ = 0;
  step_limit_ = options_.max_steps == 0 ? UINT64_MAX : options_.max_steps;
  next_task_id_ = 1;
  trace_state_ = 0;
  current_lane_ = kNoLane;
  shutting_down_ = false;
  failed_ = false;
  owner_thread_marker_ = &internal::test_scheduler_thread_marker;

  background_.clear();
  deprioritized_.clear();
  lanes_.resize(1);
  lanes_[0].name = "main";
  lanes_[0].queue.clear();
  lanes_[0].blocked = 0;
  lane_queued_ = 0;
  deprioritized_labels_.clear();

  live_.Clear();
  idle_allowed_.clear();
  internal_ids_.clear();
  wake_notes_.clear();
  waking_from_ = WakeCause::kUnknown;

  // A fresh queue: timer ids (slot generations) start over as in a new one.
  timers_ = internal::TimerQueue();
  poll_cost_model_ = nullptr;
  task_observer_ = nullptr;
  next_timer_deadline_ = Instant::max();
  next_timer_deadline_exact_ = true;

  trace_.clear();
  task_events_.clear();
  trace_notes_.clear();
  failure_ = absl::OkStatus();
  failure_count_ = 0;
  // Only a scheduler that may park needs one up front (foreign threads unpark
  // it); otherwise GetUnparker() makes one on demand. Never reused: an
  // Unparker of an earlier run must not reach this one.
  parker_ = options_.allow_parking ? std::make_shared<internal::Parker>() : nullptr;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.clear();
    foreign_failure_ = absl::OkStatus();
    inbox_pending_.store(false, std::memory_order_relaxed);
  }

  StrategySpec spec;
  if (!options_.strategy.empty()) {
    // A reused scheduler usually gets the text it parsed last time.
    absl::StatusOr<StrategySpec> parsed =
        parsed_strategy_.has_value() && parsed_strategy_text_ == options_.strategy
            ? absl::StatusOr<StrategySpec>(*parsed_strategy_)
            : ParseStrategy(options_.strategy);
    if (parsed.ok()) {
      parsed_strategy_text_ = options_.strategy;
      parsed_strategy_ = *parsed;
      spec = ResolveStrategy(*parsed, options_.seed);
    } else {
      RecordFailure(absl::InvalidArgumentError(
          absl::StrCat("TestSchedulerOptions::strategy: ", parsed.status().message())));
    }
  } else if (!options_.randomize_order) {
    spec.kind = StrategyKind::kFifo;
  }
  strategy_.Init(spec, rng_);
  uniform_pick_ = strategy_.uniform();
  UpdateFastPick();
}

void TestScheduler::UpdateFastPick() {
  FastPick pick = FastPick::kNone;
  if (!options_.record_trace && poll_cost_model_ == nullptr) {
    switch (strategy_.spec().kind) {
      case StrategyKind::kRandom: pick = FastPick::kUniform; break;
      case StrategyKind::kPct: pick = FastPick::kPct; break;
      case StrategyKind::kPos: pick = FastPick::kPos; break;
      case StrategyKind::kFifo:
      case StrategyKind::kMix: break;  // (a resolved strategy is never mix)
    }
  }
  fast_pick_ = pick;
  InvalidateFastSteps();
}

std::shared_ptr<TestScheduler> TestScheduler::Create(TestSchedulerOptions options) {
  return std::make_shared<TestScheduler>(options);
}

TestScheduler::~TestScheduler() { Shutdown(); }

void TestScheduler::Shutdown() {
  SIMSCHED_CHECK(internal::current_task == nullptr ||
                     internal::current_task->scheduler() != this,
                 "a TestScheduler was destroyed from inside one of its own tasks");
  shutting_down_ = true;
  // A run that ended with every task finished (a passing seed's usual end)
  // has nothing to cancel: no rounds. The inbox is looked at under its lock:
  // without parking, work from another thread stays there after the drain
  // has cleared `inbox_pending_`, and only the rounds below drop it.
  bool nothing_to_cancel = live_.size() == 0 && background_.empty() &&
                           deprioritized_.empty() &&
                           std::all_of(lanes_.begin(), lanes_.end(),
                                       [](const Lane& lane) { return lane.queue.empty(); });
  if (nothing_to_cancel) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    nothing_to_cancel = inbox_.empty();
  }
  // Each round in a deterministic order: queued Runnables first (in queue
  // order), then every other live task by id.
  if (!nothing_to_cancel) {
    internal::CancelInRounds(
        [this](std::vector<TaskHeader*>& queued) { TakeQueuedForShutdown(queued); },
        [this](std::vector<TaskHeader*>& live) {
          live_.ForEach([&live](TaskHeader& task) {
            task.AddRef();
            live.push_back(&task);
          });
        });
  }
  // Timers hold wakers (references to task headers); drop them last.
  timers_ = internal::TimerQueue();
}

void TestScheduler::TakeQueuedForShutdown(std::vector<TaskHeader*>& queued) {
  while (!background_.empty()) queued.push_back(background_.pop_front());
  for (Lane& lane : lanes_) {
    while (!lane.queue.empty()) queued.push_back(lane.queue.pop_front());
  }
  lane_queued_ = 0;
  while (!deprioritized_.empty()) queued.push_back(deprioritized_.pop_front());
  std::lock_guard<std::mutex> lock(inbox_mu_);
  queued.insert(queued.end(), inbox_.begin(), inbox_.end());
  inbox_.clear();
}

void TestScheduler::Schedule(Runnable runnable) {
  if (!OnOwnerThread()) [[unlikely]] {
    return ScheduleFromForeignThread(std::move(runnable));
  }
  if (options_.record_trace) [[unlikely]] NoteWake(*runnable.header());
  Enqueue(background_, std::move(runnable));
}

void TestScheduler::ScheduleLabeled(Runnable runnable, TaskLabel label) {
  if (!OnOwnerThread()) [[unlikely]] {
    return ScheduleFromForeignThread(std::move(runnable));
  }
  if (options_.record_trace) [[unlikely]] NoteWake(*runnable.header());
  EnqueueLabeled(runnable.ReleaseHeader(), label);
}

void TestScheduler::ScheduleForeground(Runnable runnable) {
  if (!OnOwnerThread()) [[unlikely]] {
    return ScheduleFromForeignThread(std::move(runnable));
  }
  if (options_.record_trace) [[unlikely]] NoteWake(*runnable.header());
  TaskHeader* task = runnable.ReleaseHeader();
  if (task->metadata.lane() >= lanes_.size()) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        task->metadata.DebugString(), " was spawned onto lane ", task->metadata.lane(),
        ", which this TestScheduler does not have (it has ", lanes_.size(),
        "); make lanes with AddLane() or ForegroundExecutor::ForNewLane()")));
    task->metadata.set_lane(0);
  }
  EnqueueOnLane(task);
}

void TestScheduler::ScheduleFromForeignThread(Runnable runnable) {
  // Called on another OS thread: touch nothing but the inbox.
  std::lock_guard<std::mutex> lock(inbox_mu_);
  if (!options_.allow_parking && foreign_failure_.ok()) {
    foreign_failure_ = absl::FailedPreconditionError(absl::StrCat(
        "the test is not deterministic: ", runnable.metadata().DebugString(),
        " was woken (or spawned) from another OS thread while the TestScheduler runs on its "
        "own thread. Real threads make the schedule depend on the OS, not the seed. Route the "
        "work through simsched tasks and primitives, or opt into real threads with "
        "TestSchedulerOptions::allow_parking. The foreign call came from:",
        CallerStack()));
  }
  // Kept, not run: with allow_parking the owner thread runs it; otherwise it
  // is dropped (cancelling the task) at shutdown.
  inbox_.push_back(runnable.ReleaseHeader());
  // The owner's fast steps check only their limit: zero it. Sequentially
  // consistent, as UpdateFastStepLimit's store and load are under
  // allow_parking: either the owner sees the flag or this store lands after
  // the owner's last store of a limit. (Not fences: ThreadSanitizer does not
  // model them.)
  inbox_pending_.store(true, std::memory_order_seq_cst);
  fast_step_limit_.store(0, std::memory_order_seq_cst);
  // Only a scheduler that may park has a thread to wake (and its parker_ is
  // made before any thread can get here).
  if (options_.allow_parking) parker_->Unpark();
}

bool TestScheduler::StepFromForeignThread() {
  // Called on another OS thread: touch nothing but the inbox, whose failure
  // the owner's next step or run reports.
  std::lock_guard<std::mutex> lock(inbox_mu_);
  if (foreign_failure_.ok()) {
    foreign_failure_ = absl::FailedPreconditionError(absl::StrCat(
        "Step() was called from a thread other than the one that made the TestScheduler, "
        "and did nothing: drive a TestScheduler (Step, Run, RunUntilIdle, BlockOn) from the "
        "thread that made it. The call came from:",
        CallerStack()));
  }
  inbox_pending_.store(true, std::memory_order_seq_cst);  // as ScheduleFromForeignThread
  fast_step_limit_.store(0, std::memory_order_seq_cst);
  return false;
}

void TestScheduler::DrainInbox() {
  std::vector<TaskHeader*> arrived;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_pending_.store(false, std::memory_order_relaxed);
    if (!foreign_failure_.ok()) {
      RecordFailure(std::exchange(foreign_failure_, absl::OkStatus()));
    }
    if (!options_.allow_parking) return;  // keep them out of the schedule
    arrived.swap(inbox_);
  }
  // Foreign work enters the schedule in arrival order, like any wake.
  const WakeCause previous = std::exchange(waking_from_, WakeCause::kForeignThread);
  for (TaskHeader* task : arrived) task->ScheduleSelf();
  waking_from_ = previous;
}

bool TestScheduler::Park(std::optional<Duration> timeout) {
  if (!options_.allow_parking) {
    RecordFailure(absl::FailedPreconditionError(
        "Park() was called but parking is forbidden in this TestScheduler: a deterministic "
        "test must not block its thread waiting for a real one. Await a simsched primitive "
        "instead, or set TestSchedulerOptions::allow_parking = true."));
    return false;
  }
  return parker_->Park(timeout);
}

Unparker TestScheduler::GetUnparker() {
  if (parker_ == nullptr) parker_ = std::make_shared<internal::Parker>();
  return Unparker(parker_);
}

uint32_t TestScheduler::RandomDelayYields(uint32_t max_yields) {
  return static_cast<uint32_t>(rng_.Below(uint64_t{max_yields} + 1));
}

absl::Status TestScheduler::BudgetFailure(std::string_view operation) const {
  return WithOutcome(
      absl::ResourceExhaustedError(absl::StrCat(
          std::string(operation), " exceeded the step budget of ", options_.max_steps,
          " steps: a livelock, or a test that needs a larger TestSchedulerOptions::max_steps.\n",
          RunSummary(), "\n", DescribeLiveTasks())),
      Outcome::kStepBudgetExhausted);
}

absl::Status TestScheduler::CheckCanRun(std::string_view operation) const {
  if (!OnOwnerThread()) {
    return absl::FailedPreconditionError(absl::StrCat(
        std::string(operation),
        " was called from a thread other than the one that made the TestScheduler"));
  }
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        std::string(operation), " was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of driving the scheduler"));
  }
  return absl::OkStatus();
}

absl::Status TestScheduler::CheckCanBlock(LaneId& blocked_lane) const {
  blocked_lane = kNoLane;
  if (internal::current_task == nullptr) return CheckCanRun("BlockOn()");
  if (internal::current_task->scheduler() != this || current_lane_ == kNoLane) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BlockOn() was called from inside ", internal::current_task->metadata.DebugString(),
        ", which is not foreground work of this scheduler; only a (simulated) main thread may "
        "block. co_await the task instead"));
  }
  blocked_lane = current_lane_;
  return absl::OkStatus();
}

absl::Status TestScheduler::PendingFailure() {
  if (inbox_pending_.load(std::memory_order_relaxed)) DrainInbox();
  return failed_ ? failure_ : absl::OkStatus();
}

absl::Status TestScheduler::status() const {
  if (!failed_) {
    // A foreign-thread failure may not have been drained yet.
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(inbox_mu_));
    if (!foreign_failure_.ok()) return foreign_failure_;
  }
  return failure_;
}

void TestScheduler::Fail(std::string_view message, SourceLocation location) {
  const TaskHeader* task = internal::current_task;
  RecordFailure(WithOutcome(
      absl::AbortedError(absl::StrCat(
          "the test failed the run: ", std::string(message), " (Fail() called at ",
          FormatLocation(location),
          task != nullptr ? absl::StrCat(" in ", task->metadata.DebugString()) : "", ")")),
      Outcome::kTestFailure));
}

void TestScheduler::OnUnhandledTaskException(const TaskMetadata& task,
                                             const std::exception_ptr& exception) {
  RecordFailure(absl::AbortedError(absl::StrCat("exception escaped detached ",
                                                task.DebugString(), ": ",
                                                DescribeException(exception))));
}

void TestScheduler::RecordFailure(absl::Status status) {
  ++failure_count_;
  InvalidateFastSteps();  // the run loops stop at their next check
  if (!failed_) {
    failed_ = true;
    failure_ = WithMessage(status, absl::StrCat(status.message(), "\n", RunSummary()));
  } else if (failure_count_ == 2) {
    failure_ = WithMessage(failure_,
                           absl::StrCat(failure_.message(), "\n(and later failures of this run)"));
  }
}

}  // namespace simsched
