// File: sim/world.h
// -----------------------------------------------------------------------------
//
// The simulated world: a cluster of hosts (sim/host.h) joined by a faulty
// network (sim/network.h), each with a disk that loses unsynced writes
// (sim/disk.h), plus named fault points (sim/buggify.h) and a fault plan
// with a liveness phase (sim/fault_plan.h), all in one process on one
// seeded `TestScheduler`. Every fault, drop and delay is drawn from streams
// derived from the scheduler's seed, so a failing run replays exactly.
//
// Events (drops, duplicates, partitions, crashes, restarts, torn writes,
// buggify firings) go to `WorldOptions::log` (pass `sim.Log` in a SIM_TEST so
// they appear in the failure report of a failing seed), are kept in
// `events()`, and are folded into `EventHash()`. `Report()` summarizes the
// world for a failure message: counters, buggify points that fired, hosts
// and messages in flight.
//
// This header defines:
//   * `simsched::WorldOptions`, `simsched::World`
//
// Example:
//
//   SIM_TEST(KvTest, SurvivesChaos, .iterations = 200) {
//     simsched::World world(sim.scheduler(), {.log = [&](std::string_view l) { sim.Log(l); }});
//     simsched::Host& a = *world.AddHost("a").value();
//     simsched::Host& b = *world.AddHost("b").value();
//     StartServers(a, b);
//     simsched::FaultPlan plan;
//     plan.link.loss = 0.02;
//     plan.partition_probability = 0.2;
//     plan.crash_probability = 0.05;
//     absl::Status status = world.RunFaultPlan(plan, {
//         .what = "all writes acknowledged",
//         .condition = [&] { return client.done(); }});
//     EXPECT_TRUE(status.ok()) << status.message() << "\n" << world.Report();
//   }

#ifndef SIMSCHED_SIM_WORLD_H_
#define SIMSCHED_SIM_WORLD_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/test_scheduler.h"
#include "sim/disk.h"
#include "sim/fault_plan.h"
#include "sim/host.h"
#include "sim/network.h"

namespace simsched {

namespace internal {
class BuggifyRegistry;
class ScopedBuggify;
class WorldCore;
class CpuCharger;
class TaskOwnership;
}  // namespace internal

// WorldOptions
struct WorldOptions {
  // Receives each event as a line ("t=+15ms net: #12 a:1 -> b:1 dropped
  // (loss)"). In a SIM_TEST pass `[&](std::string_view l) { sim.Log(l); }`.
  std::function<void(std::string_view)> log = nullptr;
  // Keep the last `keep_events` events in `events()`. Turning this off (with
  // no `log`) skips formatting events, for benchmarks.
  bool record_events = true;
  size_t keep_events = 1000;
  // SIMSCHED_BUGGIFY points: on in a simulation unless turned off here.
  bool buggify = true;
  double buggify_enable_probability = 0.25;
  double buggify_fire_probability = 0.25;
};

// World
//
// Owns its hosts and network. Must not outlive `scheduler`; while it exists
// it is this thread's buggify context. Confined to the scheduler's thread.
class World {
 public:
  explicit World(TestScheduler& scheduler, WorldOptions options = {});
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // AddHost()
  //
  // A new host, up. InvalidArgument for an empty name, AlreadyExists for a
  // name in use.
  absl::StatusOr<Host*> AddHost(std::string name, HostOptions options = {});
  // The host named `name`, or null.
  Host* FindHost(std::string_view name) const;
  // Hosts in the order they were added.
  std::vector<Host*> hosts() const;

  Network& network() { return *network_; }
  TestScheduler& scheduler() { return scheduler_; }

  // -- Faults --

  // SetDiskFaults()
  //
  // For every host's disk (now and added later).
  absl::Status SetDiskFaults(const DiskFaults& faults);
  // SetCpuModel()
  //
  // Installs (or with `enabled = false` removes) the CPU model on the
  // scheduler. See `CpuModel`.
  absl::Status SetCpuModel(const CpuModel& model);
  // ConfigureBuggify()
  //
  // InvalidArgument for a probability outside [0, 1].
  absl::Status ConfigureBuggify(bool enabled, double enable_probability,
                                double fire_probability);

  // RunFaultPlan()
  //
  // Applies `plan`, runs its chaos phase (the nemesis), then `StopFaults()`
  // and `CheckLiveness(liveness)`. InvalidArgument for a bad plan; the
  // scheduler's failure if the run fails (a deadlock, a detached task's
  // exception); "liveness violated" if the check fails. Call it from plain
  // code (a test body): it drives the scheduler as `BlockOn` does.
  absl::Status RunFaultPlan(const FaultPlan& plan, const LivenessCheck& liveness);

  // StopFaults()
  //
  // Heals every partition, restarts every crashed host (in the order they
  // were added), and stops injecting: no loss, duplication, reordering or
  // latency tail, no disk faults, no buggify firing, no CPU stalls.
  void StopFaults();

  // CheckLiveness()
  //
  // Runs the simulation until `check.condition` holds, for at most
  // `check.budget` of virtual time. DeadlineExceeded starting "liveness
  // violated" with what was still pending (the check's own `pending`, the
  // hosts, messages in flight and the live tasks) if it does not.
  absl::Status CheckLiveness(const LivenessCheck& check);

  // -- Reports --

  // Note()
  //
  // Records an event of the test's own ("failover: kv2 is primary") among
  // the world's, with the same time stamp format.
  void Note(std::string_view text);

  // A digest of every world event so far: same seed, same hash.
  uint64_t EventHash() const;
  // The last `keep_events` events.
  const std::deque<std::string>& events() const;
  // Event counters by name ("net.dropped_loss": 3), plus "net.sent" and
  // "net.delivered".
  std::map<std::string, uint64_t> Counters() const;
  // "name: fired 3 of 12 evaluations" for each buggify point that fired.
  std::string BuggifyReport() const;
  // Names of the buggify points that fired, sorted.
  std::vector<std::string> FiredBuggifyPoints() const;
  // Everything above, for a failure message.
  std::string Report() const;

  // NewIdBlock()
  //
  // A number no earlier call in this world returned (1, 2, 3, ...): the
  // base of ids that must stay unique across restarts. `RpcNode` takes one
  // at its first request, so a restarted node never reuses a request id that a
  // late response from before the crash could still carry.
  uint64_t NewIdBlock() { return ++id_blocks_; }

  // -- For Host --
  void OnHostTaskSpawned(TaskId task, Host& host);
  void OnHostTaskFinished(TaskId task);
  void OnHostCrashed(Host& host);
  // The host that owns `task` (a task it spawned, or one spawned by any of
  // its tasks), or null.
  Host* TaskOwner(TaskId task) const;
  // While set, a task spawned belongs to `host` as a `Host::Spawn` task
  // rather than to the spawning task's host.
  void set_spawning_for(Host* host) { spawning_for_ = host; }

 private:
  friend class internal::CpuCharger;
  friend class internal::TaskOwnership;
  Co<void> Nemesis(FaultPlan plan);

  TestScheduler& scheduler_;
  WorldOptions options_;
  std::unique_ptr<internal::WorldCore> core_;
  std::unique_ptr<Network> network_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::unique_ptr<internal::BuggifyRegistry> buggify_;
  std::unique_ptr<internal::ScopedBuggify> buggify_scope_;
  std::unique_ptr<internal::CpuCharger> cpu_;
  std::unique_ptr<internal::TaskOwnership> ownership_;
  Host* spawning_for_ = nullptr;
  uint64_t id_blocks_ = 0;
  DiskFaults disk_faults_;
  // Host of each live host-owned task (lookups only; never iterated).
  absl::flat_hash_map<uint64_t, Host*> task_host_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_WORLD_H_
