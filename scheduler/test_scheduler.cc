#include "scheduler/test_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"

namespace simsched {
namespace {

// Mixes one 64-bit word into the running trace digest. A multiply-xorshift
// step: cheap (one multiply) and order-sensitive, which is all a digest of a
// decision sequence needs. The final value is avalanched by SplitMix64.
inline uint64_t MixWord(uint64_t state, uint64_t word) {
  state = (state ^ word) * 0x9fb21c651e98df25ULL;
  return state ^ (state >> 29);
}

std::string FormatDuration(Duration d) {
  const int64_t ns = d.count();
  if (ns % 1'000'000'000 == 0) return absl::StrCat("+", ns / 1'000'000'000, "s");
  if (ns % 1'000'000 == 0) return absl::StrCat("+", ns / 1'000'000, "ms");
  if (ns % 1'000 == 0) return absl::StrCat("+", ns / 1'000, "us");
  return absl::StrCat("+", ns, "ns");
}

// Seed of the test-data stream: a fixed, documented derivation from the run's
// seed so that it differs from the scheduling stream.
constexpr uint64_t kUserStreamSalt = 0x5eed5eed5eed5eedULL;

}  // namespace

std::string TraceEntry::DebugString() const {
  std::string out = absl::StrCat("step ", step, " t=", FormatDuration(time), " task ", task.value);
  if (label.has_value()) absl::StrAppend(&out, " \"", std::string(label->name()), "\"");
  if (main_thread) absl::StrAppend(&out, " [main]");
  absl::StrAppend(&out, " spawned at ", FormatLocation(spawn_location));
  return out;
}

bool operator==(const TraceEntry& a, const TraceEntry& b) {
  return a.step == b.step && a.time == b.time && a.task == b.task && a.label == b.label &&
         a.main_thread == b.main_thread &&
         a.spawn_location.line() == b.spawn_location.line() &&
         std::string_view(a.spawn_location.file_name()) == b.spawn_location.file_name();
}

TestScheduler::TestScheduler(TestSchedulerOptions options)
    : options_(options),
      rng_(options.seed),
      user_rng_(SplitMix64(options.seed ^ kUserStreamSalt)),
      parker_(std::make_shared<internal::Parker>()) {}

std::shared_ptr<TestScheduler> TestScheduler::Create(TestSchedulerOptions options) {
  return std::make_shared<TestScheduler>(options);
}

TestScheduler::~TestScheduler() {
  SIMSCHED_CHECK(internal::current_task == nullptr ||
                     internal::current_task->scheduler() != this,
                 "a TestScheduler was destroyed from inside one of its own tasks");
  shutting_down_ = true;
  // Rounds, because frame destructors may spawn or wake tasks; those are
  // cancelled in the next round. Each round is in a deterministic order:
  // queued Runnables first (dropping one cancels its task), then every other
  // live task by id.
  for (;;) {
    std::vector<Runnable> queued;
    for (auto* queue : {&background_, &foreground_, &deprioritized_}) {
      for (Runnable& runnable : *queue) queued.push_back(std::move(runnable));
      queue->clear();
    }
    queued.clear();  // cancels each task (frames destroyed, RAII runs)
    if (live_tasks_.empty() && background_.empty() && foreground_.empty() &&
        deprioritized_.empty()) {
      break;
    }
    std::vector<internal::TaskHeader*> live;
    for (const auto& [id, task] : live_tasks_) {
      task->AddRef();
      live.push_back(task);
    }
    for (internal::TaskHeader* task : live) {
      task->Cancel();
      task->Release();
    }
  }
  // Timers hold wakers (references to task headers); drop them last.
  timer_slots_.clear();
  timer_heap_.clear();
}

void TestScheduler::Enqueue(std::deque<Runnable>& queue, Runnable runnable) {
  runnable.header()->enqueue_seq = enqueue_counter_++;
  queue.push_back(std::move(runnable));
}

void TestScheduler::Schedule(Runnable runnable) { Enqueue(background_, std::move(runnable)); }

void TestScheduler::ScheduleLabeled(Runnable runnable, TaskLabel label) {
  if (!deprioritized_labels_.empty() && deprioritized_labels_.contains(label)) {
    Enqueue(deprioritized_, std::move(runnable));
  } else {
    Enqueue(background_, std::move(runnable));
  }
}

void TestScheduler::ScheduleForeground(Runnable runnable) {
  Enqueue(foreground_, std::move(runnable));
}

void TestScheduler::Deprioritize(TaskLabel label) { deprioritized_labels_.insert(label); }

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

Unparker TestScheduler::GetUnparker() { return Unparker(parker_); }

TimerId TestScheduler::StartTimer(Instant deadline, Waker waker) {
  uint32_t slot;
  if (!free_timer_slots_.empty()) {
    slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  }
  TimerSlot& entry = timer_slots_[slot];
  entry.waker = std::move(waker);
  entry.armed = true;
  timer_heap_.push_back(TimerEntry{deadline, timer_sequence_++, slot, entry.generation});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
  ++live_timers_;
  next_timer_deadline_ = timer_heap_.front().deadline;
  return TimerId{(uint64_t{entry.generation} << 32) | slot};
}

void TestScheduler::CancelTimer(TimerId timer) {
  const uint32_t slot = static_cast<uint32_t>(timer.value);
  const uint32_t generation = static_cast<uint32_t>(timer.value >> 32);
  if (slot >= timer_slots_.size()) return;
  TimerSlot& entry = timer_slots_[slot];
  if (!entry.armed || entry.generation != generation) return;
  // The heap entry stays and is skipped when it surfaces (generation moved).
  entry.armed = false;
  entry.waker = Waker();
  ++entry.generation;
  free_timer_slots_.push_back(slot);
  --live_timers_;
}

void TestScheduler::FireDueTimers() {
  while (!timer_heap_.empty() && timer_heap_.front().deadline <= now_) {
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
    const TimerEntry fired = timer_heap_.back();
    timer_heap_.pop_back();
    TimerSlot& entry = timer_slots_[fired.slot];
    if (!entry.armed || entry.generation != fired.generation) continue;  // cancelled
    Waker waker = std::move(entry.waker);
    entry.armed = false;
    ++entry.generation;
    free_timer_slots_.push_back(fired.slot);
    --live_timers_;
    waker.Wake();
  }
  // Skip cancelled entries so the cached deadline is a live timer's.
  while (!timer_heap_.empty()) {
    const TimerEntry& top = timer_heap_.front();
    const TimerSlot& entry = timer_slots_[top.slot];
    if (entry.armed && entry.generation == top.generation) break;
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), TimerEntryLater{});
    timer_heap_.pop_back();
  }
  next_timer_deadline_ = timer_heap_.empty() ? Instant::max() : timer_heap_.front().deadline;
}

void TestScheduler::AdvanceToNextTimer() {
  FireDueTimers();  // also drops cancelled entries from the top
  if (timer_heap_.empty()) return;
  now_ = std::max(now_, timer_heap_.front().deadline);
  FireDueTimers();
}

void TestScheduler::AdvanceClock(Duration duration) {
  if (duration < Duration::zero()) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        "AdvanceClock(", duration.count(),
        "ns): virtual time only moves forward; pass a non-negative duration")));
    return;
  }
  now_ += duration;
  FireDueTimers();
}

bool TestScheduler::PickNext(Runnable& next, bool& foreground) {
  const size_t background = background_.size();
  const size_t candidates = background + (foreground_.empty() ? 0 : 1);
  if (candidates == 0) {
    if (deprioritized_.empty()) return false;
    size_t index = 0;
    if (options_.randomize_order) index = rng_.Below(deprioritized_.size());
    std::swap(deprioritized_[index], deprioritized_.front());
    next = std::move(deprioritized_.front());
    deprioritized_.pop_front();
    foreground = false;
    return true;
  }
  size_t pick;
  if (options_.randomize_order) {
    pick = rng_.Below(candidates);
  } else if (foreground_.empty()) {
    pick = 0;
  } else if (background == 0 ||
             foreground_.front().header()->enqueue_seq < background_.front().header()->enqueue_seq) {
    pick = background;
  } else {
    pick = 0;
  }
  if (pick == background) {
    next = std::move(foreground_.front());
    foreground_.pop_front();
    foreground = true;
    return true;
  }
  // In randomized mode the queue's order carries no meaning, so the picked
  // entry is swapped with the back and popped in O(1). FIFO mode takes the
  // front (pick == 0).
  if (pick == 0) {
    next = std::move(background_.front());
    background_.pop_front();
  } else {
    std::swap(background_[pick], background_.back());
    next = std::move(background_.back());
    background_.pop_back();
  }
  foreground = false;
  return true;
}

bool TestScheduler::Step() {
  if (next_timer_deadline_ <= now_) FireDueTimers();
  Runnable next;
  bool foreground = false;
  if (!PickNext(next, foreground)) return false;
  ++steps_;
  const internal::TaskHeader& task = *next.header();
  trace_state_ = MixWord(trace_state_, (task.metadata.id.value << 1) | (foreground ? 1 : 0));
  trace_state_ = MixWord(trace_state_, static_cast<uint64_t>(Elapsed().count()));
  if (options_.record_trace) {
    trace_.push_back(TraceEntry{steps_, Elapsed(), task.metadata.id, task.metadata.label,
                                task.metadata.spawn_location, foreground});
  }
  in_foreground_ = foreground;
  std::move(next).Run();
  in_foreground_ = false;
  return true;
}

uint64_t TestScheduler::TraceHash() const { return SplitMix64(trace_state_ ^ steps_); }

bool TestScheduler::BudgetExhausted() const {
  return options_.max_steps != 0 && steps_ >= options_.max_steps;
}

absl::Status TestScheduler::BudgetFailure(std::string_view operation) const {
  return absl::ResourceExhaustedError(absl::StrCat(
      std::string(operation), " exceeded the step budget of ", options_.max_steps,
      " steps: a livelock, or a test that needs a larger TestSchedulerOptions::max_steps.\n",
      RunSummary(), "\n", DescribeLiveTasks()));
}

absl::Status TestScheduler::CheckCanRun(std::string_view operation) const {
  if (internal::current_task != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        std::string(operation), " was called from inside a task (",
        internal::current_task->metadata.DebugString(),
        "); a task must co_await other tasks instead of driving the scheduler"));
  }
  return absl::OkStatus();
}

absl::Status TestScheduler::RunUntilParked() {
  if (absl::Status status = CheckCanRun("RunUntilParked()"); !status.ok()) return status;
  for (;;) {
    if (!failure_.ok()) return failure_;
    if (BudgetExhausted()) return BudgetFailure("RunUntilParked()");
    if (!Step()) return absl::OkStatus();
  }
}

absl::Status TestScheduler::Run() {
  if (absl::Status status = CheckCanRun("Run()"); !status.ok()) return status;
  for (;;) {
    if (!failure_.ok()) return failure_;
    if (BudgetExhausted()) return BudgetFailure("Run()");
    if (Step()) continue;
    if (live_timers_ == 0) return absl::OkStatus();
    AdvanceToNextTimer();
  }
}

absl::Status TestScheduler::BlockOnTask(internal::TaskHeader& task) {
  if (absl::Status status = CheckCanRun("BlockOn()"); !status.ok()) return status;
  for (;;) {
    if (task.finished()) return absl::OkStatus();
    if (!failure_.ok()) return failure_;
    if (BudgetExhausted()) {
      return BudgetFailure(absl::StrCat("BlockOn(", task.metadata.DebugString(), ")"));
    }
    if (Step()) continue;
    if (live_timers_ > 0) {
      AdvanceToNextTimer();
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "deadlock: BlockOn(", task.metadata.DebugString(),
        ") can never finish: no task is runnable and no timer is pending.\n", RunSummary(),
        "\n", DescribeLiveTasks()));
  }
}

void TestScheduler::OnTaskSpawned(internal::TaskHeader& task) {
  task.metadata.id = TaskId{next_task_id_++};
  live_tasks_.emplace(task.metadata.id.value, &task);
}

void TestScheduler::OnTaskFinished(internal::TaskHeader& task) {
  live_tasks_.erase(task.metadata.id.value);
}

void TestScheduler::OnUnhandledTaskException(const TaskMetadata& task,
                                             const std::exception_ptr& exception) {
  RecordFailure(absl::AbortedError(absl::StrCat("exception escaped detached ",
                                                task.DebugString(), ": ",
                                                DescribeException(exception))));
}

void TestScheduler::RecordFailure(absl::Status status) {
  ++failure_count_;
  if (failure_.ok()) {
    failure_ = absl::Status(status.code(), absl::StrCat(status.message(), "\n", RunSummary()));
  } else if (failure_count_ == 2) {
    failure_ = absl::Status(failure_.code(),
                            absl::StrCat(failure_.message(), "\n(and later failures of this run)"));
  }
}

std::vector<TaskId> TestScheduler::LiveTasks() const {
  std::vector<TaskId> ids;
  ids.reserve(live_tasks_.size());
  for (const auto& [id, task] : live_tasks_) ids.push_back(TaskId{id});
  return ids;
}

std::string TestScheduler::DescribeHeader(const internal::TaskHeader& task) const {
  std::string out = task.metadata.DebugString();
  const uint64_t state = task.state();
  if ((state & internal::TaskHeader::kRunning) != 0) {
    absl::StrAppend(&out, ": running");
  } else if ((state & internal::TaskHeader::kScheduled) != 0) {
    absl::StrAppend(&out, ": queued to run");
  } else if (task.wait_site.awaited_task.value != 0) {
    absl::StrAppend(&out, ": waiting for task ", task.wait_site.awaited_task.value, " to finish");
    auto it = live_tasks_.find(task.wait_site.awaited_task.value);
    if (it == live_tasks_.end()) absl::StrAppend(&out, " (already finished)");
  } else if (!task.wait_site.what.empty()) {
    absl::StrAppend(&out, ": waiting on ", std::string(task.wait_site.what), " at ",
                    FormatLocation(task.wait_site.where));
  } else {
    absl::StrAppend(&out,
                    ": suspended at an awaitable that does not record its wait site "
                    "(see DescribeWait in scheduler/waker.h)");
  }
  return out;
}

std::string TestScheduler::DescribeTask(TaskId id) const {
  auto it = live_tasks_.find(id.value);
  if (it == live_tasks_.end()) return absl::StrCat("task ", id.value, ": not running");
  return DescribeHeader(*it->second);
}

std::string TestScheduler::DescribeLiveTasks() const {
  std::string out = absl::StrCat("live tasks (", live_tasks_.size(), "):");
  for (const auto& [id, task] : live_tasks_) absl::StrAppend(&out, "\n  ", DescribeHeader(*task));
  return out;
}

std::string TestScheduler::RunSummary() const {
  return absl::StrFormat("seed %d, step %d, virtual time %s, trace hash 0x%016x", options_.seed,
                         steps_, FormatDuration(Elapsed()), TraceHash());
}

}  // namespace simsched
