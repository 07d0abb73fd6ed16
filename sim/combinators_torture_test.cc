// The combinators under a seeded torture: thousands of generated trees of
// WhenAll, WhenAny and WithTimeout over leaves that sleep and then return or
// throw, some inputs passed as `Co`, some as spawned `Task`s, with the root
// cancelled from outside at a random time in some trees, under the
// seed-chosen strategy ("mix"). Every duration is distinct, so virtual time
// alone decides each race, and a model computes from the tree what must
// happen:
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
#include "testing/sweep_config.h"

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
};

// Every duration in a tree is distinct, so no two events share a time.
class DistinctMicros {
 public:
  explicit DistinctMicros(Rng& rng) : rng_(rng) {}
  int64_t Draw() {
    while (true) {
      const int64_t t = rng_.InRange(1, 100000);
      if (used_.insert(t).second) return t;
    }
  }

 private:
  Rng& rng_;
  std::set<int64_t> used_;
};

Node MakeNode(Rng& rng, DistinctMicros& micros, int depth, int& next_id) {
  Node node;
  node.id = next_id++;
  node.as_task = rng.Chance(1, 3);
  const uint64_t pick = depth >= 3 ? 0 : rng.Below(depth == 0 ? 3 : 5);
  if (pick == 0 || (pick >= 3 && depth >= 3)) {
    node.kind = Node::kLeaf;
    node.micros = micros.Draw();
    node.value = rng.InRange(1, 1000);
    node.throws = rng.Chance(1, 6);
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

Tree MakeTree(uint64_t seed) {
  Rng rng(seed ^ 0xd6e8feb86659fd93ULL);
  DistinctMicros micros(rng);
  Tree tree;
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

// The leaves that must finish, given that the node is cancelled at
// `cancel_at` (kNever: not at all).
void ExpectedLeaves(const Node& node, int64_t cancel_at, std::set<int>& out) {
  if (node.kind == Node::kLeaf) {
    // At its own time a leaf ends; the combinator that this ending decides
    // cancels only the others (no two times are equal).
    if (node.micros <= cancel_at) out.insert(node.id);
    return;
  }
  // A combinator that decides at `decided` cancels the inputs still running.
  const Outcome self = Model(node);
  const int64_t decided = std::min(self.at, cancel_at);
  for (const Node& child : node.children) ExpectedLeaves(child, decided, out);
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

// Runs the seed's tree; the first violation, or "".
std::string RunSeed(uint64_t seed, Ledger& ledger) {
  const Tree tree = MakeTree(seed);
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
  const bool cancelled = tree.cancel_at < expected.at;
  // The clock stops at the last timer: the root's end, or the canceller's.
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
  } else {
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
  std::set<int> leaves;
  ExpectedLeaves(tree.root, tree.cancel_at, leaves);
  if (leaves != ledger.finished_leaves) {
    return absl::StrCat("leaves finished ", Describe(ledger.finished_leaves), ", the model says ",
                        Describe(leaves));
  }
  root = Task<int64_t>();
  if (ledger.live_frames != 0) return absl::StrCat(ledger.live_frames, " frames left alive");
  if (s.IsTaskRunning(root_id)) return "the root task is still alive";
  if (!ledger.violations.empty()) return ledger.violations.front();
  absl::StrAppend(&ledger.transcript, "steps ", s.step_count(), " trace ", s.TraceHash());
  return "";
}

TEST(CombinatorsTortureTest, ModelHoldsOverManySeeds) {
  const absl::StatusOr<std::vector<uint64_t>> seeds = testing::SeedsFromEnvironment(
      "SIMSCHED_COMBINATORS_TORTURE", /*default_count=*/10000, /*default_start=*/1);
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  int failures = 0;
  for (uint64_t seed : *seeds) {
    if (failures == 5) break;
    Ledger ledger;
    const std::string failure = RunSeed(seed, ledger);
    if (!failure.empty()) {
      ++failures;
      ADD_FAILURE() << "seed " << seed << " (replay: SIMSCHED_COMBINATORS_TORTURE_SEED=" << seed
                    << "): " << failure;
    }
  }
}

TEST(CombinatorsTortureTest, TheGeneratorReachesEveryCase) {
  int cancelled_roots = 0, thrown_roots = 0, deep = 0, timeouts = 0, task_inputs = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Tree tree = MakeTree(seed);
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
}

TEST(CombinatorsTortureTest, ASeedRunsTheSameEveryTime) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Ledger a;
    Ledger b;
    ASSERT_EQ(RunSeed(seed, a), "") << "seed " << seed;
    ASSERT_EQ(RunSeed(seed, b), "") << "seed " << seed;
    EXPECT_EQ(a.transcript, b.transcript) << "seed " << seed;
  }
}

}  // namespace
}  // namespace simsched
