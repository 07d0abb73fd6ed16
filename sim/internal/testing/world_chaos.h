// Test-only: what sim/world_torture_test.cc and sim/rpc_torture_test.cc
// share: the seeded faults they inject (a random link: lossy, duplicating,
// reordering, tight; one random chaos step over a world's hosts: crash,
// restart, partition, one-way cut, heal) and the record a run keeps (its
// first violations, a transcript, the check that no task of a crashed
// incarnation runs).

#ifndef SIMSCHED_SIM_INTERNAL_TESTING_WORLD_CHAOS_H_
#define SIMSCHED_SIM_INTERNAL_TESTING_WORLD_CHAOS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sim/fault_plan.h"
#include "sim/host.h"
#include "sim/network.h"
#include "sim/random.h"

namespace simsched::testing {

// A link with each fault on or off by the draw: latency 0-10 ms with a
// sometimes 30 ms tail, 10% loss, 20% duplicates, 30% reordering, and one
// time in four a queue of 1-3 messages that refuses or drops when full.
inline LinkOptions RandomLinkOptions(Rng& rng) {
  using std::chrono::milliseconds;
  LinkOptions link;
  link.min_latency = milliseconds(rng.InRange(0, 2));
  link.max_latency = link.min_latency + milliseconds(rng.InRange(0, 8));
  link.tail_probability = rng.Chance(1, 4) ? 0.1 : 0;
  link.tail_latency = milliseconds(30);
  link.loss = rng.Chance(1, 2) ? 0.1 : 0;
  link.duplicate = rng.Chance(1, 3) ? 0.2 : 0;
  link.reorder = rng.Chance(1, 3) ? 0.3 : 0;
  if (rng.Chance(1, 4)) {
    link.queue_limit = static_cast<size_t>(rng.InRange(1, 3));
    link.drop_when_full = rng.Chance(1, 2);
  }
  return link;
}

// Whether `link` (from RandomLinkOptions) may refuse or drop a send because
// it is full.
inline bool IsTight(const LinkOptions& link) { return link.queue_limit <= 3; }

// What RandomChaosStep did.
struct ChaosStep {
  enum Kind { kNothing, kCrash, kRestart, kPartition, kHeal };
  Kind kind = kNothing;
  size_t host = 0;          // for kCrash and kRestart
  std::string description;  // for a transcript
  absl::Status status;      // the call's (a fault that failed is a violation)
};

// Draws a host and a fault and applies it: crash it if up, restart it if
// down, split all hosts into two random sides (both ways or, one time in
// three, one way), or heal.
inline ChaosStep RandomChaosStep(const std::vector<Host*>& hosts, Network& network, Rng& rng) {
  ChaosStep step;
  step.host = rng.Below(hosts.size());
  Host& host = *hosts[step.host];
  switch (rng.Below(4)) {
    case 0:
      if (!host.IsUp()) break;
      step.kind = ChaosStep::kCrash;
      step.description = absl::StrCat("crash ", host.name());
      host.Crash();
      break;
    case 1:
      if (host.IsUp()) break;
      step.kind = ChaosStep::kRestart;
      step.description = absl::StrCat("restart ", host.name());
      step.status = host.Restart();
      break;
    case 2: {
      std::vector<std::string> a, b;
      for (Host* h : hosts) (rng.Chance(1, 2) ? a : b).push_back(h->name());
      if (a.empty() || b.empty()) break;
      const bool one_way = rng.Chance(1, 3);
      step.kind = ChaosStep::kPartition;
      step.description =
          absl::StrCat(one_way ? "cut one way " : "partition ", a.size(), "|", b.size());
      step.status = one_way ? network.PartitionOneWay(a, b) : network.Partition(a, b);
      break;
    }
    default:
      step.kind = ChaosStep::kHeal;
      step.description = "heal";
      network.Heal();
      break;
  }
  return step;
}

// What a seeded world run saw: its first violations and a transcript (for
// the verdict and the determinism check).
class WorldRunRecord {
 public:
  const std::vector<std::string>& violations() const { return violations_; }
  const std::string& transcript() const { return transcript_; }

 protected:
  void Violation(std::string what) {
    if (violations_.size() < 3) violations_.push_back(std::move(what));
  }
  void Note(const std::string& line) { absl::StrAppend(&transcript_, line, "\n"); }
  // Whether a task of `host`'s incarnation `incarnation` may run now (a
  // violation if not: a crash must have cancelled it).
  bool StillAlive(const Host& host, uint64_t incarnation, const char* who) {
    if (host.IsUp() && host.incarnation() == incarnation) return true;
    Violation(absl::StrCat(who, " of ", host.name(), " incarnation ", incarnation,
                           " ran after its host crashed (now ", host.IsUp() ? "up" : "down",
                           ", incarnation ", host.incarnation(), ")"));
    return false;
  }

  std::string transcript_;

 private:
  std::vector<std::string> violations_;
};

}  // namespace simsched::testing

#endif  // SIMSCHED_SIM_INTERNAL_TESTING_WORLD_CHAOS_H_
