#include "sim/world.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "scheduler/time.h"
#include "sim/internal/buggify_registry.h"
#include "sim/internal/world_core.h"

namespace simsched {

absl::Status ValidateRate(std::string_view field, double rate) {
  if (rate >= 0.0 && rate <= 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "fault rate ", std::string(field), " = ", rate,
      " is outside [0, 1]; rates are probabilities (0.01 means 1%)"));
}

absl::Status DiskFaults::Validate() const {
  if (absl::Status s = ValidateRate("DiskFaults::torn_write", torn_write); !s.ok()) return s;
  return ValidateRate("DiskFaults::read_corruption", read_corruption);
}

absl::Status CpuModel::Validate() const {
  if (absl::Status s = ValidateRate("CpuModel::stall_probability", stall_probability); !s.ok()) {
    return s;
  }
  if (min_poll_cost < Duration::zero() || max_poll_cost < min_poll_cost ||
      min_stall < Duration::zero() || max_stall < min_stall) {
    return absl::InvalidArgumentError(
        "CpuModel: costs must satisfy 0 <= min_poll_cost <= max_poll_cost and "
        "0 <= min_stall <= max_stall");
  }
  return absl::OkStatus();
}

absl::Status FaultPlan::Validate() const {
  if (absl::Status s = link.Validate(); !s.ok()) return s;
  if (absl::Status s = disk.Validate(); !s.ok()) return s;
  if (absl::Status s = cpu.Validate(); !s.ok()) return s;
  for (auto [field, rate] :
       {std::pair<const char*, double>{"buggify_enable_probability", buggify_enable_probability},
        {"buggify_fire_probability", buggify_fire_probability},
        {"partition_probability", partition_probability},
        {"one_way_fraction", one_way_fraction},
        {"heal_probability", heal_probability},
        {"crash_probability", crash_probability},
        {"restart_probability", restart_probability}}) {
    if (absl::Status s = ValidateRate(absl::StrCat("FaultPlan::", field), rate); !s.ok()) {
      return s;
    }
  }
  if (tick <= Duration::zero()) {
    return absl::InvalidArgumentError("FaultPlan::tick must be positive (the nemesis period)");
  }
  if (chaos_duration < Duration::zero() || chaos_duration > std::chrono::hours(24 * 365)) {
    return absl::InvalidArgumentError(
        "FaultPlan::chaos_duration must be between 0 and a year of virtual time");
  }
  return absl::OkStatus();
}

namespace internal {

// The CPU model, as the scheduler's poll-cost hook.
class CpuCharger final : public PollCostModel {
 public:
  CpuCharger(World& world, CpuModel model) : world_(world), model_(model) {}
  void set_model(const CpuModel& model) { model_ = model; }
  const CpuModel& model() const { return model_; }

  Duration PollCost(TaskId task) override {
    auto it = world_.task_host_.find(task.value);
    if (it == world_.task_host_.end()) return Duration::zero();
    Host& host = *it->second;
    Rng& rng = world_.core_->cpu_rng;
    Duration cost(rng.InRange(model_.min_poll_cost.count(), model_.max_poll_cost.count()));
    cost = cost * host.options().cpu_slowdown_percent / 100;
    if (model_.stall_probability > 0 && rng.NextDouble() < model_.stall_probability) {
      const Duration stall(rng.InRange(model_.min_stall.count(), model_.max_stall.count()));
      cost += stall;
      world_.core_->Event("cpu.stall", 0x57a1ULL ^ host.id(),
                          absl::StrCat("cpu: host ", host.name(), " stalled for ",
                                       FormatDuration(stall), " (task ", task.value, ")"));
    }
    return cost;
  }

 private:
  World& world_;
  CpuModel model_;
};

// Host ownership: a task spawned while a host's task runs belongs to that
// host, whichever spawn function made it (plain `Spawn`, `SpawnLabeled`, a
// session's `ctx.Spawn`, ...), so the host's crash cancels it too.
class TaskOwnership final : public TaskObserver {
 public:
  explicit TaskOwnership(World& world) : world_(world) {}

  void OnTaskSpawned(TaskId task, TaskId parent) override {
    if (Host* host = std::exchange(world_.spawning_for_, nullptr); host != nullptr) {
      world_.task_host_[task.value] = host;  // Host::Spawn keeps the handle
      return;
    }
    if (parent.value == 0) return;
    auto it = world_.task_host_.find(parent.value);
    if (it == world_.task_host_.end()) return;
    Host* host = it->second;
    world_.task_host_[task.value] = host;
    host->Adopt(task);
  }

  void OnTaskFinished(TaskId task) override {
    auto it = world_.task_host_.find(task.value);
    if (it == world_.task_host_.end()) return;
    Host* host = it->second;
    world_.task_host_.erase(it);
    host->OnAdoptedFinished(task);
  }

 private:
  World& world_;
};

}  // namespace internal

World::World(TestScheduler& scheduler, WorldOptions options)
    : scheduler_(scheduler),
      options_(std::move(options)),
      core_(std::make_unique<internal::WorldCore>(scheduler, options_.log, options_.record_events,
                                                  options_.keep_events)),
      network_(std::make_unique<Network>(*core_)) {
  buggify_ = std::make_unique<internal::BuggifyRegistry>(
      scheduler.seed(), [this] { return scheduler_.Elapsed(); },
      [this](std::string_view name) {
        core_->Event("buggify.fired", 0xb0bULL ^ name.size(),
                     absl::StrCat("buggify: '", std::string(name), "' fired"));
      });
  buggify_->Configure(options_.buggify_enable_probability, options_.buggify_fire_probability);
  ownership_ = std::make_unique<internal::TaskOwnership>(*this);
  scheduler_.SetTaskObserver(ownership_.get());
  if (options_.buggify) buggify_scope_ = std::make_unique<internal::ScopedBuggify>(buggify_.get());
}

World::~World() {
  if (cpu_ != nullptr && scheduler_.poll_cost_model() == cpu_.get()) {
    scheduler_.SetPollCostModel(nullptr);
  }
  // Hosts first: their tasks' frames may hold endpoints of the network.
  // Every host's tasks go while all hosts (and the ownership records) still
  // exist: a frame destroyed on one host may end a task of another.
  for (const auto& host : hosts_) host->CancelTasks();
  if (scheduler_.task_observer() == ownership_.get()) scheduler_.SetTaskObserver(nullptr);
  task_host_.clear();
  hosts_.clear();
  network_.reset();
  buggify_scope_.reset();
}

absl::StatusOr<Host*> World::AddHost(std::string name, HostOptions options) {
  if (name.empty()) return absl::InvalidArgumentError("AddHost: the host name is empty");
  if (FindHost(name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("AddHost: a host named '", name, "' exists"));
  }
  auto host = std::make_unique<Host>(*this, *core_, *network_, static_cast<uint32_t>(hosts_.size()),
                                     std::move(name), options);
  (void)host->disk().SetFaults(disk_faults_);
  network_->AddHost(*host);
  hosts_.push_back(std::move(host));
  return hosts_.back().get();
}

Host* World::FindHost(std::string_view name) const {
  for (const auto& host : hosts_) {
    if (host->name() == name) return host.get();
  }
  return nullptr;
}

std::vector<Host*> World::hosts() const {
  std::vector<Host*> out;
  for (const auto& host : hosts_) out.push_back(host.get());
  return out;
}

absl::Status World::SetDiskFaults(const DiskFaults& faults) {
  if (absl::Status s = faults.Validate(); !s.ok()) return s;
  disk_faults_ = faults;
  for (const auto& host : hosts_) (void)host->disk().SetFaults(faults);
  return absl::OkStatus();
}

absl::Status World::SetCpuModel(const CpuModel& model) {
  if (absl::Status s = model.Validate(); !s.ok()) return s;
  if (!model.enabled) {
    if (cpu_ != nullptr && scheduler_.poll_cost_model() == cpu_.get()) {
      scheduler_.SetPollCostModel(nullptr);
    }
    return absl::OkStatus();
  }
  if (cpu_ == nullptr) {
    cpu_ = std::make_unique<internal::CpuCharger>(*this, model);
  } else {
    cpu_->set_model(model);
  }
  scheduler_.SetPollCostModel(cpu_.get());
  return absl::OkStatus();
}

absl::Status World::ConfigureBuggify(bool enabled, double enable_probability,
                                     double fire_probability) {
  if (absl::Status s = ValidateRate("buggify enable probability", enable_probability); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateRate("buggify fire probability", fire_probability); !s.ok()) {
    return s;
  }
  buggify_->Configure(enable_probability, fire_probability);
  buggify_->SetFiring(enabled);
  if (enabled && buggify_scope_ == nullptr) {
    buggify_scope_ = std::make_unique<internal::ScopedBuggify>(buggify_.get());
  }
  return absl::OkStatus();
}

void World::OnHostTaskSpawned(TaskId task, Host& host) { task_host_[task.value] = &host; }
void World::OnHostTaskFinished(TaskId task) { task_host_.erase(task.value); }
void World::OnHostCrashed(Host& host) { (void)host; }

Host* World::TaskOwner(TaskId task) const {
  auto it = task_host_.find(task.value);
  return it == task_host_.end() ? nullptr : it->second;
}

Co<void> World::Nemesis(FaultPlan plan) {
  Rng& rng = core_->nemesis_rng;
  const Instant end = DeadlineAfter(scheduler_.Now(), plan.chaos_duration);
  auto chance = [&rng](double p) { return p > 0 && rng.NextDouble() < p; };
  auto named = [this](const std::vector<std::string>& names) {
    std::vector<Host*> out;
    if (names.empty()) return hosts();
    for (const std::string& name : names) {
      if (Host* host = FindHost(name)) out.push_back(host);
    }
    return out;
  };
  const std::vector<Host*> splittable = named(plan.partition_hosts);
  const std::vector<Host*> crashable = named(plan.crash_hosts);
  while (DeadlineAfter(scheduler_.Now(), plan.tick) <= end) {
    co_await Sleep(plan.tick);
    if (splittable.size() >= 2 && chance(plan.partition_probability)) {
      // A random split: shuffle (Fisher-Yates on our Rng), cut at 1..n-1.
      std::vector<Host*> order = splittable;
      for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
      const size_t cut = 1 + rng.Below(order.size() - 1);
      std::vector<std::string> a, b;
      for (size_t i = 0; i < order.size(); ++i) {
        (i < cut ? a : b).emplace_back(order[i]->name());
      }
      if (chance(plan.one_way_fraction)) {
        (void)network_->PartitionOneWay(a, b);
      } else {
        (void)network_->Partition(a, b);
      }
    } else if (network_->AnyCut() && chance(plan.heal_probability)) {
      network_->Heal();
    }
    if (chance(plan.crash_probability)) {
      std::vector<Host*> up;
      for (Host* host : crashable) {
        if (host->IsUp()) up.push_back(host);
      }
      if (!up.empty()) up[rng.Below(up.size())]->Crash();
    } else {
      std::vector<Host*> down;
      for (const auto& host : hosts_) {
        if (!host->IsUp()) down.push_back(host.get());
      }
      if (!down.empty() && chance(plan.restart_probability)) {
        (void)down[rng.Below(down.size())]->Restart();
      }
    }
  }
}

absl::Status World::RunFaultPlan(const FaultPlan& plan, const LivenessCheck& liveness) {
  if (absl::Status s = plan.Validate(); !s.ok()) return s;
  if (!liveness.condition) {
    return absl::InvalidArgumentError("RunFaultPlan: the LivenessCheck has no condition");
  }
  if (absl::Status s = network_->SetDefaultLink(plan.link); !s.ok()) return s;
  if (absl::Status s = SetDiskFaults(plan.disk); !s.ok()) return s;
  if (absl::Status s = SetCpuModel(plan.cpu); !s.ok()) return s;
  if (absl::Status s = ConfigureBuggify(plan.buggify, plan.buggify_enable_probability,
                                        plan.buggify_fire_probability);
      !s.ok()) {
    return s;
  }
  core_->Event("world.chaos", 0xc4a0ULL,
               absl::StrCat("world: chaos phase for ", FormatDuration(plan.chaos_duration)));
  Task<void> nemesis = Spawn(scheduler_, Nemesis(plan));
  if (absl::Status s = scheduler_.BlockOnTaskWithBudget(*nemesis.state(), {}); !s.ok()) {
    return s;
  }
  StopFaults();
  return CheckLiveness(liveness);
}

void World::StopFaults() {
  network_->Heal();
  LinkOptions calm = network_->DefaultLink();
  calm.loss = calm.duplicate = calm.reorder = calm.tail_probability = 0;
  (void)network_->SetDefaultLink(calm);
  (void)SetDiskFaults(DiskFaults{});
  buggify_->SetFiring(false);
  if (cpu_ != nullptr) {
    CpuModel model = cpu_->model();
    model.stall_probability = 0;
    cpu_->set_model(model);
  }
  for (const auto& host : hosts_) {
    if (!host->IsUp()) (void)host->Restart();
  }
  core_->Event("world.calm", 0xca1ULL, "world: faults stopped, all hosts up; liveness phase");
}

absl::Status World::CheckLiveness(const LivenessCheck& check) {
  if (!check.condition) {
    return absl::InvalidArgumentError("CheckLiveness: the LivenessCheck has no condition");
  }
  if (check.poll_interval <= Duration::zero() || check.budget < Duration::zero()) {
    return absl::InvalidArgumentError(
        "CheckLiveness: poll_interval must be positive and budget non-negative");
  }
  const Duration started = scheduler_.Elapsed();
  Task<void> checker = Spawn(scheduler_, [&check]() -> Co<void> {
    while (!check.condition()) co_await Sleep(check.poll_interval);
  });
  absl::Status status =
      scheduler_.BlockOnTaskWithBudget(*checker.state(), {.max_time = check.budget});
  if (status.ok()) return status;
  if (!absl::IsDeadlineExceeded(status)) return status;
  std::string report = absl::StrCat(
      "liveness violated: ", check.what, " did not hold within ", FormatDuration(check.budget),
      " after the faults stopped (at ", FormatDuration(started), "; ", scheduler_.RunSummary(),
      ")\n");
  if (check.pending) absl::StrAppend(&report, "pending: ", check.pending(), "\n");
  absl::StrAppend(&report, Report());
  absl::StrAppend(&report, "live tasks:\n", scheduler_.DescribeLiveTasks());
  return absl::DeadlineExceededError(report);
}

void World::Note(std::string_view text) {
  core_->Event("note", 0x707eULL ^ text.size(), absl::StrCat("note: ", std::string(text)));
}

uint64_t World::EventHash() const {
  return SplitMix64(core_->hash() ^ SplitMix64(network_->Sent()) ^
                    (network_->Delivered() << 1));
}

const std::deque<std::string>& World::events() const { return core_->events(); }

std::map<std::string, uint64_t> World::Counters() const {
  std::map<std::string, uint64_t> out(core_->counters().begin(), core_->counters().end());
  out["net.sent"] = network_->Sent();
  out["net.delivered"] = network_->Delivered();
  return out;
}

std::vector<std::string> World::FiredBuggifyPoints() const {
  std::vector<std::string> out;
  for (const auto& [name, point] : buggify_->points()) {
    if (point.fires > 0) out.push_back(name);
  }
  return out;
}

std::string World::BuggifyReport() const {
  std::string out;
  for (const auto& [name, point] : buggify_->points()) {
    if (point.fires == 0) continue;
    absl::StrAppend(&out, "  ", name, ": fired ", point.fires, " of ", point.evaluations,
                    " evaluations (first at ", FormatDuration(point.first_fire), ")\n");
  }
  return out;
}

std::string World::Report() const {
  std::string out = "world:\n  hosts:";
  for (const auto& host : hosts_) {
    absl::StrAppend(&out, " ", host->name(), host->IsUp() ? " up" : " DOWN", " (incarnation ",
                    host->incarnation(), ", ", host->TaskCount(), " tasks);");
  }
  absl::StrAppend(&out, "\n  counters:");
  for (const auto& [name, count] : Counters()) absl::StrAppend(&out, " ", name, "=", count);
  absl::StrAppend(&out, "\n");
  if (std::string fired = BuggifyReport(); !fired.empty()) {
    absl::StrAppend(&out, "  buggify points fired:\n", fired);
  }
  if (std::string flight = network_->DescribeInFlight(); !flight.empty()) {
    absl::StrAppend(&out, "  messages in flight:\n    ", flight);
  }
  absl::StrAppend(&out, "  event hash: 0x", absl::Hex(EventHash()), "\n");
  const auto& events = core_->events();
  if (!events.empty()) {
    const size_t shown = std::min<size_t>(events.size(), 20);
    absl::StrAppend(&out, "  last ", shown, " events:\n");
    for (size_t i = events.size() - shown; i < events.size(); ++i) {
      absl::StrAppend(&out, "    ", events[i], "\n");
    }
  }
  return out;
}

}  // namespace simsched
