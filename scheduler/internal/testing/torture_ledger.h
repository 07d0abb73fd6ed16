// Internal (tests only): the bookkeeping of the task-core torture test.
//
// Every coroutine frame the torture test runs holds one `TortureProbe` as its
// first local. A probe knows the probe of the frame that lent it something
// (its parent: the frame that awaits it inline, spawned and owns it, or whose
// lambda captures it runs in) and touches that parent's state when it is
// destroyed, as real RAII that uses a borrowed reference would. The
// `TortureLedger` records every construction, destruction and resumption and
// turns each broken rule into a readable violation:
//
//   * a probe constructed or destroyed twice (a frame run or freed twice);
//   * a probe destroyed after its parent (children must go first, innermost
//     first, as a C++ call stack unwinds), or a parent destroyed while
//     children it lent state to are alive;
//   * a frame resumed after its task was cancelled;
//   * a probe never destroyed (a leaked frame), checked by `CheckAllDestroyed`.
//
// The ledger is thread-safe (the thread-pool variant shares it between
// workers). The ids come from the plan (`torture_plan.h`): each frame of a
// plan runs at most once, so an id names one frame instance.
//
// Example:
//
//   TortureLedger ledger(/*id_count=*/plan.id_count);
//   {
//     TortureProbe parent(ledger, 1, nullptr);
//     TortureProbe child(ledger, 2, &parent);
//   }                                  // child first: no violation
//   ledger.CheckAllDestroyed();
//   EXPECT_THAT(ledger.violations(), IsEmpty());

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_LEDGER_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_LEDGER_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace simsched::internal {

class TortureLedger {
 public:
  // Ids are in [1, id_count).
  explicit TortureLedger(uint32_t id_count);
  TortureLedger(const TortureLedger&) = delete;
  TortureLedger& operator=(const TortureLedger&) = delete;

  void OnConstruct(uint32_t id);
  // `parent` is 0 for a probe that borrows nothing.
  void OnDestroy(uint32_t id, uint32_t parent, int children_alive);
  bool IsLive(uint32_t id) const;

  // A frame of the task whose root frame is `task_key` resumed after a
  // suspension.
  void OnResume(uint32_t frame, uint32_t task_key);
  // The task whose root frame is `task_key` was cancelled and its frames are
  // gone: none of them may resume from now on.
  void MarkCancelled(uint32_t task_key);

  void AddViolation(std::string violation);

  // Records a violation for every probe constructed and never destroyed.
  void CheckAllDestroyed();

  std::vector<std::string> violations() const;
  size_t constructed() const;
  size_t live() const;
  // A digest of every event in order: equal for equal runs of one seed on the
  // TestScheduler.
  uint64_t EventHash() const;

 private:
  enum class ProbeState : uint8_t { kNotYet, kLive, kDestroyed };

  void MixLocked(uint64_t word);
  bool ValidLocked(uint32_t id, const char* what);

  mutable std::mutex mu_;
  std::vector<ProbeState> probes_;
  std::vector<bool> cancelled_tasks_;
  std::vector<std::string> violations_;
  size_t constructed_ = 0;
  size_t live_ = 0;
  uint64_t hash_ = 0x9e3779b97f4a7c15ULL;
};

// TortureProbe
//
// The RAII object in every torture frame (and in a spawned lambda's
// captures). Movable so a lambda capture can hold one: the identity moves
// with it and the moved-from probe reports nothing.
class TortureProbe {
 public:
  TortureProbe(TortureLedger& ledger, uint32_t id, TortureProbe* parent);
  TortureProbe(TortureProbe&& other) noexcept;
  TortureProbe& operator=(TortureProbe&&) = delete;
  TortureProbe(const TortureProbe&) = delete;
  TortureProbe& operator=(const TortureProbe&) = delete;
  ~TortureProbe();

  uint32_t id() const { return id_; }

 private:
  static constexpr uint64_t kAlive = 0x70726f6265616c76ULL;  // "probealv"
  static constexpr uint64_t kDead = 0xdeaddeaddeaddeadULL;

  TortureLedger* ledger_;
  uint32_t id_;  // 0 once moved from
  TortureProbe* parent_;
  uint32_t parent_id_;  // kept here: the parent's memory may be gone
  // The parent state a child touches: written by children on any thread.
  std::atomic<int> children_alive_{0};
  std::atomic<uint64_t> magic_{kAlive};
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_LEDGER_H_
