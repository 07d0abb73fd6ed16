// File: sim/host.h
// -----------------------------------------------------------------------------
//
// A simulated machine in a `World` (sim/world.h): a name, the tasks it runs,
// its volatile state, its disk, its network endpoints and its own clock.
//
//   * `Spawn` starts a task the host owns. `Crash()` cancels every one of
//     them (their frames and RAII are destroyed), closes the host's
//     endpoints, drops the disk's unsynced writes, and drops the volatile
//     state made with `Emplace` (destroyed once the crashed incarnation's
//     tasks are gone, at the restart).
//   * `OnBoot(hook)` sets how the host starts: the hook runs at once (the
//     host is up) and again at every `Restart()`, which brings the host back
//     with only its durable state: its disk's synced files.
//   * `Now()` is the host's local clock: the simulation's virtual time plus a
//     fixed skew and a drift (parts per million), as a real machine's clock
//     is off. Timers (`Sleep`) still run on the simulation's time.
//   * While a host is down it refuses work: `Spawn`, `Bind`, sends from its
//     endpoints and uses of its disk return FailedPrecondition.
//
// A task started with `Host::Spawn` belongs to the host, and so does every
// task spawned while one of the host's tasks runs, with whichever spawn
// function (plain `simsched::Spawn`, `SpawnLabeled`, a session's
// `ctx.Spawn`), down to grandchildren: the crash cancels them all. An
// exception escaping a `Host::Spawn` task fails the run, as for a detached
// task.
//
// This header defines:
//   * `simsched::HostOptions`, `simsched::Host`
//
// Example:
//
//   simsched::Host& kv = *world.AddHost("kv1").value();
//   kv.OnBoot([](simsched::Host& host) {
//     auto& server = host.Emplace<KvServer>(host);   // volatile: gone at a crash
//     (void)host.Spawn(server.Serve());
//   });
//   ...
//   kv.Crash();              // tasks cancelled, unsynced writes lost
//   (void)kv.Restart();      // OnBoot runs again; KvServer recovers from disk

#ifndef SIMSCHED_SIM_HOST_H_
#define SIMSCHED_SIM_HOST_H_

#include <cstdint>
#include <functional>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "scheduler/task.h"
#include "sim/disk.h"
#include "sim/network.h"

namespace simsched {

class World;

namespace internal {
class WorldCore;
}  // namespace internal

// HostOptions
struct HostOptions {
  // Added to the time the host reads.
  Duration clock_skew{0};
  // The host's clock gains this many parts per million of elapsed virtual
  // time (negative: it loses).
  int64_t clock_drift_ppm = 0;
  // With the CPU model on, the host's polls cost this percentage of the
  // model's cost (200: a host half as fast).
  uint32_t cpu_slowdown_percent = 100;
};

// Host
//
// Made by `World::AddHost`; lives as long as its World.
class Host {
 public:
  Host(World& world, internal::WorldCore& core, Network& network, uint32_t id, std::string name,
       HostOptions options);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const std::string& name() const { return name_; }
  uint32_t id() const { return id_; }
  bool IsUp() const { return up_; }
  // 1 at first boot, +1 at every restart.
  uint64_t incarnation() const { return incarnation_; }
  const HostOptions& options() const { return options_; }
  World& world() { return world_; }

  // Now()
  //
  // The host's local clock (see the file comment).
  Instant Now() const;

  // Spawn()
  //
  // Starts `co` (or a callable returning a Co<void>) as a task this host
  // owns. FailedPrecondition, and nothing started, if the host is down.
  absl::Status Spawn(Co<void> co, SourceLocation location = SourceLocation::current());
  template <internal::CoFactory F>
  absl::Status Spawn(F&& factory, SourceLocation location = SourceLocation::current()) {
    return Spawn(internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))), location);
  }

  // Bind()
  //
  // Opens an endpoint on `port`. FailedPrecondition if the host is down,
  // AlreadyExists if the port is bound.
  absl::StatusOr<Endpoint> Bind(uint32_t port);

  Disk& disk() { return disk_; }

  // Emplace()
  //
  // Makes a `T` that lives until the host crashes: volatile state.
  template <typename T, typename... Args>
  T& Emplace(Args&&... args) {
    auto object = std::make_shared<T>(std::forward<Args>(args)...);
    T& ref = *object;
    volatile_.push_back(std::move(object));
    return ref;
  }

  // OnBoot()
  //
  // Sets the boot hook and runs it now if the host is up; it runs again at
  // every restart.
  void OnBoot(std::function<void(Host&)> boot);

  // Crash()
  //
  // See the file comment. Crashing a down host does nothing. A task of this
  // host may crash it: that task is cancelled when its current poll ends.
  void Crash();

  // Restart()
  //
  // Brings a crashed host back (a new incarnation) and runs the boot hook.
  // FailedPrecondition if the host is up.
  absl::Status Restart();

  // Live tasks this host owns (its `Spawn` tasks and the tasks they spawned).
  size_t TaskCount() const;

  // -- For World --
  // `task` was spawned by one of this host's tasks: it is the host's now.
  void Adopt(TaskId task) { adopted_.insert(task.value); }
  void OnAdoptedFinished(TaskId task) { adopted_.erase(task.value); }
  // Cancels every task of the host (as a crash does, without the rest).
  void CancelTasks();

 private:
  void Prune();
  void CancelAdopted();

  World& world_;
  internal::WorldCore& core_;
  Network& network_;
  const uint32_t id_;
  const std::string name_;
  const HostOptions options_;
  bool up_ = true;
  uint64_t incarnation_ = 1;
  Disk disk_;
  std::function<void(Host&)> boot_;
  std::vector<Task<void>> tasks_;
  // Tasks spawned by the host's tasks, by id: cancelled in id order.
  std::set<uint64_t> adopted_;
  size_t prune_at_ = 64;
  std::vector<std::shared_ptr<void>> volatile_;
  // The crashed incarnation's state, kept until its tasks are surely gone.
  std::vector<std::shared_ptr<void>> graveyard_;
  bool crashed_from_own_task_ = false;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_HOST_H_
