// Internal (tests only): random programs for the task-core torture test.
//
// `GenerateTorturePlan(seed)` draws, from simsched's own `Rng`, a forest of
// coroutine frames and what each one does: sleeps and yields, Channel,
// Mutex, Semaphore and Event waits, nested `co_await` of child `Co`s,
// spawned tasks (awaited, owned by the frame and later awaited, cancelled or
// dropped, detached, or spawned as a lambda whose captures the child
// borrows; each in the background, labeled, deprioritized or on a lane),
// `WhenAll`/`WhenAny`/`WithTimeout` over child frames, and some
// frames that end by throwing. It also draws a driver script: steps, clock
// advances, root tasks cancelled, dropped or detached from outside, and
// whether the scheduler is destroyed mid-run. The same seed gives the same
// plan everywhere; `DescribeTorturePlan` prints it for a failure report.
//
// `torture_program.h` runs a plan on any Scheduler.
//
// Example:
//
//   TorturePlan plan = GenerateTorturePlan(17);
//   std::cout << DescribeTorturePlan(plan);   // replayable by its seed

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PLAN_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

namespace simsched::internal {

enum class TortureOpKind : uint8_t {
  // Leaf waits and actions.
  kSleep,             // Sleep(ticks)
  kSleepForever,      // Sleep(Duration::max()): only a cancellation ends it
  kYield,             // Yield()
  kSend,              // Channel<int>(capacity 1)::Send
  kRecv,              // Channel<int>::Recv
  kLockMutex,         // hold the Mutex across Sleep(ticks)
  kAcquireSemaphore,  // hold a permit (of 2) across Sleep(ticks)
  kWaitEvent,         // Event::Wait
  kSetEvent,          // Event::Set
  kNotifyOne,         // Event::NotifyOne
  kCancelLastOwned,   // Task::Cancel on the frame's newest owned task, if any
  // Child frames.
  kAwaitChild,     // co_await Child(parent's probe)           1 child
  kAwaitSpawned,   // co_await Spawn(Child(...))                1 child
  kSpawnOwned,     // Task kept in the frame, see `end`         1 child
  kSpawnLambda,    // Spawn([capture]() -> Co { Child(&capture) }), see `end`
  kSpawnDetached,  // Spawn(...).Detach(); borrows nothing      1 child
  kWhenAll,        // co_await WhenAll(children...)             1-3 children
  kWhenAny,        // co_await WhenAny(children...)             1-3 children
  kWithTimeout,    // co_await WithTimeout(child, ticks)        1 child
};

// Where a spawned task runs (every spawning op draws one).
enum class TorturePlacement : uint8_t {
  kBackground,   // Spawn
  kLabeled,      // SpawnLabeled("torture")
  kLowPriority,  // SpawnLabeled("torture-low"), a label the run deprioritizes
  kForeground,   // on a main thread: lane `lane % lanes` of the TestScheduler
};

// What a frame does with a task it owns once its other ops are done.
enum class TortureOwnedEnd : uint8_t {
  kAwait,   // co_await it
  kCancel,  // Task::Cancel()
  kDrop,    // leave it to the frame's destruction (drops the handle)
};

struct TortureFrame;

struct TortureOp {
  TortureOpKind kind = TortureOpKind::kYield;
  uint32_t ticks = 0;
  TortureOwnedEnd end = TortureOwnedEnd::kAwait;
  uint32_t capture_id = 0;  // kSpawnLambda: the probe held in the captures
  TorturePlacement placement = TorturePlacement::kBackground;  // spawning ops
  uint32_t lane = 0;                                           // kForeground
  std::vector<TortureFrame> children;
};

struct TortureFrame {
  uint32_t id = 0;
  bool throws = false;  // ends with TortureError (only where a parent catches)
  std::vector<TortureOp> ops;
};

enum class TortureDriverKind : uint8_t {
  kSteps,         // TestScheduler: up to `amount` steps; pool: a short real pause
  kAdvanceClock,  // TestScheduler: AdvanceClock(amount ticks); pool: a short real pause
  kCancelRoot,    // Task::Cancel on root `amount`
  kDropRoot,      // destroy root `amount`'s handle
  kDetachRoot,    // Detach root `amount`
  kSetEvent,      // Event::Set from outside the tasks (pool: another thread)
  kNotifyOne,     // Event::NotifyOne from outside the tasks
};

struct TortureDriverAction {
  TortureDriverKind kind = TortureDriverKind::kSteps;
  uint32_t amount = 0;
};

// Whether the action names a root task (in `amount`).
inline bool IsRootAction(TortureDriverKind kind) {
  return kind == TortureDriverKind::kCancelRoot || kind == TortureDriverKind::kDropRoot ||
         kind == TortureDriverKind::kDetachRoot;
}

// Whether the op spawns a task of its own (and so has a placement).
inline bool IsSpawningOp(TortureOpKind kind) {
  return kind == TortureOpKind::kAwaitSpawned || kind == TortureOpKind::kSpawnOwned ||
         kind == TortureOpKind::kSpawnLambda || kind == TortureOpKind::kSpawnDetached;
}

struct TorturePlan {
  uint64_t seed = 0;
  std::vector<TortureFrame> roots;
  std::vector<TortureDriverAction> driver;
  // After the driver script: destroy the scheduler at once (true) or first
  // run until no work and no timers remain (false).
  bool destroy_mid_run = false;
  // Every probe id of the plan is in [1, id_count).
  uint32_t id_count = 1;
  // Simulated main threads added besides lane 0 (TestScheduler; the pool has
  // one main thread and runs every foreground task there).
  uint32_t extra_lanes = 0;
  // Whether "torture-low" is deprioritized (TestScheduler only).
  bool deprioritize_low = false;
};

struct TorturePlanOptions {
  uint32_t max_frames = 40;
  uint32_t max_depth = 5;
  uint32_t max_roots = 3;
  uint32_t max_ticks = 20;
};

TorturePlan GenerateTorturePlan(uint64_t seed, const TorturePlanOptions& options = {});

// A multi-line, indented description of the plan: each frame with its ops
// and children, then the driver script.
std::string DescribeTorturePlan(const TorturePlan& plan);

const char* TortureOpName(TortureOpKind kind);

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PLAN_H_
