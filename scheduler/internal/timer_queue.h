// Internal: TimerQueue, the timer bookkeeping both schedulers share.
//
// Timers are 16-byte keys in a RadixHeap (scheduler/internal/radix_heap.h)
// over a slab of slots that hold the wakers. A key is 128 bits: the deadline
// in the high word, and (start sequence, slot) in the low word, so a single
// unsigned comparison orders timers by (deadline, start order); equal
// deadlines fire in the order they were started. Deadlines only move forward
// past the last fired one in practice (virtual time never goes back), which
// is what a radix heap needs to pop in amortized constant time; a deadline
// already past when started is still ordered exactly (the heap keeps such
// keys apart). Nothing is allocated per timer: slots are reused through a
// free list threaded through the slab, and the heap keeps its capacity.
//
// Cancelling is O(1): the slot is disarmed (its generation moves on) and the
// heap's key is dropped when a scan meets it; if stale keys pile up (long
// timers cancelled early, over and over) they are all dropped at once.
// A TimerId packs (generation, slot + 1), so zero is never a valid id.
// Sequences are 32 bits; the rare queue that starts 2^32 timers renumbers
// its live entries (keeping their order) and carries on.
//
// Not thread-safe: the TestScheduler is confined to one thread, and the
// ThreadPoolScheduler holds its timer lock around every call.
//
//   TimerQueue timers;
//   TimerId id = timers.Add(deadline, CurrentWaker());
//   std::vector<Waker> due;
//   timers.PopDue(now, due);  // wakers of timers at or before `now`, in order
//   timers.Cancel(id);        // no-op once fired

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "scheduler/internal/radix_heap.h"
#include "scheduler/scheduler.h"
#include "scheduler/waker.h"

namespace simsched::internal {

class TimerQueue {
 public:
  // Timers started before the sequence is renumbered. Tests pass a small
  // limit to exercise the renumbering.
  static constexpr uint64_t kSequenceLimit = uint64_t{1} << 32;

  TimerQueue() = default;
  explicit TimerQueue(uint64_t sequence_limit) : sequence_limit_(sequence_limit) {}
  // A moved-from queue is empty (and its ids are unknown to it).
  TimerQueue(TimerQueue&& other) noexcept { Swap(other); }
  TimerQueue& operator=(TimerQueue&& other) noexcept {
    TimerQueue old(std::move(other));
    Swap(old);
    return *this;  // `old` now holds this queue's former timers and drops them
  }

  // Add()
  //
  // Starts a timer that will hand out `waker` at `deadline`. A deadline at
  // the end of time is never reached: nothing is kept (the waker is dropped)
  // and the id returned is one `Cancel` ignores.
  TimerId Add(Instant deadline, Waker waker) {
    if (deadline == kEndOfTime) return TimerId{};
    if (sequence_ >= sequence_limit_) [[unlikely]] Renumber();
    uint32_t slot = free_head_;
    if (slot != kNoSlot) {
      free_head_ = slots_[slot].sequence;  // a free slot's sequence links the list
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot& entry = slots_[slot];
    entry.waker = std::move(waker);
    ++entry.generation;  // odd: armed
    entry.sequence = static_cast<uint32_t>(sequence_);
    const Key key = MakeKey(deadline, static_cast<uint32_t>(sequence_), slot);
    ++sequence_;
    keys_.Push(key);
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
    const Slot& entry = slots_[slot];
    if (!Armed(entry) || entry.generation != generation) return Waker();
    Waker waker = Disarm(slot);
    if (++stale_ > 1024 && stale_ > keys_.size() / 2) Rebuild();
    return waker;
  }

  // NextDeadline()
  //
  // The earliest deadline of a live timer, or Instant::max() if none.
  Instant NextDeadline() {
    const Key* min = keys_.Min(KeepLive());
    return min == nullptr ? Instant::max() : DeadlineOf(*min);
  }

  // PopDue()
  //
  // Moves the wakers of every live timer due at `now` into `due`, in
  // (deadline, start order).
  void PopDue(Instant now, std::vector<Waker>& due) {
    const uint64_t limit = BiasedDeadline(now);
    for (;;) {
      const Key* min = keys_.Min(KeepLive());
      if (min == nullptr || High(*min) > limit) break;
      const uint32_t slot = SlotOf(*min);
      keys_.Pop();
      due.push_back(Disarm(slot));
    }
  }

  // Timers started and neither fired nor cancelled.
  size_t live() const { return live_; }

 private:
  void Swap(TimerQueue& other) noexcept {
    std::swap(keys_, other.keys_);
    slots_.swap(other.slots_);
    std::swap(free_head_, other.free_head_);
    std::swap(sequence_, other.sequence_);
    std::swap(sequence_limit_, other.sequence_limit_);
    std::swap(live_, other.live_);
    std::swap(stale_, other.stale_);
  }

  // (biased deadline << 64) | (sequence << 32) | slot. The sequence is unique
  // among entries, so the slot bits never decide an order.
  using Key = RadixHeap::Key;

  struct Slot {
    Waker waker;
    uint32_t generation = 0;  // odd while armed
    uint32_t sequence = 0;    // armed: the live entry's; free: the next free slot
  };

  static constexpr uint32_t kNoSlot = UINT32_MAX;

  // Maps signed nanoseconds onto unsigned order (flip the sign bit).
  static uint64_t BiasedDeadline(Instant t) {
    return static_cast<uint64_t>(t.time_since_epoch().count()) ^ (uint64_t{1} << 63);
  }
  static Key MakeKey(Instant deadline, uint32_t sequence, uint32_t slot) {
    return (Key{BiasedDeadline(deadline)} << 64) | (Key{sequence} << 32) | slot;
  }
  static uint64_t High(Key key) { return static_cast<uint64_t>(key >> 64); }
  static Instant DeadlineOf(Key key) {
    return Instant(Duration(static_cast<int64_t>(High(key) ^ (uint64_t{1} << 63))));
  }
  static uint32_t SequenceOf(Key key) { return static_cast<uint32_t>(key >> 32); }
  static uint32_t SlotOf(Key key) { return static_cast<uint32_t>(key); }

  static bool Armed(const Slot& s) { return (s.generation & 1) != 0; }
  bool IsLive(Key key, uint32_t slot) const {
    const Slot& s = slots_[slot];
    return Armed(s) && s.sequence == SequenceOf(key);
  }

  Waker Disarm(uint32_t slot) {
    Slot& entry = slots_[slot];
    Waker waker = std::move(entry.waker);
    ++entry.generation;  // even: free
    entry.sequence = free_head_;
    free_head_ = slot;
    --live_;
    return waker;
  }

  // The heap's filter: a key is kept while its timer is armed; each key
  // dropped is one stale key fewer.
  struct KeepLiveFn {
    TimerQueue* queue;
    bool operator()(Key key) const {
      if (queue->IsLive(key, SlotOf(key))) return true;
      --queue->stale_;
      return false;
    }
  };
  KeepLiveFn KeepLive() { return KeepLiveFn{this}; }

  // Drops the stale keys.
  void Rebuild() {
    keys_.Filter(KeepLive());
    stale_ = 0;
  }

  // Gives the live entries the sequences 0..n-1 in their current order, so
  // 32 bits suffice however many timers a queue starts.
  void Renumber() {
    std::vector<Key> keys;
    keys_.Drain(keys);
    keys.erase(std::remove_if(keys.begin(), keys.end(),
                              [this](Key key) { return !IsLive(key, SlotOf(key)); }),
               keys.end());
    stale_ = 0;
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < keys.size(); ++i) {
      const uint32_t slot = SlotOf(keys[i]);
      const uint32_t sequence = static_cast<uint32_t>(i);
      keys_.Push((keys[i] >> 64 << 64) | (Key{sequence} << 32) | slot);
      slots_[slot].sequence = sequence;
    }
    sequence_ = keys.size();
  }

  // One key per armed timer, and stale keys not yet dropped. Deadlines
  // before the epoch are rare (virtual time starts there; real time is long
  // past it).
  RadixHeap keys_{BiasedDeadline(Instant{})};
  std::vector<Slot> slots_;
  uint32_t free_head_ = kNoSlot;
  uint64_t sequence_ = 0;
  uint64_t sequence_limit_ = kSequenceLimit;
  size_t live_ = 0;
  size_t stale_ = 0;  // keys of cancelled timers still in keys_
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
