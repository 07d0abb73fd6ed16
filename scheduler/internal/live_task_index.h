// Internal: the TestScheduler's index of live tasks, in id order.
//
// One 8-byte slot per task in a vector, in spawn (= id) order: a task's
// header pointer while it lives, its id (tagged) once it has finished. The
// header remembers its slot (`TaskHeader::live_slot`), so adding and removing
// are O(1) with no hashing; finding a task by id is a binary search (ids only
// grow, so the slots are sorted). Finished slots at the end are dropped at
// once; the others are squeezed out when the vector is full and they make
// up over half of it (instead of growing it), so the slots in use stay
// within the vector's capacity, which is at most four times the peak live
// count (16 at least), whatever the order tasks finish in. Squeezing
// renumbers every live task's slot, a write to each header: done as tasks
// finish, it cost W2 (100,000 timers) a cache miss a task. This replaces a
// doubly linked list through the headers plus an id -> header hash map
// (16 bytes of header and about 22 bytes of map per task).
//
// Example:
//
//   LiveTaskIndex live;
//   live.Add(&header);                     // ids must come in increasing order
//   TaskHeader* h = live.Find(TaskId{7});  // null if task 7 is not live
//   live.ForEach([](TaskHeader& t) { ... });  // id order; must not Add/Remove
//   live.Remove(header);                   // false if it was not in the index

#ifndef SIMSCHED_SCHEDULER_INTERNAL_LIVE_TASK_INDEX_H_
#define SIMSCHED_SCHEDULER_INTERNAL_LIVE_TASK_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "scheduler/internal/check.h"
#include "scheduler/internal/task_header.h"

namespace simsched::internal {

class LiveTaskIndex {
 public:
  // Adds a task whose id is larger than every id added before (and not 0).
  [[gnu::always_inline]] void Add(TaskHeader* task) {
    // Inline and short (every spawn): the limit is checked only when the
    // vector grows, whose capacity never passes it.
    if (slots_.size() == slots_.capacity()) [[unlikely]] Grow();
    // (Tells the compiler that push_back has room, so its growth path goes.)
    if (slots_.size() >= slots_.capacity()) __builtin_unreachable();
    task->live_slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(reinterpret_cast<uintptr_t>(task));
    ++live_;
  }

  // Removes a task added before; false (and nothing changes) if it is not in
  // the index.
  bool Remove(TaskHeader& task) {
    const uint32_t slot = task.live_slot;
    if (slot >= slots_.size() || slots_[slot] != reinterpret_cast<uintptr_t>(&task)) return false;
    task.live_slot = TaskHeader::kNoLiveSlot;
    --live_;
    if (slot + 1 == slots_.size()) {
      slots_.pop_back();
      while (!slots_.empty() && IsFinished(slots_.back())) slots_.pop_back();
    } else {
      // Tag bit: a header pointer is at least 8-aligned, so bit 0 is free.
      // Squeezed out by Grow() when the vector is full.
      slots_[slot] = (task.metadata.id.value << 1) | 1;
    }
    return true;
  }

  // The live task with `id`, or null.
  TaskHeader* Find(TaskId id) const {
    size_t lo = 0, hi = slots_.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      const uint64_t at = IdOf(slots_[mid]);
      if (at == id.value) return IsFinished(slots_[mid]) ? nullptr : Header(slots_[mid]);
      if (at < id.value) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return nullptr;
  }
  bool Contains(TaskId id) const { return Find(id) != nullptr; }

  // Calls `f(TaskHeader&)` for every live task in id order. `f` must not add
  // or remove tasks.
  template <typename F>
  void ForEach(F&& f) const {
    for (uintptr_t slot : slots_) {
      if (!IsFinished(slot)) f(*Header(slot));
    }
  }

  size_t size() const { return live_; }
  // Slots in use, live and finished (for tests of the squeezing bound).
  size_t slot_count() const { return slots_.size(); }

  void Clear() {
    slots_.clear();
    live_ = 0;
  }

 private:
  static bool IsFinished(uintptr_t slot) { return (slot & 1) != 0; }
  static TaskHeader* Header(uintptr_t slot) { return reinterpret_cast<TaskHeader*>(slot); }
  static uint64_t IdOf(uintptr_t slot) {
    return IsFinished(slot) ? slot >> 1 : Header(slot)->metadata.id.value;
  }

  // Room for one more slot: the finished slots squeezed out if they are over
  // half of the full vector (at least half of it is then free), else twice
  // the capacity, at most kNoLiveSlot slots (a slot number must differ from
  // kNoLiveSlot). So the capacity doubles only while at least half of it is
  // live: it stays within four times the peak live count (16 at least).
  [[gnu::noinline]] void Grow() {
    const size_t size = slots_.size();
    if (size - live_ > live_) {
      Compact();
      return;
    }
    SIMSCHED_CHECK(size < TaskHeader::kNoLiveSlot, "too many live tasks");
    slots_.reserve(std::min<size_t>(std::max<size_t>(2 * size, 16), TaskHeader::kNoLiveSlot));
  }

  // Drops the finished slots and renumbers the live tasks' slots.
  void Compact() {
    size_t out = 0;
    for (uintptr_t slot : slots_) {
      if (IsFinished(slot)) continue;
      Header(slot)->live_slot = static_cast<uint32_t>(out);
      slots_[out++] = slot;
    }
    slots_.resize(out);
  }

  std::vector<uintptr_t> slots_;
  size_t live_ = 0;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_LIVE_TASK_INDEX_H_
