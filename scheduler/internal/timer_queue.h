// Internal: TimerQueue, the timer bookkeeping both schedulers share.
//
// A binary heap of (deadline, start sequence) entries over a slab of slots
// that hold the wakers. Timers with equal deadlines fire in the order they
// were started. Cancelling is O(1): the slot's generation moves on and the
// heap entry is skipped when it surfaces; if stale entries pile up (long
// timers cancelled early, over and over) the heap is rebuilt without them.
// A TimerId packs (generation, slot + 1), so zero is never a valid id.
//
// Not thread-safe: the TestScheduler is confined to one thread, and the
// ThreadPoolScheduler holds its timer lock around every call.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "scheduler/scheduler.h"
#include "scheduler/waker.h"

namespace simsched::internal {

class TimerQueue {
 public:
  // Add()
  //
  // Starts a timer that will hand out `waker` at `deadline`. A deadline at
  // the end of time is never reached: nothing is kept (the waker is dropped)
  // and the id returned is one `Cancel` ignores.
  TimerId Add(Instant deadline, Waker waker) {
    if (deadline == kEndOfTime) return TimerId{};
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot& entry = slots_[slot];
    entry.waker = std::move(waker);
    entry.armed = true;
    heap_.push_back(Entry{deadline, sequence_++, slot, entry.generation});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    ++live_;
    return TimerId{(uint64_t{entry.generation} << 32) | (uint64_t{slot} + 1)};
  }

  // Cancel()
  //
  // Stops a timer that has not fired and returns its waker (so a caller
  // holding a lock can release it after unlocking). Unknown, fired or
  // already cancelled ids return an empty waker.
  Waker Cancel(TimerId timer) {
    if (timer.value == 0) return Waker();
    const uint32_t slot = static_cast<uint32_t>(timer.value) - 1;
    const uint32_t generation = static_cast<uint32_t>(timer.value >> 32);
    if (slot >= slots_.size()) return Waker();
    Slot& entry = slots_[slot];
    if (!entry.armed || entry.generation != generation) return Waker();
    Waker waker = Disarm(slot);
    if (++stale_ > 1024 && stale_ > heap_.size() / 2) {
      std::erase_if(heap_, [this](const Entry& e) { return !IsLive(e); });
      std::make_heap(heap_.begin(), heap_.end(), Later{});
      stale_ = 0;
    }
    return waker;
  }

  // NextDeadline()
  //
  // The earliest deadline of a live timer, or Instant::max() if none.
  Instant NextDeadline() {
    DropStaleTop();
    return heap_.empty() ? Instant::max() : heap_.front().deadline;
  }

  // PopDue()
  //
  // Moves the wakers of every live timer due at `now` into `due`, in
  // (deadline, start order).
  void PopDue(Instant now, std::vector<Waker>& due) {
    while (!heap_.empty() && heap_.front().deadline <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      const Entry fired = heap_.back();
      heap_.pop_back();
      if (!IsLive(fired)) {
        --stale_;
        continue;
      }
      due.push_back(Disarm(fired.slot));
    }
  }

  // Timers started and neither fired nor cancelled.
  size_t live() const { return live_; }

 private:
  struct Entry {
    Instant deadline;
    uint64_t sequence;
    uint32_t slot;
    uint32_t generation;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      if (a.deadline != b.deadline) return a.deadline > b.deadline;
      return a.sequence > b.sequence;
    }
  };
  struct Slot {
    Waker waker;
    uint32_t generation = 0;
    bool armed = false;
  };

  bool IsLive(const Entry& e) const {
    const Slot& s = slots_[e.slot];
    return s.armed && s.generation == e.generation;
  }

  Waker Disarm(uint32_t slot) {
    Slot& entry = slots_[slot];
    Waker waker = std::move(entry.waker);
    entry.armed = false;
    ++entry.generation;
    free_slots_.push_back(slot);
    --live_;
    return waker;
  }

  void DropStaleTop() {
    while (!heap_.empty() && !IsLive(heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      heap_.pop_back();
      --stale_;
    }
  }

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  uint64_t sequence_ = 0;
  size_t live_ = 0;
  size_t stale_ = 0;  // cancelled entries still in the heap
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
