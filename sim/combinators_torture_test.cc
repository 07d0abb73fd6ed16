// The combinators under a seeded torture: thousands of generated trees of
// WhenAll, WhenAny and WithTimeout over leaves that sleep and then return or
// throw, some inputs passed as `Co`, some as spawned `Task`s, with the root
// cancelled from outside at a random time in some trees, under the
// seed-chosen strategy ("mix"). Each seed runs twice: once with every
// duration distinct, so virtual time alone decides each race and a model
// computes from the tree what must happen; once with durations of whole
// milliseconds, so completions and the cancel often share a time and the
// schedule orders them (the model then says which leaves must and which may
// finish, and when the run ends, not which input wins):
//
//   * the root's value, exception or cancellation, and the time it ends;
//   * exactly which leaves finish: a leaf finishes if and only if it ends
//     before every combinator above it has decided without it (a WhenAny
//     won by another input, a WhenAll failed by another input, a timeout)
//     and before the root is cancelled; a cancelled leaf never runs again;
//   * every coroutine frame of the tree is destroyed by the end, and no
//     task is left running;
//   * the same seed gives the same run.
//
// SIMSCHED_COMBINATORS_TORTURE_SEEDS (default 10,000) and
// SIMSCHED_COMBINATORS_TORTURE_START_SEED widen a run by hand; a failure
// prints its seed and SIMSCHED_COMBINATORS_TORTURE_SEED=N, which replays it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "sim/combinators.h"
#include "sim/random.h"
#include "testing/model_sweep.h"

namespace simsched {
namespace {

using std::chrono::microseconds;

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Node {
  enum Kind { kLeaf, kAll, kAny, kTimeout } kind = kLeaf;
  int id = 0;
  int64_t micros = 0;    // a leaf's sleep, or a timeout's limit
  int64_t value = 0;     // a leaf's result
  bool throws = false;   // a leaf throws instead of returning
  bool as_task = false;  // passed to its combinator as a spawned Task
  std::vector<Node> children;
};

struct Tree {
  Node root;
  int64_t cancel_at = kNever;  // the root is cancelled from outside then
  int nodes = 0;
  bool ties = false;  // see Micros
};

// Durations: all distinct, so no two events share a time and the model can
// say everything; or, with `ties`, whole milliseconds from 1 to 6 (except a
// throwing leaf's), so many events share a time, the schedule decides their
// order, and the model says only what holds whatever it is.
class Micros {
 public:
  Micros(Rng& rng, bool ties) : rng_(rng), ties_(ties) {}
  int64_t Draw() {
    if (ties_) return rng_.InRange(1, 6) * 1000;
    return Distinct(100000);
  }
  // A throwing leaf's time. Never shared, even with ties: which of two
  // equal-time inputs wins may decide whether a WhenAll fails there or runs
  // on, and so the time everything above it ends.
  int64_t DrawThrow() {
    if (!ties_) return Distinct(100000);
    return rng_.InRange(0, 5) * 1000 + Distinct(999);
  }

 private:
  // A time in [1, limit] no earlier Distinct call gave, and not a whole
  // millisecond in ties mode.
  int64_t Distinct(int64_t limit) {
    while (true) {
      const int64_t t = rng_.InRange(1, limit);
      if ((!ties_ || t % 1000 != 0) && used_.insert(t).second) return t;
    }
  }

  Rng& rng_;
  const bool ties_;
  std::set<int64_t> used_;
};

Node MakeNode(Rng& rng, Micros& micros, int depth, int& next_id) {
  Node node;
  node.id = next_id++;
  node.as_task = rng.Chance(1, 3);
  const uint64_t pick = depth >= 3 ? 0 : rng.Below(depth == 0 ? 3 : 5);
  if (pick == 0 || (pick >= 3 && depth >= 3)) {
    node.kind = Node::kLeaf;
    node.throws = rng.Chance(1, 6);
    node.micros = node.throws ? micros.DrawThrow() : micros.Draw();
    node.value = rng.InRange(1, 1000);
    return node;
  }
  if (pick == 2 && rng.Chance(1, 2)) {
    node.kind = Node::kTimeout;
    node.micros = micros.Draw();
    node.children.push_back(MakeNode(rng, micros, depth + 1, next_id));
    return node;
  }
  node.kind = pick == 1 ? Node::kAll : Node::kAny;
  const int children = static_cast<int>(rng.InRange(1, 4));
  for (int i = 0; i < children; ++i) {
    node.children.push_back(MakeNode(rng, micros, depth + 1, next_id));
  }
  return node;
}

Tree MakeTree(uint64_t seed, bool ties) {
  Rng rng(seed ^ 0xd6e8feb86659fd93ULL);
  Micros micros(rng, ties);
  Tree tree;
  tree.ties = ties;
  int next_id = 0;
  tree.root = MakeNode(rng, micros, 0, next_id);
  tree.nodes = next_id;
  if (rng.Chance(1, 3)) tree.cancel_at = micros.Draw();
  return tree;
}

// What a subtree does on its own: when it ends, and with what.
struct Outcome {
  int64_t at = 0;
  bool threw = false;
  std::string error;  // if it threw
  int64_t value = 0;
};

// The model: each node's outcome, given that nothing cancels it.
Outcome Model(const Node& node) {
  switch (node.kind) {
    case Node::kLeaf:
      if (node.throws) return {node.micros, true, absl::StrCat("leaf ", node.id), 0};
      return {node.micros, false, "", node.value};
    case Node::kTimeout: {
      const Outcome child = Model(node.children[0]);
      if (child.at < node.micros) return child;
      return {node.micros, false, "", -node.id};  // DeadlineExceeded
    }
    case Node::kAll: {
      Outcome all;
      const Outcome* first_throw = nullptr;
      std::vector<Outcome> children;
      for (const Node& c : node.children) children.push_back(Model(c));
      for (const Outcome& c : children) {
        if (c.threw && (first_throw == nullptr || c.at < first_throw->at)) first_throw = &c;
        all.at = std::max(all.at, c.at);
        all.value += c.value;
      }
      if (first_throw != nullptr) return *first_throw;
      return all;
    }
    case Node::kAny: {
      Outcome best;
      best.at = kNever;
      for (size_t i = 0; i < node.children.size(); ++i) {
        Outcome c = Model(node.children[i]);
        if (c.at < best.at) {
          best = c;
          if (!c.threw) best.value = static_cast<int64_t>(i) * 1000000 + c.value;
        }
      }
      return best;
    }
  }
  return {};
}

// The leaves that must finish, and those that may (with ties: a leaf ending
// at the very time its input is decided without it), given that the node is
// cancelled at `cancel_at` (kNever: not at all). Without ties `may` stays
// empty: at its own time a leaf ends, and the combinator this decides
// cancels only the others.
void ExpectedLeaves(const Node& node, int64_t cancel_at, bool ties, std::set<int>& must,
                    std::set<int>& may) {
  if (node.kind == Node::kLeaf) {
    if (node.micros < cancel_at || (!ties && node.micros == cancel_at)) {
      must.insert(node.id);
    } else if (node.micros == cancel_at) {
      may.insert(node.id);
    }
    return;
  }
  // A combinator that decides at `decided` cancels the inputs still running.
  const int64_t decided = std::min(Model(node).at, cancel_at);
  for (const Node& child : node.children) ExpectedLeaves(child, decided, ties, must, may);
}

// The real tree, and what it did.
struct Ledger {
  int live_frames = 0;
  std::set<int> finished_leaves;
  std::vector<std::string> violations;
  std::string transcript;
};

class FrameGuard {
 public:
  explicit FrameGuard(Ledger& ledger) : ledger_(ledger) { ++ledger_.live_frames; }
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
  ~FrameGuard() { --ledger_.live_frames; }

 private:
  Ledger& ledger_;
};

Co<int64_t> Run(const Node& node, Ledger& ledger);

Co<int64_t> Run(const Node& node, Ledger& ledger) {
  FrameGuard guard(ledger);
  Scheduler& scheduler = *CurrentScheduler();
  switch (node.kind) {
    case Node::kLeaf: {
      co_await Sleep(microseconds(node.micros));
      const int64_t now = (scheduler.Now() - Instant{}) / microseconds(1);
      absl::StrAppend(&ledger.transcript, "leaf ", node.id, " at ", now, "\n");
      if (now != node.micros) {
        ledger.violations.push_back(
            absl::StrCat("leaf ", node.id, " woke at ", now, ", not ", node.micros));
      }
      ledger.finished_leaves.insert(node.id);
      if (node.throws) throw std::runtime_error(absl::StrCat("leaf ", node.id));
      co_return node.value;
    }
    case Node::kTimeout: {
      const Node& child = node.children[0];
      absl::StatusOr<int64_t> result = absl::UnknownError("unset");
      if (child.as_task) {
        result =
            co_await WithTimeout(Spawn(scheduler, Run(child, ledger)), microseconds(node.micros));
      } else {
        result = co_await WithTimeout(Run(child, ledger), microseconds(node.micros));
      }
      if (!result.ok()) {
        if (!absl::IsDeadlineExceeded(result.status())) {
          ledger.violations.push_back(
              absl::StrCat("timeout ", node.id, ": ", result.status().ToString()));
        }
        co_return -node.id;
      }
      co_return *result;
    }
    case Node::kAll: {
      int64_t sum = 0;
      // Inputs all Co or all Task (a vector has one type); mixed trees come
      // from different nodes.
      if (node.as_task) {
        std::vector<Task<int64_t>> inputs;
        for (const Node& c : node.children) inputs.push_back(Spawn(scheduler, Run(c, ledger)));
        for (int64_t v : co_await WhenAll(std::move(inputs))) sum += v;
      } else {
        std::vector<Co<int64_t>> inputs;
        for (const Node& c : node.children) inputs.push_back(Run(c, ledger));
        for (int64_t v : co_await WhenAll(std::move(inputs))) sum += v;
      }
      co_return sum;
    }
    case Node::kAny: {
      if (node.as_task) {
        std::vector<Task<int64_t>> inputs;
        for (const Node& c : node.children) inputs.push_back(Spawn(scheduler, Run(c, ledger)));
        WhenAnyResult<int64_t> r = co_await WhenAny(std::move(inputs));
        co_return static_cast<int64_t>(r.index) * 1000000 + r.value;
      }
      std::vector<Co<int64_t>> inputs;
      for (const Node& c : node.children) inputs.push_back(Run(c, ledger));
      WhenAnyResult<int64_t> r = co_await WhenAny(std::move(inputs));
      co_return static_cast<int64_t>(r.index) * 1000000 + r.value;
    }
  }
  co_return 0;
}

std::string Describe(const std::set<int>& leaves) {
  std::string out;
  for (int id : leaves) absl::StrAppend(&out, out.empty() ? "" : ",", id);
  return absl::StrCat("{", out, "}");
}

// "any(leaf#1 3000us =5, timeout#2 2000us(leaf#3 1000us throws))", for a
// failure message.
std::string DescribeTree(const Node& node) {
  const char* task = node.as_task ? " as tasks" : "";
  switch (node.kind) {
    case Node::kLeaf:
      return absl::StrCat("leaf#", node.id, " ", node.micros, "us ",
                          node.throws ? "throws" : absl::StrCat("=", node.value));
    case Node::kTimeout:
      return absl::StrCat("timeout#", node.id, " ", node.micros, "us", task, "(",
                          DescribeTree(node.children[0]), ")");
    case Node::kAll:
    case Node::kAny: {
      std::string out = absl::StrCat(node.kind == Node::kAll ? "all#" : "any#", node.id, task, "(");
      for (size_t i = 0; i < node.children.size(); ++i) {
        absl::StrAppend(&out, i == 0 ? "" : ", ", DescribeTree(node.children[i]));
      }
      return out + ")";
    }
  }
  return "";
}

// Runs the seed's tree; the first violation, or "".
std::string RunSeed(uint64_t seed, bool ties, Ledger& ledger) {
  const Tree tree = MakeTree(seed, ties);
  auto scheduler = TestScheduler::Create({.seed = seed, .strategy = "mix"});
  TestScheduler& s = *scheduler;
  Task<int64_t> root = Spawn(s, Run(tree.root, ledger));
  const TaskId root_id = root.id();
  if (tree.cancel_at != kNever) {
    Spawn(s, [&]() -> Co<void> {
      co_await Sleep(microseconds(tree.cancel_at));
      if (!root.IsFinished()) root.Cancel();
    }).Detach();
  }
  absl::Status run = s.Run();
  const int64_t end = (s.Now() - Instant{}) / microseconds(1);
  if (!run.ok()) return absl::StrCat("run: ", run.ToString());

  const Outcome expected = Model(tree.root);
  // The clock stops at the last timer: the root's end, or the canceller's.
  // (With ties the time an outcome comes is still the model's; which
  // outcome, not always.)
  const bool cancelled = tree.cancel_at < expected.at;
  const int64_t expected_end =
      tree.cancel_at == kNever ? expected.at : std::max(expected.at, tree.cancel_at);
  if (end != (cancelled ? tree.cancel_at : expected_end)) {
    return absl::StrCat("the run ended at ", end, "us; the root ends at ", expected.at,
                        "us, the canceller at ", tree.cancel_at, "us");
  }
  if (cancelled) {
    if (!root.IsCancelled()) {
      return absl::StrCat("the root was not cancelled at ", tree.cancel_at,
                          "us, before its end at ", expected.at, "us");
    }
  } else if (tree.cancel_at == expected.at) {
    if (!root.IsFinished()) return "the root neither finished nor was cancelled";
  } else if (root.IsCancelled() || !root.IsFinished()) {
    return absl::StrCat("the root did not finish by ", expected.at, "us");
  } else if (!ties) {
    absl::StatusOr<int64_t> got = absl::UnknownError("unset");
    std::string threw;
    try {
      got = s.BlockOn(root);
    } catch (const std::runtime_error& e) {
      threw = e.what();
    }
    const std::string got_text = got.ok() ? absl::StrCat(*got) : got.status().ToString();
    if (expected.threw && threw != expected.error) {
      return absl::StrCat("the root should throw '", expected.error, "', got '", threw, "' / ",
                          got_text);
    }
    if (!expected.threw && (!got.ok() || *got != expected.value)) {
      return absl::StrCat("the root gave ", got_text, threw, ", the model ", expected.value);
    }
  }
  std::set<int> must, may;
  ExpectedLeaves(tree.root, tree.cancel_at, ties, must, may);
  for (int id : ledger.finished_leaves) {
    if (!must.contains(id) && !may.contains(id)) {
      return absl::StrCat("leaf ", id, " finished; the model says only ", Describe(must),
                          " must and ", Describe(may), " may");
    }
  }
  for (int id : must) {
    if (!ledger.finished_leaves.contains(id)) {
      return absl::StrCat("leaf ", id, " did not finish; finished ",
                          Describe(ledger.finished_leaves), ", the model says ", Describe(must),
                          " must");
    }
  }
  root = Task<int64_t>();
  if (ledger.live_frames != 0) return absl::StrCat(ledger.live_frames, " frames left alive");
  if (s.IsTaskRunning(root_id)) return "the root task is still alive";
  if (!ledger.violations.empty()) return ledger.violations.front();
  absl::StrAppend(&ledger.transcript, "steps ", s.step_count(), " trace ", s.TraceHash());
  return "";
}

TEST(CombinatorsTortureTest, ModelHoldsOverManySeeds) {
  // SIMSCHED_COMBINATORS_TORTURE_SEED(S)/START_SEED; a failing seed prints its replay line
  // (testing/model_sweep.h).
  testing::SweepModelSeeds(
      "SIMSCHED_COMBINATORS_TORTURE", {.default_count = 10000}, [](uint64_t seed) {
        // Each seed twice: durations distinct, then with ties.
        for (bool ties : {false, true}) {
          Ledger ledger;
          const std::string failure = RunSeed(seed, ties, ledger);
          if (failure.empty()) continue;
          const Tree tree = MakeTree(seed, ties);
          return absl::StrCat(
              ties ? "with ties: " : "", failure, "\n  tree: ", DescribeTree(tree.root),
              tree.cancel_at == kNever ? "" : absl::StrCat(", cancelled at ", tree.cancel_at, "us"),
              "\n  transcript: ", ledger.transcript);
        }
        return std::string();
      });
}

TEST(CombinatorsTortureTest, TheGeneratorReachesEveryCase) {
  int cancelled_roots = 0, thrown_roots = 0, deep = 0, timeouts = 0, task_inputs = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Tree tree = MakeTree(seed, /*ties=*/false);
    const Outcome outcome = Model(tree.root);
    cancelled_roots += tree.cancel_at < outcome.at;
    thrown_roots += outcome.threw && tree.cancel_at > outcome.at;
    deep += tree.nodes >= 8;
    std::vector<const Node*> stack = {&tree.root};
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      timeouts += n->kind == Node::kTimeout && Model(*n).value == -n->id;
      task_inputs += n->as_task && n->kind != Node::kLeaf;
      for (const Node& c : n->children) stack.push_back(&c);
    }
  }
  EXPECT_GT(cancelled_roots, 30);
  EXPECT_GT(thrown_roots, 20);
  EXPECT_GT(deep, 50);
  EXPECT_GT(timeouts, 30);
  EXPECT_GT(task_inputs, 50);

  // With ties, leaves end at the very time their input is decided without
  // them (or the root is cancelled), so the schedule picks the outcome.
  int races = 0, cancel_races = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Tree tree = MakeTree(seed, /*ties=*/true);
    std::set<int> must, may;
    ExpectedLeaves(tree.root, tree.cancel_at, /*ties=*/true, must, may);
    races += !may.empty();
    cancel_races += tree.cancel_at == Model(tree.root).at;
  }
  EXPECT_GT(races, 100);
  EXPECT_GT(cancel_races, 5);
}

TEST(CombinatorsTortureTest, ASeedRunsTheSameEveryTime) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Ledger a;
    Ledger b;
    const bool ties = seed % 2 == 0;
    ASSERT_EQ(RunSeed(seed, ties, a), "") << "seed " << seed;
    ASSERT_EQ(RunSeed(seed, ties, b), "") << "seed " << seed;
    EXPECT_EQ(a.transcript, b.transcript) << "seed " << seed;
  }
}

}  // namespace
}  // namespace simsched
