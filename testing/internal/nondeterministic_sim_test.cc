// Tests that are deliberately not deterministic, so the integration test can
// check that SIMSCHED_CHECK_DETERMINISM catches them (and passes a clean one).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "scheduler/scheduler.h"
#include "testing/sim_test.h"

namespace simsched {
namespace {

Co<void> Noop() { co_return; }

// Reads the wall clock into a scheduling decision: which of two tasks is
// spawned first.
SIM_TEST(Nondeterministic, ReadsTheWallClock, .iterations = 20) {
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  const int first = static_cast<int>(now % 2);
  for (int i = 0; i < 2; ++i) {
    const int which = (i + first) % 2;
    SpawnLabeled(sim.scheduler(), TaskLabel(which == 0 ? "zero" : "one"), Noop()).Detach();
  }
  for (int i = 0; i < 3; ++i) sim.background().Spawn(Noop()).Detach();
}

// Iterates a hash set of pointers to decide the order of work: pointer values
// (and so the order) change when the heap does.
SIM_TEST(Nondeterministic, IteratesPointerHashSet, .iterations = 20) {
  std::vector<std::unique_ptr<int>> objects;
  absl::flat_hash_set<int*> set;
  for (int i = 0; i < 16; ++i) {
    objects.push_back(std::make_unique<int>(i));
    set.insert(objects.back().get());
  }
  for (int* p : set) {
    SpawnLabeled(sim.scheduler(), TaskLabel("item-" + std::to_string(*p)), Noop()).Detach();
  }
}

SIM_TEST(Nondeterministic, CleanControl, .iterations = 20) {
  for (int i = 0; i < 6; ++i) {
    sim.background().Spawn([]() -> Co<void> { co_await SimulateRandomDelay(2); }).Detach();
  }
}

}  // namespace
}  // namespace simsched
