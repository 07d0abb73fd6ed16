#include "scheduler/test_scheduler.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/debugging/stacktrace.h"
#include "absl/debugging/symbolize.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/internal/cancel_in_rounds.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/pick_lookahead.h"

namespace simsched {
namespace {

using internal::TaskHeader;

// Mixes one 64-bit word into the running trace digest. A multiply-xorshift
// step: cheap (one multiply) and order-sensitive, which is all a digest of a
// decision sequence needs. The final value is avalanched by SplitMix64.
inline uint64_t MixWord(uint64_t state, uint64_t word) {
  state = (state ^ word) * 0x9fb21c651e98df25ULL;
  return state ^ (state >> 29);
}

// Tags that keep the kinds of trace words apart.
constexpr uint64_t kTimeWordTag = uint64_t{1} << 63;

// Seed of the test-data stream: a fixed, documented derivation from the run's
// seed so that it differs from the scheduling stream.
constexpr uint64_t kUserStreamSalt = 0x5eed5eed5eed5eedULL;

// Identifies the OS thread cheaply: the address of a thread_local differs per
// thread. Compared for equality only, never used to decide an order.
thread_local char thread_marker;

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
  owner_thread_marker_ = &thread_marker;

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

bool TestScheduler::OnOwnerThread() const { return &thread_marker == owner_thread_marker_; }

internal::DirectEnqueueTarget TestScheduler::DirectEnqueueTarget() {
  // Schedule() on the owner thread is exactly this push, after the
  // strategy's enqueue hook under FIFO, PCT and POS (the hook draws from
  // rng_ at the same point of the run either way), when nothing notes why a
  // task was queued (no trace recording); otherwise wakes keep going through
  // Schedule(). Only on the owner thread: a wake from any other must reach
  // Schedule()'s thread check.
  if (options_.record_trace || !OnOwnerThread()) return {};
  if (!uniform_pick_) return {this, nullptr, &TrackDirectEnqueue, this};
  return {this, &background_, nullptr, nullptr};
}

void TestScheduler::TrackDirectEnqueue(void* scheduler, TaskHeader& task) {
  TestScheduler& self = *static_cast<TestScheduler*>(scheduler);
  self.strategy_.OnEnqueue(task, self.rng_);
  self.background_.push_back(&task);
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

void TestScheduler::EnqueueLabeled(TaskHeader* task, const TaskLabel& label) {
  const bool low = !deprioritized_labels_.empty() && deprioritized_labels_.contains(label);
  EnqueueHeader(low ? deprioritized_ : background_, task);
}

void TestScheduler::EnqueueOnLane(TaskHeader* task) {
  EnqueueHeader(lanes_[task->metadata.lane()].queue, task);
  ++lane_queued_;
  InvalidateFastSteps();  // lane work takes the general step
}

// Schedule/ScheduleLabeled/ScheduleForeground without the virtual call and
// the thread check: the task was woken during its own poll, on this thread.
// `kPlain`: a fast step (see StepInline): no trace, the strategy is `kPick`.
template <TestScheduler::FastPick kPick>
[[gnu::always_inline]] inline void TestScheduler::RequeueBackground(TaskHeader* task) {
  // What EnqueueHeader does under this strategy.
  if constexpr (kPick == FastPick::kPct) {
    strategy_.OnEnqueueAs<StrategyKind::kPct>(*task, rng_);
  } else if constexpr (kPick == FastPick::kPos) {
    strategy_.OnEnqueueAs<StrategyKind::kPos>(*task, rng_);
  }
  background_.push_back(task);
}

template <bool kPlain, TestScheduler::FastPick kPick>
[[gnu::always_inline]] inline void TestScheduler::Requeue(TaskHeader* task) {
  if (!kPlain && options_.record_trace) [[unlikely]] {
    wake_notes_.try_emplace(task->metadata.id.value, WakeNote{WakeCause::kItself, TaskId{}});
  }
  if (task->kind() == internal::ScheduleKind::kBackground) [[likely]] {
    if (kPlain) {
      RequeueBackground<kPick>(task);
    } else {
      EnqueueHeader(background_, task);
    }
  } else if (task->kind() == internal::ScheduleKind::kLabeled) {
    EnqueueLabeled(task, *task->metadata.label());
  } else {
    EnqueueOnLane(task);
  }
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

void TestScheduler::Deprioritize(TaskLabel label) { deprioritized_labels_.insert(label); }

LaneId TestScheduler::AddLane(std::string_view name) {
  lanes_.emplace_back();
  lanes_.back().name = std::string(name);
  return static_cast<LaneId>(lanes_.size() - 1);
}

std::string_view TestScheduler::LaneName(LaneId lane) const {
  return lane < lanes_.size() ? std::string_view(lanes_[lane].name) : std::string_view();
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

[[gnu::always_inline]] inline TimerId TestScheduler::AddTimer(Instant deadline, Waker waker) {
  const TimerId id = timers_.Add(deadline, std::move(waker));
  next_timer_deadline_ = std::min(next_timer_deadline_, deadline);
  if (deadline <= now_) InvalidateFastSteps();  // due already: the general step fires it
  return id;
}

TimerId TestScheduler::StartTimer(Instant deadline, Waker waker) {
  return AddTimer(deadline, std::move(waker));
}

TimerId TestScheduler::StartTaskTimer(Instant deadline, TaskHeader& task) {
  return AddTimer(deadline, Waker::ForTask(&task));
}

void TestScheduler::CancelTimer(TimerId timer) {
  timers_.Cancel(timer);
  next_timer_deadline_exact_ = false;  // it may have been the earliest
}

void TestScheduler::FireDueTimers() {
  // One timer at a time, in (deadline, start order): the order in which the
  // tasks become queued. A wake only queues its task, so nothing runs between
  // two pops, and nothing holds on to the queue while a wake runs (a waker of
  // another scheduler's task may call back into this one's timers).
  const WakeCause previous = std::exchange(waking_from_, WakeCause::kTimer);
  Waker waker;
  // Consuming wakes: each waker's reference goes to the queue (or is dropped).
  while (timers_.PopNextDue(now_, waker)) std::move(waker).Wake();
  waking_from_ = previous;
  next_timer_deadline_ = timers_.NextDeadline();
  next_timer_deadline_exact_ = true;
  timers_.PrefetchNext();
  if (next_timer_deadline_ <= now_) InvalidateFastSteps();
}

void TestScheduler::AdvanceTimeTo(Instant when) {
  if (when <= now_) return;
  now_ = when;
  trace_state_ = MixWord(trace_state_, kTimeWordTag | static_cast<uint64_t>(Elapsed().count()));
  FireDueTimers();
}

void TestScheduler::AdvanceToNextTimer() {
  ReleaseIdleQueueStorage();
  // The cached deadline is never later than the true one, so when it lies
  // ahead nothing is due: refreshing it (a cancelled timer may linger there)
  // is all firing would do, and nothing at all when no timer was cancelled
  // since it was read from the queue (starting timers keeps it exact).
  if (next_timer_deadline_ <= now_) {
    FireDueTimers();
  } else if (!next_timer_deadline_exact_) {
    next_timer_deadline_ = timers_.NextDeadline();
    next_timer_deadline_exact_ = true;
  }
  if (next_timer_deadline_ == Instant::max()) return;
  AdvanceTimeTo(next_timer_deadline_);
}

void TestScheduler::AdvanceClock(Duration duration) {
  if (duration < Duration::zero()) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        "AdvanceClock(", duration.count(),
        "ns): virtual time only moves forward; pass a non-negative duration")));
    return;
  }
  const Instant target = DeadlineAfter(now_, duration);
  if (target == kEndOfTime) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        "AdvanceClock(", duration.count(), "ns) at virtual time ", FormatDuration(Elapsed()),
        " would reach the end of time (Instant::max()), where nothing can happen; advance by "
        "a duration that fits (Duration::max() means forever, not a step of the clock)")));
    return;
  }
  AdvanceTimeTo(target);
}

// PCT and POS: the candidate with the largest priority (ties: the first in
// candidate order: background queue order, then lanes by id). Deprioritized
// work competes only when nothing else is runnable (`main_work` false), as in
// every strategy. The background's best comes from TopPriorities, which picks
// what a scan of the whole queue picks (scheduler/priority_pick_test.cc).
void TestScheduler::PickByPriority(TaskHeader*& next, LaneId& lane, bool main_work) {
  internal::TopPriorities& top = strategy_.background_top();
  for (;;) {
    Queue* best_queue = nullptr;
    size_t best_index = 0;
    LaneId best_lane = kNoLane;
    uint64_t best = 0;
    if (main_work) {
      if (!background_.empty()) {
        best_queue = &background_;
        best_index = top.Best(background_);
        best = background_[best_index]->enqueue_seq;
      }
      for (LaneId id = 0; lane_queued_ != 0 && id < lanes_.size(); ++id) {
        Lane& l = lanes_[id];
        if (l.queue.empty() || l.blocked != 0) continue;
        const uint64_t priority = l.queue.front()->enqueue_seq;
        if (best_queue == nullptr || priority > best) {
          best_queue = &l.queue;
          best_index = 0;
          best_lane = id;
          best = priority;
        }
      }
    } else {
      best_queue = &deprioritized_;
      for (size_t i = 0; i < deprioritized_.size(); ++i) {
        const uint64_t priority = deprioritized_[i]->enqueue_seq;
        if (i == 0 || priority > best) {
          best_index = i;
          best = priority;
        }
      }
    }
    SIMSCHED_CHECK(best_queue != nullptr && !best_queue->empty(),
                   "PickByPriority without a candidate");
    if (strategy_.DemoteAtChangePoint(steps_ + 1, *(*best_queue)[best_index])) {
      if (best_queue == &background_) top.Reset();  // a kept priority changed
      continue;
    }
    if (best_lane != kNoLane) {
      next = best_queue->pop_front();
      --lane_queued_;
    } else if (best_queue == &background_) {
      next = top.Take(background_, best_index);
    } else {
      next = best_index == 0 ? best_queue->pop_front() : best_queue->SwapRemove(best_index);
    }
    lane = best_lane;
    return;
  }
}

bool TestScheduler::PickNextSlow(TaskHeader*& next, LaneId& lane) {
  if (lane_queued_ == 0 && !background_.empty() && strategy_.ByPriority(steps_ + 1)) [[likely]] {
    // PCT and POS with only background work queued (the common case): what
    // PickByPriority does then, without its generality.
    internal::TopPriorities& top = strategy_.background_top();
    const size_t best = top.Best(background_);
    if (strategy_.DemoteAtChangePoint(steps_ + 1, *background_[best])) [[unlikely]] {
      top.Reset();
      PickByPriority(next, lane, /*main_work=*/true);  // picks again
      return true;
    }
    next = top.Take(background_, best);
    lane = kNoLane;
    return true;
  }
  return PickNextGeneral(next, lane);
}

bool TestScheduler::PickNextGeneral(TaskHeader*& next, LaneId& lane) {
  const size_t background = background_.size();
  // Candidates: all background entries, then the head of each runnable lane
  // in lane order.
  size_t eligible_lanes = 0;
  for (const Lane& l : lanes_) eligible_lanes += (!l.queue.empty() && l.blocked == 0) ? 1 : 0;
  const size_t candidates = background + eligible_lanes;
  if (candidates == 0 && deprioritized_.empty()) return false;
  if (strategy_.ByPriority(steps_ + 1)) {
    PickByPriority(next, lane, /*main_work=*/candidates > 0);
    return true;
  }
  const bool randomize = !strategy_.fifo();
  if (candidates == 0) {
    const size_t index = randomize ? rng_.Below(deprioritized_.size()) : 0;
    next = index == 0 ? deprioritized_.pop_front() : deprioritized_.SwapRemove(index);
    lane = kNoLane;
    return true;
  }
  size_t pick;
  if (randomize) {
    pick = rng_.Below(candidates);
  } else {
    // FIFO: the candidate enqueued first.
    pick = 0;
    uint64_t best = background > 0 ? background_.front()->enqueue_seq : UINT64_MAX;
    size_t k = background;
    for (Lane& l : lanes_) {
      if (l.queue.empty() || l.blocked != 0) continue;
      if (l.queue.front()->enqueue_seq < best) {
        best = l.queue.front()->enqueue_seq;
        pick = k;
      }
      ++k;
    }
  }
  if (pick < background) {
    // In randomized mode the queue's order carries no meaning, so the picked
    // entry is swapped with the back and popped in O(1). A random pick of
    // the front takes it in place (the order pop_front leaves, without
    // rotating the ring): under the uniform strategy the background queue
    // then never rotates, which its fast steps and direct wakes rely on
    // (UniformFastStepLoop, DirectEnqueueTarget). O(n), but only one random
    // pick in n takes the front; FIFO, which always does, pops it.
    if (pick != 0) {
      next = background_.SwapRemove(pick);
    } else {
      next = randomize ? background_.RemoveFirstInPlace() : background_.pop_front();
    }
    strategy_.background_top().Reset();  // (PCT past fair_after_ picks here)
    lane = kNoLane;
    return true;
  }
  size_t k = background;
  for (LaneId id = 0; id < lanes_.size(); ++id) {
    Lane& l = lanes_[id];
    if (l.queue.empty() || l.blocked != 0) continue;
    if (k++ == pick) {
      next = l.queue.pop_front();
      --lane_queued_;
      lane = id;
      return true;
    }
  }
  SIMSCHED_CHECK(false, "PickNext lost its candidate");
}

void TestScheduler::NoteWake(const TaskHeader& task) {
  WakeNote note{waking_from_, TaskId{}, internal::current_wake_reason};
  if (note.cause == WakeCause::kUnknown) {
    const TaskHeader* waker = internal::current_task;
    const TaskId awaited = task.wait_site().awaited_task;
    if (waker == nullptr && awaited.value != 0) {
      // A join: the awaited task wakes its joiner as its last poll ends,
      // after it stopped being the current task.
      note = WakeNote{WakeCause::kTask, awaited, note.reason};
    } else if (waker == nullptr) {
      note.cause = WakeCause::kOutsideTask;
    } else if (waker == &task) {
      note.cause = WakeCause::kItself;
    } else {
      note = WakeNote{WakeCause::kTask, waker->metadata.id, note.reason};
    }
  }
  wake_notes_.try_emplace(task.metadata.id.value, note);
}

void TestScheduler::RecordTraceEntry(const TaskHeader& task, LaneId lane) {
  TraceEntry entry;
  entry.step = steps_;
  entry.time = Elapsed();
  entry.task = task.metadata.id;
  entry.label = task.metadata.label();
  entry.spawn_location = task.metadata.spawn_location();
  entry.lane = lane == kNoLane ? std::nullopt : std::optional<LaneId>(lane);
  // The wait site is still the one the task suspended at: it changes only
  // when this step polls the task.
  const WaitSite site = task.wait_site();
  entry.resumed_what = std::string(site.what);
  entry.resumed_at = site.where;
  entry.resumed_after_task = site.awaited_task;
  if (auto it = wake_notes_.find(task.metadata.id.value); it != wake_notes_.end()) {
    entry.cause = it->second.cause;
    entry.woken_by = it->second.by;
    if (it->second.reason != nullptr) entry.wake_reason = it->second.reason;
    wake_notes_.erase(it);
  }
  entry.internal = IsInternal(task.metadata.id);
  entry.session = task.metadata.session();
  trace_.push_back(std::move(entry));
}

void TestScheduler::AddTraceNote(std::string_view kind, std::string_view text) {
  if (!options_.record_trace) return;
  const TaskHeader* running = internal::current_task;
  trace_notes_.push_back({steps_, Elapsed(), std::string(kind), std::string(text),
                          running != nullptr ? running->metadata.id : TaskId{}});
}

void TestScheduler::MarkInternal(TaskId task) { internal_ids_.insert(task.value); }

// One step: polls `task` (picked from `lane`'s queue, or background work for
// kNoLane) and re-queues it if it was woken during the poll. `kPlain`: the
// caller knows the step is a fast one (`fast_pick_` is `kPick`: no trace, no
// cost model) and background work, and the checks for those are left out.
template <bool kPlain, TestScheduler::FastPick kPick, bool kTopLevel>
[[gnu::always_inline]] inline void TestScheduler::RunPicked(TaskHeader* task, LaneId lane) {
  static_assert(kPlain || !kTopLevel);
  ++steps_;
  const uint64_t lane_code = kPlain || lane == kNoLane ? 0 : uint64_t{lane} + 1;
  trace_state_ = MixWord(trace_state_, (task->metadata.id.value << 20) ^ lane_code);
  if (!kPlain && options_.record_trace) [[unlikely]] RecordTraceEntry(*task, lane);
  const LaneId previous_lane =
      kTopLevel ? kNoLane : std::exchange(current_lane_, kPlain ? kNoLane : lane);
  if constexpr (kPlain) {
    // A confined background task (the common case): one state test, and a
    // re-queue that needs no kind check. Any other task returns kNotFast.
    const TaskHeader::PollResult fast = task->PollOnceFast<kTopLevel>();
    if (fast != TaskHeader::PollResult::kNotFast) [[likely]] {
      if (!kTopLevel) current_lane_ = previous_lane;
      if (fast == TaskHeader::PollResult::kRequeue) RequeueBackground<kPick>(task);
      return;
    }
    if (kTopLevel) TaskHeader::EndFastPolls();  // the general poll below sets its own
  }
  const TaskId polled = task->metadata.id;  // the header may be gone after the poll
  // Tasks of this scheduler are confined to its thread unless it allows
  // parking (or a decorator in front of it says otherwise).
  const TaskHeader::PollResult result =
      task->confined() ? task->PollOnceConfined<kTopLevel>() : task->PollOnce();
  if (!kTopLevel) current_lane_ = previous_lane;
  if (result == TaskHeader::PollResult::kRequeue) Requeue<kPlain, kPick>(task);
  if (!kPlain && poll_cost_model_ != nullptr) [[unlikely]] ChargePollCost(polled);
}

void TestScheduler::ChargePollCost(TaskId task) {
  const Duration cost = poll_cost_model_->PollCost(task);
  if (cost > Duration::zero()) AdvanceTimeTo(DeadlineAfter(now_, cost));
}

// The fast step, the common case kept short: only background work is
// queued, no timer is due, nothing records or charges the step, and the pick
// is uniform or (PCT, POS) the background queue's best entry on a step that
// is no change point. It picks exactly what StepGeneral() would.
template <TestScheduler::FastPick kPick, bool kTopLevel, bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::FastStep() {
  TaskHeader* next;
  if constexpr (kPick == FastPick::kUniform) {
    const size_t size = background_.size();
    const size_t index = rng_.Below(size);
    if (index >= size) __builtin_unreachable();  // Below's contract: SwapRemove need not check
    next = background_.SwapRemove(index);
    // The next step's likely task, while this one polls (pick_lookahead.h):
    // the queue has the same size then if this task re-queues.
    if constexpr (kPrefetch) {
      internal::PrefetchForPoll(background_.Guess(internal::PeekBelow(rng_, size)));
    }
  } else {
    internal::TopPriorities& top = strategy_.background_top();
    next = top.TakeNewestIfBest(background_);
    if (next == nullptr) [[unlikely]] next = top.Take(background_, top.Best(background_));
  }
  RunPicked</*kPlain=*/true, kPick, kTopLevel>(next, kNoLane);
}

template <TestScheduler::FastPick kPick, bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::FastStepLoop() {
  while (steps_ < fast_step_limit_.load(std::memory_order_relaxed) && !background_.empty())
      [[likely]] {
    FastStep<kPick, /*kTopLevel=*/true, kPrefetch>();
  }
}

// A uniform fast step's poll of the task it picked, from a run loop.
[[gnu::always_inline]] inline TaskHeader::PollResult TestScheduler::UniformFastPoll(
    TaskHeader* task, std::coroutine_handle<>& trampoline_next) {
  ++steps_;
  trace_state_ = MixWord(trace_state_, task->metadata.id.value << 20);  // as RunPicked's
  return task->PollOnceFast</*kOutsideTasks=*/true>(trampoline_next);
}

// The uniform fast steps of a run loop: FastStepLoop<kUniform> written out,
// so that the compiler keeps to the few loads and stores each step needs.
// Under the uniform strategy nothing rotates the background queue (its
// general pick takes the front in place, and no other pick applies), so a
// pick is a swap-remove and a re-queue a push on a plain array. A task that
// re-queues leaves the queue as large as it was: the loop goes straight on
// to the next step's limit check. With one task queued (a chain of wakes:
// a ping-pong, a pipeline, a task waking the next) the pick is index 0,
// which is what `Below(1)` returns after one draw whatever the draw, so
// those steps take the generator's step without its output and the
// queue's only slot without the swap: the same picks, the same sequence
// for the picks after, no multiply. The loops move between the two only
// when a step ends without a re-queue, so a run of re-queues (W1) pays
// nothing for the split.
template <bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::UniformFastStepLoop() {
  std::coroutine_handle<>& trampoline_next = internal::resume_next;  // its address, once
  size_t size = background_.size();
  for (;;) {
    while (size == 1) {
      if (steps_ >= fast_step_limit_.load(std::memory_order_relaxed)) return;
      static_cast<void>(rng_.Next64());  // Below(1)'s draw: the output is not needed
      TaskHeader* const task = background_.TakeOnlyUnrotated();
      const TaskHeader::PollResult result = UniformFastPoll(task, trampoline_next);
      if (result == TaskHeader::PollResult::kRequeue) [[likely]] {
        background_.PushBackUnrotated(task);
      } else if (result == TaskHeader::PollResult::kNotFast) [[unlikely]] {
        PollNotFast(task);
      }
      size = background_.size();
    }
    if (size == 0) return;
    for (;;) {  // two tasks or more queued
      if (steps_ >= fast_step_limit_.load(std::memory_order_relaxed)) return;
      const size_t index = internal::UniformPick(rng_, size);
      if (index >= size) __builtin_unreachable();  // Below's contract
      TaskHeader* const task = background_.SwapRemoveUnrotated(index);
      if constexpr (kPrefetch) {
        internal::PrefetchForPoll(background_.Guess(internal::PeekBelow(rng_, size)));
      }
      const TaskHeader::PollResult result = UniformFastPoll(task, trampoline_next);
      if (result == TaskHeader::PollResult::kRequeue) [[likely]] {
        background_.PushBackUnrotated(task);
        size = background_.size();  // not empty: the task is back
        continue;
      }
      if (result == TaskHeader::PollResult::kNotFast) [[unlikely]] PollNotFast(task);
      size = background_.size();
      if (size <= 1) break;
    }
  }
}

void TestScheduler::PollNotFast(TaskHeader* task) {
  // What RunPicked<kPlain, kUniform, kTopLevel> does after PollOnceFast.
  TaskHeader::EndFastPolls();  // the general poll below sets its own
  const TaskHeader::PollResult result =
      task->confined() ? task->PollOnceConfined</*kOutsideTasks=*/true>() : task->PollOnce();
  if (result == TaskHeader::PollResult::kRequeue) {
    Requeue</*kPlain=*/true, FastPick::kUniform>(task);
  }
}

template <TestScheduler::FastPick kPick>
void TestScheduler::FastSteps() {
  // Prefetching pays only when the tasks' blocks do not all fit in the L1
  // cache; the queue's size when the loop starts decides, so that a step
  // of a small run (the seed sweep's) pays no test for it.
  if constexpr (kPick == FastPick::kUniform) {
    if (background_.rotated()) [[unlikely]] {
      FastStepLoop<kPick, /*kPrefetch=*/false>();  // (no pick under it rotates the queue)
    } else if (background_.size() >= internal::kPrefetchFromQueueSize) {
      UniformFastStepLoop</*kPrefetch=*/true>();
    } else {
      UniformFastStepLoop</*kPrefetch=*/false>();
    }
  } else {
    FastStepLoop<kPick, /*kPrefetch=*/false>();
  }
  TaskHeader::EndFastPolls();  // the last poll left its task current
}

[[gnu::always_inline]] inline void TestScheduler::RunFastSteps() {
  // Run loops are called from plain code, but a frame's destructor that
  // runs when a lane task ends could call one: then the general steps,
  // which keep the lane, do the work.
  if (current_lane_ != kNoLane || internal::current_task != nullptr) [[unlikely]] return;
  switch (fast_pick_) {
    case FastPick::kUniform: return FastSteps<FastPick::kUniform>();
    case FastPick::kPct: return FastSteps<FastPick::kPct>();
    case FastPick::kPos: return FastSteps<FastPick::kPos>();
    case FastPick::kNone: return;
  }
}

[[gnu::always_inline]] inline void TestScheduler::UpdateFastStepLimit() {
  uint64_t limit = 0;
  if (fast_pick_ != FastPick::kNone && !failed_ && lane_queued_ == 0 &&
      next_timer_deadline_ > now_) {
    limit = step_limit_;
    if (fast_pick_ != FastPick::kUniform) {
      limit = std::min(limit, strategy_.FastPriorityStepLimit(steps_));
    }
  }
  // Work or a failure that another thread put in the inbox must end fast
  // steps (see ScheduleFromForeignThread). With allow_parking, sequentially
  // consistent store and load make sure of it (that work may be what a task
  // waits for). Without, such a wake is only a failure to report, and the
  // ordering (tens of cycles whenever the loops return to fast steps) is
  // left out: a foreign store racing this one could be overwritten, and the
  // failure is then reported when the fast steps end (the queue empties, the
  // budget).
  if (limit != 0 && options_.allow_parking) [[unlikely]] {
    fast_step_limit_.store(limit, std::memory_order_seq_cst);
    if (inbox_pending_.load(std::memory_order_seq_cst)) InvalidateFastSteps();
    return;
  }
  fast_step_limit_.store(limit, std::memory_order_relaxed);
  if (limit != 0 && inbox_pending_.load(std::memory_order_relaxed)) InvalidateFastSteps();
}

// One step, fast if it can be. The run loops check FailurePending() (which
// covers the inbox) before every step; Step() checks the inbox itself.
[[gnu::always_inline]] inline bool TestScheduler::StepInline() {
  if (steps_ < fast_step_limit_.load(std::memory_order_relaxed) && !background_.empty())
      [[likely]] {
    switch (fast_pick_) {
      case FastPick::kUniform: FastStep<FastPick::kUniform, false>(); return true;
      case FastPick::kPct: FastStep<FastPick::kPct, false>(); return true;
      case FastPick::kPos: FastStep<FastPick::kPos, false>(); return true;
      case FastPick::kNone: break;  // (its limit is zero)
    }
  }
  const bool stepped = StepGeneral();
  UpdateFastStepLimit();
  return stepped;
}

bool TestScheduler::StepGeneral() {
  if (next_timer_deadline_ <= now_) [[unlikely]] FireDueTimers();
  TaskHeader* next;
  LaneId lane;
  if (lane_queued_ == 0 && uniform_pick_ && !background_.empty()) {
    next = background_.SwapRemove(rng_.Below(background_.size()));
    lane = kNoLane;
  } else if (!PickNextSlow(next, lane)) {
    return false;
  }
  RunPicked</*kPlain=*/false>(next, lane);
  return true;
}

bool TestScheduler::Step() {
  if (!OnOwnerThread()) [[unlikely]] return StepFromForeignThread();
  if (inbox_pending_.load(std::memory_order_relaxed)) [[unlikely]] DrainInbox();
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  return StepInline();
}

bool TestScheduler::TakeQueued(TaskHeader& task, LaneId& lane) {
  if ((task.state() & TaskHeader::kScheduled) == 0 || task.running()) return false;
  auto take = [&](Queue& queue, LaneId queue_lane) {
    for (size_t i = 0; i < queue.size(); ++i) {
      if (queue[i] == &task) {
        queue.Erase(i);
        lane = queue_lane;
        return true;
      }
    }
    return false;
  };
  if (take(background_, kNoLane)) {
    strategy_.background_top().Reset();  // an entry left the middle of the queue
    return true;
  }
  if (take(deprioritized_, kNoLane)) return true;
  for (LaneId id = 0; id < lanes_.size(); ++id) {
    if (take(lanes_[id].queue, id)) {
      --lane_queued_;
      return true;
    }
  }
  return false;
}

uint64_t TestScheduler::TraceHash() const { return SplitMix64(trace_state_ ^ steps_); }

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

absl::Status TestScheduler::RunUntilIdle() {
  if (absl::Status status = CheckCanRun("RunUntilIdle()"); !status.ok()) return status;
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  for (;;) {
    UpdateFastStepLimit();
    RunFastSteps();
    // The general path: what the fast steps left (or could not see).
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] return BudgetFailure("RunUntilIdle()");
    if (NothingToStep() || !StepGeneral()) {
      ReleaseIdleQueueStorage();
      return PendingFailure();
    }
  }
}

absl::Status TestScheduler::Run() {
  if (absl::Status status = CheckCanRun("Run()"); !status.ok()) return status;
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  for (;;) {
    UpdateFastStepLimit();
    RunFastSteps();
    // The general path: what the fast steps left (or could not see).
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] return BudgetFailure("Run()");
    if (!NothingToStep() && StepGeneral()) continue;
    if (timers_.live() > 0) {
      AdvanceToNextTimer();
      continue;
    }
    if (absl::Status status = PendingFailure(); !status.ok()) return status;
    if (StuckTaskCount() == 0) return absl::OkStatus();
    if (options_.allow_parking) {
      // A real thread may still wake one of them.
      if (parker_->Park(options_.park_timeout)) continue;
      if (inbox_pending_.load(std::memory_order_acquire)) continue;
    }
    return DeadlockFailure("Run()");
  }
}

void TestScheduler::AllowIdle(TaskId task) { idle_allowed_.insert(task.value); }

bool TestScheduler::IdleAllowed(const TaskHeader& task) const {
  return options_.allow_idle_tasks ||
         (!idle_allowed_.empty() && idle_allowed_.contains(task.metadata.id.value));
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

absl::Status TestScheduler::BlockOnTask(TaskHeader& task) {
  return BlockOnTaskWithBudget(task, BlockOnBudget{});
}

absl::Status TestScheduler::BlockOnTaskWithBudget(TaskHeader& task, BlockOnBudget budget) {
  LaneId blocked_lane;
  if (absl::Status status = CheckCanBlock(blocked_lane); !status.ok()) return status;
  if (&task == internal::current_task) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") was called from that same task: it would "
        "wait for itself forever"));
  }
  // A real main thread blocked on a future runs none of its other work.
  struct LaneBlock {
    TestScheduler* scheduler;
    LaneId lane;
    explicit LaneBlock(TestScheduler* s, LaneId l) : scheduler(s), lane(l) {
      if (lane != kNoLane) ++scheduler->lanes_[lane].blocked;
    }
    ~LaneBlock() {
      if (lane != kNoLane) --scheduler->lanes_[lane].blocked;
    }
  } lane_block(this, blocked_lane);
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());

  const bool budgeted = budget.max_steps.has_value() || budget.max_time.has_value();
  const uint64_t step_limit = budget.max_steps.has_value()
                                  ? internal::SaturatingAdd(steps_, *budget.max_steps)
                                  : UINT64_MAX;
  const Instant time_limit =
      budget.max_time.has_value() ? DeadlineAfter(now_, *budget.max_time) : kEndOfTime;
  auto budget_spent = [&](Outcome outcome) -> absl::Status {
    return WithOutcome(absl::DeadlineExceededError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") used up its budget (",
        budget.max_steps.has_value() ? absl::StrCat(*budget.max_steps, " steps") : "",
        budget.max_steps.has_value() && budget.max_time.has_value() ? ", " : "",
        budget.max_time.has_value() ? FormatDuration(*budget.max_time) : "",
        ") before the task finished; the task is still running and was not cancelled: call "
        "BlockOn again to continue.\n",
        RunSummary())), outcome);
  };

  if (budgeted && !task.finished()) {
    // Like a real blocking call, poll the awaited task first if it is ready
    // to run: a zero budget still polls it once.
    LaneId lane;
    if (TakeQueued(task, lane)) RunPicked</*kPlain=*/false>(&task, lane);
  }
  for (;;) {
    if (task.finished()) return absl::OkStatus();
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] {
      return BudgetFailure(absl::StrCat("BlockOn(", task.metadata.DebugString(), ")"));
    }
    if (steps_ >= step_limit) return budget_spent(Outcome::kStepBudgetExhausted);
    if (StepInline()) continue;
    if (timers_.live() > 0 && next_timer_deadline_ <= time_limit) {
      AdvanceToNextTimer();
      continue;
    }
    if (time_limit != kEndOfTime) {
      // A finite time budget: nothing happens before it runs out.
      AdvanceTimeTo(time_limit);
      if (Step()) continue;
      if (task.finished()) return absl::OkStatus();
      return budget_spent(Outcome::kTimeBudgetExhausted);
    }
    if (options_.allow_parking) {
      // Work may still arrive from a real thread.
      if (parker_->Park(options_.park_timeout)) continue;
      if (inbox_pending_.load(std::memory_order_acquire)) continue;
    }
    return WithOutcome(absl::FailedPreconditionError(absl::StrCat(
        "deadlock: BlockOn(", task.metadata.DebugString(),
        ") can never finish: no task is runnable and no timer is pending",
        options_.allow_parking
            ? absl::StrCat(", and no other thread woke it within the park timeout of ",
                           FormatDuration(options_.park_timeout))
            : "",
        blocked_lane != kNoLane
            ? absl::StrCat(" (lane ", blocked_lane, " \"", lanes_[blocked_lane].name,
                           "\" is blocked in this BlockOn)")
            : "",
        ".\n", RunSummary(), "\n", DescribeWaitFor())), Outcome::kDeadlock);
  }
}

void TestScheduler::OnTaskSpawned(TaskHeader& task) {
  if (!OnOwnerThread()) [[unlikely]] {
    // Tracked nowhere (id 0): the schedule call that follows lands in the
    // inbox and fails the run.
    return;
  }
  task.metadata.id = TaskId{next_task_id_++};
  live_.Add(&task);
  if (options_.record_trace) [[unlikely]] {
    const TaskHeader* parent = internal::current_task;
    const TaskId parent_id = parent != nullptr ? parent->metadata.id : TaskId{};
    wake_notes_.insert_or_assign(task.metadata.id.value,
                                 WakeNote{WakeCause::kSpawned, parent_id});
    task_events_.push_back(
        {TaskEvent::Kind::kSpawned, steps_, Elapsed(), task.metadata.Unpack(), parent_id});
  }
  if (task_observer_ != nullptr) [[unlikely]] TellObserverSpawned(task);
}

void TestScheduler::TellObserverSpawned(const TaskHeader& task) {
  // The parent only if it is one of ours (not a task of another scheduler
  // polled on this thread).
  TaskId parent_id;
  if (const TaskHeader* parent = internal::current_task; parent != nullptr) {
    if (live_.Find(parent->metadata.id) == parent) parent_id = parent->metadata.id;
  }
  task_observer_->OnTaskSpawned(task.metadata.id, parent_id);
}

void TestScheduler::StartSpawnedTask(TaskHeader& task) {
  // Background work spawned on this thread with nothing recorded: what
  // OnTaskSpawned() and then Schedule() (or a direct enqueue) do, in the same
  // order (the id, the observer, the strategy's enqueue hook, the push),
  // without the Runnable, a second virtual call and the thread and trace
  // checks. Anything else goes the general way.
  if (task.kind() != internal::ScheduleKind::kBackground || options_.record_trace ||
      !OnOwnerThread()) [[unlikely]] {
    OnTaskSpawned(task);
    task.ScheduleSelf();
    return;
  }
  task.metadata.id = TaskId{next_task_id_++};
  live_.Add(&task);
  if (task_observer_ != nullptr) [[unlikely]] TellObserverSpawned(task);
  EnqueueHeader(background_, &task);
}

bool TestScheduler::CancelTask(TaskId id) {
  TaskHeader* task = live_.Find(id);
  if (task == nullptr) return false;
  task->AddRef();  // the cancellation may drop the last other reference
  task->Cancel();
  task->Release();
  return true;
}

void TestScheduler::OnTaskFinished(TaskHeader& task) {
  if (task.metadata.id.value == 0) return;
  if (!live_.Remove(task)) return;
  if (options_.record_trace || task_observer_ != nullptr) [[unlikely]] NoteTaskFinished(task);
}

void TestScheduler::NoteTaskFinished(const TaskHeader& task) {
  if (options_.record_trace) {
    task_events_.push_back({task.cancelled() ? TaskEvent::Kind::kCancelled
                                             : TaskEvent::Kind::kCompleted,
                            steps_, Elapsed(), task.metadata.Unpack(), TaskId{}});
  }
  if (task_observer_ != nullptr) task_observer_->OnTaskFinished(task.metadata.id);
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
