// Seeded torture test of the harness's verdict: a sweep passes only if nothing
// is wrong, and every seed that went wrong fails with its seed and a replay
// line that reproduces it.
//
// Each generator seed draws a small program (workers that yield, sleep, take
// a mutex, set and wait on an event; a producer and a consumer on a channel)
// and plants at most one fault in it: a task waiting on an event nobody sets,
// a forgotten Close(), an ABBA lock order, a lost update checked with
// EXPECT_EQ, a detached task that throws, a livelock, or a sim.Fail on a race.
// Some faults fire on every schedule, some only on some. The program runs as
// the body of a real sweep (RunSimTest, SIMSCHED_COLLECT_ALL=1, a random
// strategy and start seed), and its own tasks record what happened in each
// seed, independently of the scheduler's bookkeeping, when the seed's last
// frame lets go of the seed's state. Then:
//   * the seeds the sweep failed are exactly those the program says went
//     wrong, and each failure names the right kind with the seed and its
//     replay line;
//   * every seed's state was released (a leaked frame would keep it);
//   * the first failing seed, replayed alone with SIMSCHED_SEED, fails the
//     same way with the same trace hash;
//   * every 16th program also runs with SIMSCHED_CHECK_DETERMINISM=1, which
//     must find nothing and fail the same seeds.
// Seeds: VERDICT_TORTURE_SEED / _SEEDS / _START_SEED (testing/model_sweep.h).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "sim/channel.h"
#include "sim/mutex.h"
#include "sim/random.h"
#include "testing/internal/capture_failures.h"
#include "testing/model_sweep.h"
#include "testing/sim_test.h"

namespace simsched::testing {
namespace {

using test_internal::CaptureFailures;
using test_internal::ScopedEnv;

enum class Fault {
  kNone,
  kEventNeverSet,   // always: one task stuck on Event 'never'
  kForgottenClose,  // always: the consumer stuck on the channel
  kLockOrder,       // some schedules: two tasks deadlock on mutexes a and b
  kLostUpdate,      // some schedules: an EXPECT_EQ in a task fails
  kThrow,           // always: a detached task throws
  kLivelock,        // always: a task yields forever
  kFailOnRace,      // some schedules: sim.Fail when racer B arrives first
  kStuckJoin,       // always: a task joins one stuck on Event 'never'
  kBodyExpect,      // always: an EXPECT in the body itself fails
  kIdleByDesign,    // never: a server parked forever, allowed by AllowIdle
};
constexpr int kFaultKinds = 11;

const char* FaultName(Fault fault) {
  static constexpr const char* kNames[kFaultKinds] = {
      "none",     "event never set", "forgotten close", "lock order",  "lost update",   "throw",
      "livelock", "fail on race",    "stuck join",      "body expect", "idle by design"};
  return kNames[static_cast<int>(fault)];
}

constexpr uint64_t kMaxSteps = 20'000;

// What one seed's program did, as its own tasks saw it.
struct Truth {
  int clean_unfinished = 0;  // workers, producer and (without the fault) consumer
  int lockers_finished = 0;  // kLockOrder: 0 (deadlock) or 2
  bool lost_update = false;
  bool failed_on_race = false;
  bool operator==(const Truth&) const = default;
};

// Every seed's truth, written when its state is released.
struct Truths {
  std::map<uint64_t, Truth> by_seed;
  std::vector<std::string> problems;
};

struct Op {
  enum Kind { kYield, kSleep, kLocked, kSetGo, kWaitGo } kind;
  int arg = 0;
};

struct Program {
  Fault fault = Fault::kNone;
  std::vector<std::vector<Op>> workers;
  int messages = 0;  // the producer's sends; 0: no producer and consumer
  int channel_capacity = 1;
  int fault_delay = 0;  // yields before the planted task acts
  int increments = 1;   // kLostUpdate, per incrementer
  int racer_delay[2] = {0, 0};
  std::string strategy;
  uint64_t start_seed = 0;
  uint64_t iterations = 0;
};

// One seed's shared state; its destructor runs when the last frame holding
// it is destroyed, and records the seed's truth.
struct SeedState {
  SeedState(Truths& truths, uint64_t seed, TestScheduler& scheduler, size_t capacity)
      : truths(truths), seed(seed), scheduler(scheduler), pipe(capacity, "pipe") {}
  ~SeedState() {
    auto [it, inserted] = truths.by_seed.emplace(seed, truth);
    // The harness re-runs a failing seed for its trace: it must act the same.
    if (!inserted && !(it->second == truth)) {
      truths.problems.push_back(absl::StrCat("seed ", seed, " ran twice differently"));
    }
  }

  Truths& truths;
  const uint64_t seed;
  TestScheduler& scheduler;
  Truth truth;
  Mutex m{"m"}, a{"a"}, b{"b"};
  Event go{"go"}, never{"never"};
  Channel<int> pipe;
  Channel<int> inbox{kUnbounded, "inbox"};
  int counter = 0;
  int incrementers_done = 0;
  int race_first = -1;
};
using State = std::shared_ptr<SeedState>;

Co<void> Yields(int n) {
  for (int i = 0; i < n; ++i) co_await Yield();
}

Co<void> CleanWorker(State s, std::vector<Op> ops) {
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::kYield:
        co_await Yield();
        break;
      case Op::kSleep:
        co_await Sleep(std::chrono::milliseconds(op.arg));
        break;
      case Op::kLocked: {
        MutexGuard guard = co_await s->m.Lock();
        co_await Yields(op.arg);
        break;
      }
      case Op::kSetGo:
        s->go.Set();
        break;
      case Op::kWaitGo:
        co_await s->go.Wait();
        break;
    }
  }
  --s->truth.clean_unfinished;
}

Co<void> Producer(State s, int messages, bool close) {
  for (int i = 0; i < messages; ++i) {
    absl::Status sent = co_await s->pipe.Send(i);
    EXPECT_TRUE(sent.ok()) << sent;
  }
  if (close) s->pipe.Close();
  --s->truth.clean_unfinished;
}

Co<void> Consumer(State s, int messages) {
  int received = 0;
  while (std::optional<int> value = co_await s->pipe.Recv()) {
    EXPECT_EQ(*value, received) << "the channel reordered";
    ++received;
  }
  EXPECT_EQ(received, messages);
  --s->truth.clean_unfinished;
}

Co<void> WaitsForNever(State s, int delay) {
  co_await Yields(delay);
  co_await s->never.Wait();
}

Co<void> LocksTwo(State s, bool a_first, int delay) {
  Mutex& first = a_first ? s->a : s->b;
  Mutex& second = a_first ? s->b : s->a;
  MutexGuard one = co_await first.Lock();
  co_await Yields(delay);
  MutexGuard two = co_await second.Lock();
  ++s->truth.lockers_finished;
}

Co<void> Incrementer(State s, int increments) {
  for (int i = 0; i < increments; ++i) {
    const int seen = s->counter;
    co_await Yield();
    s->counter = seen + 1;
  }
  if (++s->incrementers_done == 2) {
    s->truth.lost_update = s->counter != 2 * increments;
    EXPECT_EQ(s->counter, 2 * increments) << "planted lost update";
  }
}

Co<void> Thrower(State s, int delay) {
  co_await Yields(delay);
  throw std::runtime_error("planted throw");
}

Co<void> Spinner(State s) {
  while (!s->never.IsSet()) co_await Yield();
}

Co<void> Racer(State s, int id, int delay) {
  co_await Yields(delay);
  if (s->race_first < 0) {
    s->race_first = id;
  } else if (id == 0 && s->race_first == 1) {
    s->truth.failed_on_race = true;
    s->scheduler.Fail("planted: B arrived first");
  }
}

Co<void> JoinsAStuckTask(State s, int delay) {
  Task<void> stuck = Spawn(s->scheduler, WaitsForNever(s, delay));
  co_await stuck;
}

Co<void> ParkedServer(State s, int delay) {
  co_await Yields(delay);
  // Bound to a variable: g++ 12 miscompiles `while (co_await ...)` (docs/building.md).
  while (std::optional<int> message = co_await s->inbox.Recv()) {
  }
}

Program Generate(uint64_t seed) {
  Rng rng(seed);
  Program p;
  p.fault = static_cast<Fault>(rng.Below(kFaultKinds));
  const int workers = 1 + static_cast<int>(rng.Below(4));
  const int setter = static_cast<int>(rng.Below(workers));
  for (int w = 0; w < workers; ++w) {
    std::vector<Op> ops;
    const int n = static_cast<int>(rng.Below(7));
    for (int i = 0; i < n; ++i) {
      switch (rng.Below(w == setter ? 3 : 4)) {
        case 0:
          ops.push_back({Op::kYield});
          break;
        case 1:
          ops.push_back({Op::kSleep, static_cast<int>(rng.Below(4))});
          break;
        case 2:
          ops.push_back({Op::kLocked, static_cast<int>(rng.Below(3))});
          break;
        default:
          ops.push_back({Op::kWaitGo});
          break;  // never in the setter
      }
    }
    if (w == setter) ops.insert(ops.begin() + rng.Below(ops.size() + 1), Op{Op::kSetGo});
    p.workers.push_back(std::move(ops));
  }
  p.messages = p.fault == Fault::kForgottenClose ? 1 + static_cast<int>(rng.Below(4))
                                                 : static_cast<int>(rng.Below(5));
  p.channel_capacity = 1 + static_cast<int>(rng.Below(3));
  p.fault_delay = static_cast<int>(rng.Below(4));
  p.increments = 1 + static_cast<int>(rng.Below(3));
  p.racer_delay[0] = static_cast<int>(rng.Below(3));
  p.racer_delay[1] = static_cast<int>(rng.Below(3));
  static constexpr const char* kStrategies[] = {"random", "pct:3", "pos", "mix", "fifo"};
  p.strategy = kStrategies[rng.Below(5)];
  p.start_seed = rng.Below(uint64_t{1} << 40);
  p.iterations = 4 + rng.Below(7);
  return p;
}

void Body(const Program& p, Truths& truths, Sim& sim) {
  TestScheduler& scheduler = sim.scheduler();
  auto s = std::make_shared<SeedState>(truths, sim.seed(), scheduler,
                                       static_cast<size_t>(p.channel_capacity));
  for (const std::vector<Op>& ops : p.workers) {
    ++s->truth.clean_unfinished;
    Spawn(scheduler, CleanWorker(s, ops)).Detach();
  }
  if (p.messages > 0) {
    s->truth.clean_unfinished += p.fault == Fault::kForgottenClose ? 1 : 2;
    Spawn(scheduler, Producer(s, p.messages, p.fault != Fault::kForgottenClose)).Detach();
    Spawn(scheduler, Consumer(s, p.messages)).Detach();
  }
  switch (p.fault) {
    case Fault::kNone:
    case Fault::kForgottenClose:
      break;
    case Fault::kEventNeverSet:
      Spawn(scheduler, WaitsForNever(s, p.fault_delay)).Detach();
      break;
    case Fault::kLockOrder:
      Spawn(scheduler, LocksTwo(s, true, p.fault_delay)).Detach();
      Spawn(scheduler, LocksTwo(s, false, p.fault_delay)).Detach();
      break;
    case Fault::kLostUpdate:
      Spawn(scheduler, Incrementer(s, p.increments)).Detach();
      Spawn(scheduler, Incrementer(s, p.increments)).Detach();
      break;
    case Fault::kThrow:
      Spawn(scheduler, Thrower(s, p.fault_delay)).Detach();
      break;
    case Fault::kLivelock:
      Spawn(scheduler, Spinner(s)).Detach();
      break;
    case Fault::kFailOnRace:
      Spawn(scheduler, Racer(s, 0, p.racer_delay[0])).Detach();
      Spawn(scheduler, Racer(s, 1, p.racer_delay[1])).Detach();
      break;
    case Fault::kStuckJoin:
      Spawn(scheduler, JoinsAStuckTask(s, p.fault_delay)).Detach();
      break;
    case Fault::kBodyExpect:
      EXPECT_EQ(p.fault_delay, -1) << "planted body expectation";
      break;
    case Fault::kIdleByDesign: {
      Task<void> server = Spawn(scheduler, ParkedServer(s, p.fault_delay));
      scheduler.AllowIdle(server.id());
      server.Detach();
      break;
    }
  }
}

// Whether the seed went wrong, by its truth, and what its report must say.
bool ShouldFail(Fault fault, const Truth& t) {
  switch (fault) {
    case Fault::kNone:
    case Fault::kIdleByDesign:
      return false;
    case Fault::kLockOrder:
      return t.lockers_finished == 0;
    case Fault::kLostUpdate:
      return t.lost_update;
    case Fault::kFailOnRace:
      return t.failed_on_race;
    default:
      return true;
  }
}

std::vector<std::string> ExpectedText(Fault fault) {
  switch (fault) {
    case Fault::kEventNeverSet:
      return {"deadlock", "stuck tasks (1)", "waiting on Event 'never'"};
    case Fault::kForgottenClose:
      return {"deadlock", "stuck tasks (1)", "waiting on Channel<int> 'pipe'::Recv",
              "forgotten Close()"};
    case Fault::kLockOrder:
      return {"deadlock", "stuck tasks (2)", "wait-for cycle: task"};
    case Fault::kLostUpdate:
      return {"planted lost update"};
    case Fault::kThrow:
      return {"exception escaped detached task", "planted throw"};
    case Fault::kLivelock:
      return {"exceeded the step budget of 20000 steps: a livelock"};
    case Fault::kFailOnRace:
      return {"the test failed the run: planted: B arrived first"};
    case Fault::kStuckJoin:
      return {"deadlock", "stuck tasks (2)", "waiting on Event 'never'"};
    case Fault::kBodyExpect:
      return {"planted body expectation"};
    case Fault::kNone:
    case Fault::kIdleByDesign:
      return {};
  }
  return {};
}

struct SweepResult {
  std::vector<std::string> failures;
  Truths truths;
};

SweepResult RunSweep(const Program& p, const std::string& test_name, bool check_determinism,
                     std::optional<uint64_t> one_seed) {
  const std::string start = std::to_string(p.start_seed);
  const std::string seed = one_seed.has_value() ? std::to_string(*one_seed) : "";
  ScopedEnv env{{"SIMSCHED_SEED", seed.c_str()},
                {"SIMSCHED_START_SEED", start.c_str()},
                {"SIMSCHED_ITERATIONS", ""},
                {"SIMSCHED_COLLECT_ALL", "1"},
                {"SIMSCHED_CHECK_DETERMINISM", check_determinism ? "1" : "0"},
                {"SIMSCHED_STRATEGY", ""},
                {"SIMSCHED_TIME_BUDGET", ""},
                {"SIMSCHED_REGRESSION_SEEDS", ""},
                {"SIMSCHED_TRACE_FILE", ""},
                {"SIMSCHED_TOTAL_SHARDS", ""},
                {"SIMSCHED_SHARD_INDEX", ""}};
  SweepResult result;
  SimTestOptions options{.iterations = p.iterations,
                         .max_steps = kMaxSteps,
                         .print_summary = false,
                         .strategy = p.strategy};
  result.failures = CaptureFailures([&] {
    RunSimTest(
        test_name.c_str(), [&](Sim& sim) { Body(p, result.truths, sim); }, options, "", "",
        SourceLocation::current());
  });
  return result;
}

std::optional<uint64_t> FailedSeed(const std::string& message) {
  static const std::regex kSeed("failed on seed ([0-9]+) ");
  std::smatch m;
  if (!std::regex_search(message, m, kSeed)) return std::nullopt;
  return std::stoull(m[1]);
}

std::string TraceHash(const std::string& message) {
  static const std::regex kHash("with trace hash (0x[0-9a-f]+)");
  std::smatch m;
  return std::regex_search(message, m, kHash) ? m[1].str() : "";
}

struct Coverage {
  int programs[kFaultKinds] = {};
  int failed_seeds[kFaultKinds] = {};
  int passed_seeds[kFaultKinds] = {};
};

// Runs one generated program's sweep and returns what was wrong ("" if nothing).
std::string RunProgram(uint64_t gen_seed, Coverage* coverage) {
  const Program p = Generate(gen_seed);
  const std::string name = absl::StrCat("VerdictTorture.Program", gen_seed);
  const std::string what = absl::StrCat("(", FaultName(p.fault), ", strategy ", p.strategy,
                                        ", seeds ", p.start_seed, "+", p.iterations, ") ");
  const bool check_determinism = gen_seed % 16 == 0;
  SweepResult sweep = RunSweep(p, name, check_determinism, std::nullopt);
  if (!sweep.truths.problems.empty()) {
    return what + absl::StrJoin(sweep.truths.problems, "; ");
  }
  // PCT's calibration runs the body on seeds 0-2 first; the sweep's own
  // seeds are the range. Each released its state, so no frame of it leaked.
  std::map<uint64_t, Truth> truths;
  for (const auto& [seed, truth] : sweep.truths.by_seed) {
    if (seed >= p.start_seed && seed - p.start_seed < p.iterations) truths.emplace(seed, truth);
  }
  if (truths.size() != p.iterations) {
    return absl::StrCat(what, truths.size(), " of ", p.iterations,
                        " seeds released their state (a leaked frame keeps it); failures: ",
                        absl::StrJoin(sweep.failures, "\n"));
  }
  std::set<uint64_t> should_fail;
  for (const auto& [seed, truth] : truths) {
    const bool stops_early =
        p.fault == Fault::kThrow || p.fault == Fault::kLivelock || p.fault == Fault::kFailOnRace;
    if (!stops_early && truth.clean_unfinished != 0) {
      return absl::StrCat(what, "seed ", seed, ": ", truth.clean_unfinished,
                          " well-formed task(s) never finished");
    }
    if (p.fault == Fault::kLockOrder && truth.lockers_finished == 1) {
      return absl::StrCat(what, "seed ", seed, ": one ABBA locker finished, the other not");
    }
    if (ShouldFail(p.fault, truth)) should_fail.insert(seed);
  }
  std::set<uint64_t> failed;
  for (const std::string& message : sweep.failures) {
    std::optional<uint64_t> seed = FailedSeed(message);
    if (!seed.has_value()) return what + "a failure without a seed: " + message;
    if (!failed.insert(*seed).second) {
      return absl::StrCat(what, "seed ", *seed, " reported twice");
    }
    if (!should_fail.contains(*seed)) {
      return absl::StrCat(what, "seed ", *seed, " failed, but nothing went wrong in it: ", message);
    }
    std::vector<std::string> expected = ExpectedText(p.fault);
    expected.push_back("replay this seed:");
    expected.push_back(absl::StrCat("SIMSCHED_SEED=", *seed, " "));
    for (const std::string& text : expected) {
      if (message.find(text) == std::string::npos) {
        return absl::StrCat(what, "seed ", *seed, "'s report lacks \"", text, "\": ", message);
      }
    }
    if (message.find("not deterministic") != std::string::npos) {
      return absl::StrCat(what, "seed ", *seed, ": ", message);
    }
  }
  for (uint64_t seed : should_fail) {
    if (!failed.contains(seed)) {
      return absl::StrCat(what, "seed ", seed, " went wrong, and the sweep passed it");
    }
  }
  for (const auto& [seed, truth] : truths) {
    int* counts = should_fail.contains(seed) ? coverage->failed_seeds : coverage->passed_seeds;
    ++counts[static_cast<int>(p.fault)];
  }
  ++coverage->programs[static_cast<int>(p.fault)];
  if (sweep.failures.empty()) return "";

  // The first failing seed, replayed alone, fails the same way.
  const std::string& first = sweep.failures.front();
  const uint64_t seed = *FailedSeed(first);
  SweepResult replay = RunSweep(p, name, false, seed);
  if (replay.failures.size() != 1) {
    return absl::StrCat(what, "replaying seed ", seed, " gave ", replay.failures.size(),
                        " failures");
  }
  const std::string& again = replay.failures.front();
  if (again.find(absl::StrCat("failed on seed ", seed, " (replaying SIMSCHED_SEED)")) ==
          std::string::npos ||
      TraceHash(again).empty() || TraceHash(again) != TraceHash(first)) {
    return absl::StrCat(what, "replaying seed ", seed, " differs:\n", first, "\nreplayed:\n",
                        again);
  }
  if (!(replay.truths.by_seed.at(seed) == sweep.truths.by_seed.at(seed))) {
    return absl::StrCat(what, "replaying seed ", seed, " ran differently");
  }
  return "";
}

TEST(VerdictTortureTest, EverySweepFailsExactlyTheSeedsThatWentWrong) {
  Coverage coverage;
  SweepModelSeeds("VERDICT_TORTURE", {.default_count = 500},
                  [&](uint64_t seed) { return RunProgram(seed, &coverage); });
}

// The generator reaches every fault, and each schedule-dependent fault both
// fires and does not, so the test above checks both halves of the verdict.
TEST(VerdictTortureTest, TheGeneratorReachesEveryVerdict) {
  Coverage coverage;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    ASSERT_EQ(RunProgram(seed, &coverage), "") << "seed " << seed;
  }
  for (int kind = 0; kind < kFaultKinds; ++kind) {
    const char* name = FaultName(static_cast<Fault>(kind));
    EXPECT_GE(coverage.programs[kind], 10) << name;
    if (!ShouldFail(static_cast<Fault>(kind),
                    Truth{.lockers_finished = 0, .lost_update = true, .failed_on_race = true})) {
      EXPECT_EQ(coverage.failed_seeds[kind], 0) << name;
    } else {
      EXPECT_GE(coverage.failed_seeds[kind], 10) << name;
    }
  }
  for (Fault kind : {Fault::kNone, Fault::kLockOrder, Fault::kLostUpdate, Fault::kFailOnRace,
                     Fault::kIdleByDesign}) {
    EXPECT_GE(coverage.passed_seeds[static_cast<int>(kind)], 10) << FaultName(kind);
  }
  for (int kind = 0; kind < kFaultKinds; ++kind) {
    std::printf("%s: %d programs, %d seeds failed, %d passed\n",
                FaultName(static_cast<Fault>(kind)), coverage.programs[kind],
                coverage.failed_seeds[kind], coverage.passed_seeds[kind]);
  }
}

}  // namespace
}  // namespace simsched::testing
