#include "sim/host.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/waker.h"
#include "sim/internal/world_core.h"
#include "sim/world.h"

namespace simsched {
namespace {

// Runs a host task, reporting an escaping exception to the scheduler (the
// run fails, as for a detached task): the host holds the handle but nobody
// awaits it.
Co<void> HostTaskBody(Co<void> co) {
  try {
    co_await std::move(co);
  } catch (...) {
    internal::TaskHeader& self = internal::RequireCurrentTask("host task");
    internal::TaskCoreAccess::OnUnhandledTaskException(*self.scheduler(), self.metadata.Unpack(),
                                                      std::current_exception());
  }
}

}  // namespace

Host::Host(World& world, internal::WorldCore& core, Network& network, uint32_t id,
           std::string name, HostOptions options)
    : world_(world),
      core_(core),
      network_(network),
      id_(id),
      name_(std::move(name)),
      options_(options),
      disk_(&core, name_) {}

Host::~Host() {
  CancelTasks();
  volatile_.clear();
  graveyard_.clear();
  disk_.Detach();
}

Instant Host::Now() const {
  const Duration elapsed = core_.scheduler.Elapsed();
  const __int128 drift = static_cast<__int128>(elapsed.count()) * options_.clock_drift_ppm / 1'000'000;
  return core_.scheduler.Now() + options_.clock_skew + Duration(static_cast<int64_t>(drift));
}

absl::Status Host::Spawn(Co<void> co, SourceLocation location) {
  if (!up_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Spawn on host '", name_, "', which is down (crashed); restart it first (spawned at ",
        location.file_name(), ":", location.line(), ")"));
  }
  if (tasks_.size() >= prune_at_) Prune();
  world_.set_spawning_for(this);
  Task<void> task = simsched::Spawn(core_.scheduler, HostTaskBody(std::move(co)), location);
  world_.set_spawning_for(nullptr);
  world_.OnHostTaskSpawned(task.id(), *this);
  tasks_.push_back(std::move(task));
  return absl::OkStatus();
}

void Host::Prune() {
  std::erase_if(tasks_, [this](const Task<void>& task) {
    if (!task.IsFinished()) return false;
    world_.OnHostTaskFinished(task.id());
    return true;
  });
  prune_at_ = std::max<size_t>(64, tasks_.size() * 2);
}

size_t Host::TaskCount() const {
  size_t live = adopted_.size();
  for (const Task<void>& task : tasks_) live += task.IsFinished() ? 0 : 1;
  return live;
}

void Host::CancelTasks() {
  std::vector<Task<void>> tasks = std::move(tasks_);
  tasks_.clear();
  for (Task<void>& task : tasks) world_.OnHostTaskFinished(task.id());
  tasks.clear();  // cancels each task (its frame's RAII runs now)
  CancelAdopted();
}

void Host::CancelAdopted() {
  // Children first went with their parents' frames when those held the
  // handles; what is left (detached, or held elsewhere) is cancelled by id.
  // Destructors may spawn more: repeat until none is left.
  while (!adopted_.empty()) {
    std::vector<uint64_t> ids(adopted_.begin(), adopted_.end());
    adopted_.clear();
    for (uint64_t id : ids) {
      world_.OnHostTaskFinished(TaskId{id});
      (void)core_.scheduler.CancelTask(TaskId{id});
    }
  }
}

absl::StatusOr<Endpoint> Host::Bind(uint32_t port) { return network_.Bind(*this, port); }

void Host::OnBoot(std::function<void(Host&)> boot) {
  boot_ = std::move(boot);
  if (up_ && boot_) boot_(*this);
}

void Host::Crash() {
  if (!up_) return;
  up_ = false;
  crashed_from_own_task_ = false;
  if (InTask()) {
    crashed_from_own_task_ = world_.TaskOwner(internal::current_task->metadata.id) == this;
  }
  const size_t live = TaskCount();
  network_.OnCrash(*this);
  CancelTasks();
  disk_.OnCrash();
  for (auto& state : volatile_) graveyard_.push_back(std::move(state));
  volatile_.clear();
  core_.Event("host.crash", 0xc0a5ULL ^ id_,
              absl::StrCat("host ", name_, ": crashed (incarnation ", incarnation_, ", ", live,
                           " tasks cancelled)"));
  world_.OnHostCrashed(*this);
}

absl::Status Host::Restart() {
  if (up_) {
    return absl::FailedPreconditionError(
        absl::StrCat("Restart of host '", name_, "', which is up; crash it first"));
  }
  // The crashed incarnation's tasks are gone, unless one of them is running
  // now (it crashed its own host): then its state waits for the next crash.
  if (!crashed_from_own_task_) graveyard_.clear();
  up_ = true;
  ++incarnation_;
  disk_.OnRestart();
  core_.Event("host.restart", 0x5e57ULL ^ id_ ^ (incarnation_ << 8),
              absl::StrCat("host ", name_, ": restarted (incarnation ", incarnation_, ")"));
  if (boot_) boot_(*this);
  return absl::OkStatus();
}

}  // namespace simsched
