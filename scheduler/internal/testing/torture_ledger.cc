#include "scheduler/internal/testing/torture_ledger.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace simsched::internal {

TortureLedger::TortureLedger(uint32_t id_count)
    : probes_(id_count, ProbeState::kNotYet), cancelled_tasks_(id_count, false) {}

void TortureLedger::MixLocked(uint64_t word) {
  // splitmix64's finalizer over a running xor: order-sensitive and cheap.
  uint64_t z = (hash_ ^ word) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  hash_ = z ^ (z >> 31);
}

bool TortureLedger::ValidLocked(uint32_t id, const char* what) {
  if (id != 0 && id < probes_.size()) return true;
  violations_.push_back(absl::StrCat(what, " of unknown probe id ", id));
  return false;
}

void TortureLedger::OnConstruct(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  MixLocked(uint64_t{1} << 32 | id);
  if (!ValidLocked(id, "construction")) return;
  if (probes_[id] != ProbeState::kNotYet) {
    violations_.push_back(absl::StrCat("frame ", id, " was constructed twice"));
    return;
  }
  probes_[id] = ProbeState::kLive;
  ++constructed_;
  ++live_;
}

void TortureLedger::OnDestroy(uint32_t id, uint32_t parent, int children_alive) {
  std::lock_guard<std::mutex> lock(mu_);
  MixLocked(uint64_t{2} << 32 | id);
  if (!ValidLocked(id, "destruction")) return;
  if (probes_[id] != ProbeState::kLive) {
    violations_.push_back(absl::StrCat("frame ", id, " was destroyed ",
                                       probes_[id] == ProbeState::kDestroyed
                                           ? "twice"
                                           : "without having been constructed"));
    return;
  }
  probes_[id] = ProbeState::kDestroyed;
  --live_;
  if (children_alive != 0) {
    violations_.push_back(absl::StrCat(
        "frame ", id, " was destroyed while ", children_alive,
        " frame(s) it lent state to were alive (children must be destroyed first)"));
  }
  if (parent != 0 && parent < probes_.size() && probes_[parent] != ProbeState::kLive) {
    violations_.push_back(absl::StrCat("frame ", id, " was destroyed after frame ", parent,
                                       ", whose state it borrows (use-after-free in real code)"));
  }
}

bool TortureLedger::IsLive(uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id < probes_.size() && probes_[id] == ProbeState::kLive;
}

void TortureLedger::OnResume(uint32_t frame, uint32_t task_key) {
  std::lock_guard<std::mutex> lock(mu_);
  MixLocked(uint64_t{3} << 32 | frame);
  if (!ValidLocked(task_key, "resumption")) return;
  if (cancelled_tasks_[task_key]) {
    violations_.push_back(absl::StrCat("frame ", frame, " resumed after its task (root frame ",
                                       task_key, ") was cancelled"));
  }
}

void TortureLedger::MarkCancelled(uint32_t task_key) {
  std::lock_guard<std::mutex> lock(mu_);
  MixLocked(uint64_t{4} << 32 | task_key);
  if (ValidLocked(task_key, "cancellation")) cancelled_tasks_[task_key] = true;
}

void TortureLedger::AddViolation(std::string violation) {
  std::lock_guard<std::mutex> lock(mu_);
  violations_.push_back(std::move(violation));
}

void TortureLedger::CheckAllDestroyed() {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t id = 1; id < probes_.size(); ++id) {
    if (probes_[id] == ProbeState::kLive) {
      violations_.push_back(absl::StrCat("frame ", id, " was never destroyed (leaked)"));
    }
  }
}

std::vector<std::string> TortureLedger::violations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return violations_;
}

size_t TortureLedger::constructed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return constructed_;
}

size_t TortureLedger::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

uint64_t TortureLedger::EventHash() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hash_;
}

TortureProbe::TortureProbe(TortureLedger& ledger, uint32_t id, TortureProbe* parent)
    : ledger_(&ledger), id_(id), parent_(parent), parent_id_(parent != nullptr ? parent->id_ : 0) {
  ledger_->OnConstruct(id_);
  if (parent_ != nullptr) parent_->children_alive_.fetch_add(1, std::memory_order_acq_rel);
}

TortureProbe::TortureProbe(TortureProbe&& other) noexcept
    : ledger_(other.ledger_),
      id_(std::exchange(other.id_, 0)),
      parent_(std::exchange(other.parent_, nullptr)),
      parent_id_(other.parent_id_),
      children_alive_(other.children_alive_.exchange(0)) {}

TortureProbe::~TortureProbe() {
  if (id_ == 0) return;  // moved from
  const uint32_t parent_id = parent_id_;
  // Touch the parent only while the ledger says it is alive, so an order bug
  // is reported as a violation instead of crashing the default build (ASan
  // still sees any access to a freed parent the check lets through).
  if (parent_ != nullptr && ledger_->IsLive(parent_id)) {
    if (parent_->magic_.load(std::memory_order_relaxed) != kAlive) {
      ledger_->AddViolation(absl::StrCat("frame ", id_, " found its parent frame ", parent_id,
                                         " overwritten at destruction"));
    }
    parent_->children_alive_.fetch_sub(1, std::memory_order_acq_rel);
  }
  ledger_->OnDestroy(id_, parent_id, children_alive_.load(std::memory_order_acquire));
  magic_.store(kDead, std::memory_order_relaxed);
}

}  // namespace simsched::internal
