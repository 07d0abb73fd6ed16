#include "scheduler/internal/testing/torture_program.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/combinators.h"

namespace simsched::internal {
namespace {

// A task the frame owns, with what the plan says to do with it at the end.
struct OwnedTask {
  Task<void> task;
  TortureOwnedEnd end;
  uint32_t key;
};

// Gives back a Semaphore permit when the frame holding it ends (or is
// cancelled).
class SemaphorePermit {
 public:
  explicit SemaphorePermit(Semaphore& semaphore) : semaphore_(semaphore) {}
  SemaphorePermit(const SemaphorePermit&) = delete;
  SemaphorePermit& operator=(const SemaphorePermit&) = delete;
  ~SemaphorePermit() { semaphore_.Release(); }

 private:
  Semaphore& semaphore_;
};

// Spawns `co` where the op's placement says.
Task<void> SpawnPlaced(TortureContext& ctx, const TortureOp& op, Co<void> co) {
  switch (op.placement) {
    case TorturePlacement::kBackground:
      break;
    case TorturePlacement::kLabeled:
      return SpawnLabeled(ctx.scheduler, TaskLabel("torture"), std::move(co));
    case TorturePlacement::kLowPriority:
      return SpawnLabeled(ctx.scheduler, TaskLabel(kTortureLowPriorityLabel), std::move(co));
    case TorturePlacement::kForeground: {
      const uint32_t lane = ctx.lanes.empty() ? 0 : ctx.lanes[op.lane % ctx.lanes.size()];
      return SpawnTask(ctx.scheduler, std::move(co), ScheduleKind::kForeground, std::nullopt,
                       lane, SourceLocation::current());
    }
  }
  return Spawn(ctx.scheduler, std::move(co));
}

void CancelOwned(TortureContext& ctx, OwnedTask& owned) {
  if (!owned.task) return;
  owned.task.Cancel();
  NoteCancelled(ctx, owned.task.id(), owned.task.IsFinished(), owned.key);
}

}  // namespace

TortureError::TortureError(uint32_t frame)
    : std::runtime_error(absl::StrCat("torture frame ", frame, " threw as planned")) {}

TortureForeignWaker::TortureForeignWaker(Event& event) : event_(event) {
  thread_ = std::thread([this] {
    int served = 0;
    while (!stop_.load(std::memory_order_acquire)) {
      if (requests_.load(std::memory_order_acquire) == served) {
        std::this_thread::yield();
        continue;
      }
      ++served;
      event_.NotifyOne();
    }
  });
}

void TortureForeignWaker::Stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void PrepareTortureScheduler(TortureContext& ctx, const TorturePlan& plan) {
  ctx.lanes = {0};
  for (uint32_t i = 0; i < plan.extra_lanes; ++i) {
    std::optional<uint32_t> lane =
        ctx.scheduler.AddSimulatedLane(absl::StrCat("torture-lane-", i + 1));
    if (lane.has_value()) ctx.lanes.push_back(*lane);
  }
  if (plan.deprioritize_low) ctx.scheduler.Deprioritize(TaskLabel(kTortureLowPriorityLabel));
}

void NoteCancelled(TortureContext& ctx, TaskId id, bool finished, uint32_t task_key) {
  if (ctx.confined) {
    if (ctx.scheduler.IsTaskRunning(id)) {
      ctx.ledger.AddViolation(absl::StrCat("IsTaskRunning(task of root frame ", task_key,
                                           ") is still true after it was cancelled"));
    }
    ctx.ledger.MarkCancelled(task_key);
  } else if (finished) {
    // On the pool a task running elsewhere finishes its poll first; only a
    // finished task is certainly never resumed again.
    ctx.ledger.MarkCancelled(task_key);
  }
}

Co<void> RunTortureFrame(TortureContext& ctx, const TortureFrame& frame, TortureProbe* parent,
                         uint32_t task_key) {
  TortureProbe probe(ctx.ledger, frame.id, parent);
  TortureProbe* const lend = ctx.borrow_across_tasks ? &probe : nullptr;
  std::vector<OwnedTask> owned;  // declared after the probe: destroyed before it
  TortureWorld& world = ctx.world;
  for (const TortureOp& op : frame.ops) {
    const Duration ticks = ctx.tick * op.ticks;
    switch (op.kind) {
      case TortureOpKind::kSleep:
        co_await Sleep(ticks);
        break;
      case TortureOpKind::kSleepForever:
        co_await Sleep(Duration::max());
        ctx.ledger.AddViolation(absl::StrCat("frame ", frame.id,
                                             " came back from Sleep(Duration::max()): forever "
                                             "must mean forever (only cancellation ends it)"));
        break;
      case TortureOpKind::kYield:
        co_await Yield();
        break;
      case TortureOpKind::kSend: {
        absl::Status sent = co_await world.channel.Send(static_cast<int>(frame.id));
        (void)sent;  // the channel is never closed
        break;
      }
      case TortureOpKind::kRecv:
        (void)co_await world.channel.Recv();
        break;
      case TortureOpKind::kLockMutex: {
        MutexGuard guard = co_await world.mutex.Lock();
        ctx.ledger.OnResume(frame.id, task_key);
        co_await Sleep(ticks);
        break;
      }
      case TortureOpKind::kAcquireSemaphore: {
        co_await world.semaphore.Acquire();
        SemaphorePermit permit(world.semaphore);
        ctx.ledger.OnResume(frame.id, task_key);
        co_await Sleep(ticks);
        break;
      }
      case TortureOpKind::kWaitEvent:
        co_await world.event.Wait();
        break;
      case TortureOpKind::kSetEvent:
        world.event.Set();
        break;
      case TortureOpKind::kNotifyOne:
        world.event.NotifyOne();
        break;
      case TortureOpKind::kCancelLastOwned:
        if (!owned.empty()) CancelOwned(ctx, owned.back());
        break;
      case TortureOpKind::kAwaitChild:
        try {
          co_await RunTortureFrame(ctx, op.children[0], &probe, task_key);
        } catch (const TortureError&) {
        }
        break;
      case TortureOpKind::kAwaitSpawned: {
        const TortureFrame& child = op.children[0];
        Task<void> task = SpawnPlaced(ctx, op, RunTortureFrame(ctx, child, lend, child.id));
        try {
          co_await task;
        } catch (const TortureError&) {
        } catch (const TaskCancelledError&) {
        }
        break;
      }
      case TortureOpKind::kSpawnOwned: {
        const TortureFrame& child = op.children[0];
        owned.push_back(
            {SpawnPlaced(ctx, op, RunTortureFrame(ctx, child, lend, child.id)), op.end, child.id});
        break;
      }
      case TortureOpKind::kSpawnLambda: {
        // The child borrows the probe held in the lambda's captures, which
        // live in the task exactly as long as the lambda's coroutine.
        const TortureFrame& child = op.children[0];
        owned.push_back(
            {SpawnPlaced(ctx, op,
                         InvokeOwned([&ctx, &child,
                                      capture = TortureProbe(ctx.ledger, op.capture_id, lend)]() mutable
                                     -> Co<void> {
                           co_await RunTortureFrame(ctx, child, &capture, child.id);
                         })),
             op.end, child.id});
        break;
      }
      case TortureOpKind::kSpawnDetached: {
        const TortureFrame& child = op.children[0];
        SpawnPlaced(ctx, op, RunTortureFrame(ctx, child, nullptr, child.id)).Detach();
        break;
      }
      case TortureOpKind::kWhenAll:
      case TortureOpKind::kWhenAny: {
        std::vector<Co<void>> inputs;
        for (const TortureFrame& child : op.children) {
          inputs.push_back(RunTortureFrame(ctx, child, lend, child.id));
        }
        try {
          if (op.kind == TortureOpKind::kWhenAny) {
            (void)co_await WhenAny(std::move(inputs));
          } else if (inputs.size() == 2) {  // the parameter-pack form too
            (void)co_await WhenAll(std::move(inputs[0]), std::move(inputs[1]));
          } else {
            (void)co_await WhenAll(std::move(inputs));
          }
        } catch (const TortureError&) {
        }
        break;
      }
      case TortureOpKind::kWithTimeout: {
        const TortureFrame& child = op.children[0];
        try {
          absl::Status status =
              co_await WithTimeout(RunTortureFrame(ctx, child, lend, child.id), ticks);
          (void)status;  // either way is fine; the loser was cancelled
        } catch (const TortureError&) {
        }
        break;
      }
    }
    ctx.ledger.OnResume(frame.id, task_key);
  }
  if (frame.throws) throw TortureError(frame.id);  // owned tasks are dropped while unwinding
  for (OwnedTask& task : owned) {
    switch (task.end) {
      case TortureOwnedEnd::kAwait:
        try {
          co_await task.task;
        } catch (const TortureError&) {
        } catch (const TaskCancelledError&) {  // a kCancelLastOwned got it first
        }
        ctx.ledger.OnResume(frame.id, task_key);
        break;
      case TortureOwnedEnd::kCancel:
        CancelOwned(ctx, task);
        break;
      case TortureOwnedEnd::kDrop:
        break;
    }
  }
}

}  // namespace simsched::internal
