#include "scheduler/internal/testing/torture_plan.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/random.h"

namespace simsched::internal {
namespace {

class Generator {
 public:
  Generator(uint64_t seed, const TorturePlanOptions& options)
      : rng_(seed), options_(options) {}

  TorturePlan Generate(uint64_t seed) {
    TorturePlan plan;
    plan.seed = seed;
    const uint32_t roots = 1 + static_cast<uint32_t>(rng_.Below(options_.max_roots));
    for (uint32_t i = 0; i < roots; ++i) {
      plan.roots.push_back(Frame(/*depth=*/0, /*may_throw=*/false));
    }
    const uint32_t actions = static_cast<uint32_t>(rng_.Below(7));
    for (uint32_t i = 0; i < actions; ++i) plan.driver.push_back(DriverAction(roots));
    plan.destroy_mid_run = rng_.Chance(1, 3);
    plan.extra_lanes = static_cast<uint32_t>(rng_.Below(3));
    plan.deprioritize_low = rng_.Chance(1, 2);
    plan.id_count = next_id_;
    return plan;
  }

 private:
  uint32_t Ticks() { return 1 + static_cast<uint32_t>(rng_.Below(options_.max_ticks)); }

  TortureFrame Frame(uint32_t depth, bool may_throw) {
    TortureFrame frame;
    frame.id = next_id_++;
    ++frames_;
    const uint32_t ops = 1 + static_cast<uint32_t>(rng_.Below(4));
    for (uint32_t i = 0; i < ops; ++i) frame.ops.push_back(Op(depth));
    frame.throws = may_throw && rng_.Chance(1, 6);
    return frame;
  }

  TortureOp Op(uint32_t depth) {
    const bool may_nest = depth < options_.max_depth && frames_ < options_.max_frames;
    // Leaves and nesting ops about evenly, so trees are neither flat nor
    // runaway-deep (the frame budget bounds them anyway).
    static constexpr TortureOpKind kLeaves[] = {
        TortureOpKind::kSleep,      TortureOpKind::kYield,          TortureOpKind::kSend,
        TortureOpKind::kRecv,       TortureOpKind::kLockMutex,      TortureOpKind::kAcquireSemaphore,
        TortureOpKind::kWaitEvent,  TortureOpKind::kSetEvent,       TortureOpKind::kNotifyOne,
        TortureOpKind::kCancelLastOwned, TortureOpKind::kSleep,     TortureOpKind::kYield,
        TortureOpKind::kSleepForever,
    };
    static constexpr TortureOpKind kNests[] = {
        TortureOpKind::kAwaitChild,  TortureOpKind::kAwaitChild,   TortureOpKind::kAwaitSpawned,
        TortureOpKind::kSpawnOwned,  TortureOpKind::kSpawnOwned,   TortureOpKind::kSpawnLambda,
        TortureOpKind::kSpawnDetached, TortureOpKind::kWhenAll,    TortureOpKind::kWhenAny,
        TortureOpKind::kWithTimeout,
    };
    TortureOp op;
    if (may_nest && rng_.Chance(1, 2)) {
      op.kind = kNests[rng_.Below(std::size(kNests))];
    } else {
      op.kind = kLeaves[rng_.Below(std::size(kLeaves))];
    }
    if (IsSpawningOp(op.kind)) {
      // Mostly plain spawns, so that most trees still run everywhere at once.
      static constexpr TorturePlacement kPlacements[] = {
          TorturePlacement::kBackground, TorturePlacement::kBackground,
          TorturePlacement::kBackground, TorturePlacement::kLabeled,
          TorturePlacement::kLowPriority, TorturePlacement::kForeground,
      };
      op.placement = kPlacements[rng_.Below(std::size(kPlacements))];
      if (op.placement == TorturePlacement::kForeground) {
        op.lane = static_cast<uint32_t>(rng_.Below(3));
      }
    }
    switch (op.kind) {
      case TortureOpKind::kSleep:
      case TortureOpKind::kLockMutex:
      case TortureOpKind::kAcquireSemaphore:
        op.ticks = Ticks();
        break;
      case TortureOpKind::kAwaitChild:
      case TortureOpKind::kAwaitSpawned:
        op.children.push_back(Frame(depth + 1, /*may_throw=*/true));
        break;
      case TortureOpKind::kSpawnOwned:
      case TortureOpKind::kSpawnLambda:
        op.end = static_cast<TortureOwnedEnd>(rng_.Below(3));
        if (op.kind == TortureOpKind::kSpawnLambda) op.capture_id = next_id_++;
        // Only an awaited task's exception is observed; the others must not throw.
        op.children.push_back(Frame(depth + 1, op.end == TortureOwnedEnd::kAwait));
        break;
      case TortureOpKind::kSpawnDetached:
        op.children.push_back(Frame(depth + 1, /*may_throw=*/false));
        break;
      case TortureOpKind::kWhenAll:
      case TortureOpKind::kWhenAny: {
        const uint32_t n = 1 + static_cast<uint32_t>(rng_.Below(3));
        for (uint32_t i = 0; i < n; ++i) op.children.push_back(Frame(depth + 1, true));
        break;
      }
      case TortureOpKind::kWithTimeout:
        op.ticks = Ticks();
        op.children.push_back(Frame(depth + 1, /*may_throw=*/true));
        break;
      default:
        break;
    }
    return op;
  }

  TortureDriverAction DriverAction(uint32_t roots) {
    TortureDriverAction action;
    action.kind = static_cast<TortureDriverKind>(rng_.Below(7));
    switch (action.kind) {
      case TortureDriverKind::kSteps:
        action.amount = 1 + static_cast<uint32_t>(rng_.Below(40));
        break;
      case TortureDriverKind::kAdvanceClock:
        action.amount = Ticks();
        break;
      case TortureDriverKind::kCancelRoot:
      case TortureDriverKind::kDropRoot:
      case TortureDriverKind::kDetachRoot:
        action.amount = static_cast<uint32_t>(rng_.Below(roots));
        break;
      case TortureDriverKind::kSetEvent:
      case TortureDriverKind::kNotifyOne:
        break;
    }
    return action;
  }

  Rng rng_;
  TorturePlanOptions options_;
  uint32_t next_id_ = 1;
  uint32_t frames_ = 0;
};

const char* PlacementName(TorturePlacement placement) {
  switch (placement) {
    case TorturePlacement::kBackground:
      return "";
    case TorturePlacement::kLabeled:
      return " [label torture]";
    case TorturePlacement::kLowPriority:
      return " [label torture-low]";
    case TorturePlacement::kForeground:
      return " [foreground, lane";
  }
  return "?";
}

const char* OwnedEndName(TortureOwnedEnd end) {
  switch (end) {
    case TortureOwnedEnd::kAwait:
      return "then await";
    case TortureOwnedEnd::kCancel:
      return "then Cancel()";
    case TortureOwnedEnd::kDrop:
      return "then drop with the frame";
  }
  return "?";
}

const char* DriverName(TortureDriverKind kind) {
  switch (kind) {
    case TortureDriverKind::kSteps:
      return "steps";
    case TortureDriverKind::kAdvanceClock:
      return "advance clock (ticks)";
    case TortureDriverKind::kCancelRoot:
      return "Cancel() root";
    case TortureDriverKind::kDropRoot:
      return "drop the handle of root";
    case TortureDriverKind::kDetachRoot:
      return "Detach() root";
    case TortureDriverKind::kSetEvent:
      return "Event::Set";
    case TortureDriverKind::kNotifyOne:
      return "Event::NotifyOne";
  }
  return "?";
}

void DescribeFrame(const TortureFrame& frame, int indent, std::string& out) {
  const std::string pad(indent, ' ');
  absl::StrAppend(&out, pad, "frame ", frame.id, frame.throws ? " (ends by throwing)" : "",
                  "\n");
  for (const TortureOp& op : frame.ops) {
    absl::StrAppend(&out, pad, "  ", TortureOpName(op.kind));
    if (op.ticks != 0) absl::StrAppend(&out, " ", op.ticks, "t");
    absl::StrAppend(&out, PlacementName(op.placement));
    if (op.placement == TorturePlacement::kForeground) absl::StrAppend(&out, " pick ", op.lane, "]");
    if (op.kind == TortureOpKind::kSpawnOwned || op.kind == TortureOpKind::kSpawnLambda) {
      absl::StrAppend(&out, ", ", OwnedEndName(op.end));
    }
    if (op.capture_id != 0) absl::StrAppend(&out, ", captures probe ", op.capture_id);
    absl::StrAppend(&out, "\n");
    for (const TortureFrame& child : op.children) DescribeFrame(child, indent + 4, out);
  }
}

}  // namespace

TorturePlan GenerateTorturePlan(uint64_t seed, const TorturePlanOptions& options) {
  return Generator(seed, options).Generate(seed);
}

const char* TortureOpName(TortureOpKind kind) {
  switch (kind) {
    case TortureOpKind::kSleep: return "Sleep";
    case TortureOpKind::kSleepForever: return "Sleep(Duration::max())";
    case TortureOpKind::kYield: return "Yield";
    case TortureOpKind::kSend: return "Channel::Send";
    case TortureOpKind::kRecv: return "Channel::Recv";
    case TortureOpKind::kLockMutex: return "Mutex::Lock, hold for";
    case TortureOpKind::kAcquireSemaphore: return "Semaphore::Acquire, hold for";
    case TortureOpKind::kWaitEvent: return "Event::Wait";
    case TortureOpKind::kSetEvent: return "Event::Set";
    case TortureOpKind::kNotifyOne: return "Event::NotifyOne";
    case TortureOpKind::kCancelLastOwned: return "Cancel() the newest owned task";
    case TortureOpKind::kAwaitChild: return "co_await child Co";
    case TortureOpKind::kAwaitSpawned: return "co_await Spawn(child)";
    case TortureOpKind::kSpawnOwned: return "Spawn(child), owned";
    case TortureOpKind::kSpawnLambda: return "Spawn(lambda), owned";
    case TortureOpKind::kSpawnDetached: return "Spawn(child).Detach()";
    case TortureOpKind::kWhenAll: return "co_await WhenAll";
    case TortureOpKind::kWhenAny: return "co_await WhenAny";
    case TortureOpKind::kWithTimeout: return "co_await WithTimeout";
  }
  return "?";
}

std::string DescribeTorturePlan(const TorturePlan& plan) {
  std::string out = absl::StrCat("torture plan of seed ", plan.seed, ": ", plan.roots.size(),
                                 " root task(s), ", plan.id_count - 1, " probe ids\n");
  for (size_t i = 0; i < plan.roots.size(); ++i) {
    absl::StrAppend(&out, "root ", i, ":\n");
    DescribeFrame(plan.roots[i], 2, out);
  }
  absl::StrAppend(&out, "driver:");
  for (const TortureDriverAction& action : plan.driver) {
    absl::StrAppend(&out, " [", DriverName(action.kind));
    if (action.kind < TortureDriverKind::kSetEvent) absl::StrAppend(&out, " ", action.amount);
    absl::StrAppend(&out, "]");
  }
  absl::StrAppend(&out, plan.destroy_mid_run ? " then destroy the scheduler mid-run\n"
                                             : " then run to the end, then destroy the scheduler\n");
  absl::StrAppend(&out, "lanes: main + ", plan.extra_lanes,
                  plan.deprioritize_low ? "; torture-low deprioritized\n" : "\n");
  return out;
}

}  // namespace simsched::internal
