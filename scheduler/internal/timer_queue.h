// Internal: TimerQueue, the timer bookkeeping both schedulers share.
//
// A 4-ary min-heap of 16-byte entries over a slab of slots that hold the
// wakers. An entry is one 128-bit key: the deadline in the high word, and
// (start sequence, slot) in the low word, so a single unsigned comparison
// orders timers by (deadline, start order); equal deadlines fire in the order
// they were started. A 4-ary heap is half as deep as a binary one, and a
// node's four children share one cache line, which is what popping
// costs. Nothing is allocated per timer: slots are reused through a free
// list threaded through the slab, and the heap's vector keeps its capacity.
//
// Cancelling is O(1): the slot is disarmed (its generation moves on) and the
// heap entry is skipped when it surfaces; if stale entries pile up (long
// timers cancelled early, over and over) the heap is rebuilt without them.
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
//   Waker next;
//   while (timers.PopNextDue(now, next)) std::move(next).Wake();  // one at a time
//   timers.Cancel(id);        // no-op once fired

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

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
    if (heap_.empty()) heap_.resize(kRoot);  // the padding before the root
    heap_.emplace_back();
    SiftUp(heap_.size() - 1, key);
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
    if (++stale_ > 1024 && stale_ > entries() / 2) Rebuild();
    return waker;
  }

  // NextDeadline()
  //
  // The earliest deadline of a live timer, or Instant::max() if none.
  Instant NextDeadline() {
    DropStaleTop();
    return entries() == 0 ? Instant::max() : DeadlineOf(heap_[kRoot]);
  }

  // PopNextDue()
  //
  // Moves the waker of the first live timer due at `now` (in deadline, start
  // order) into `out` and returns true; returns false if none is due.
  bool PopNextDue(Instant now, Waker& out) {
    const uint64_t limit = BiasedDeadline(now);
    while (entries() > 0 && High(heap_[kRoot]) <= limit) {
      const Key fired = heap_[kRoot];
      PopTop();
      const uint32_t slot = SlotOf(fired);
      if (!IsLive(fired, slot)) {
        --stale_;
        continue;
      }
      out = Disarm(slot);
      return true;
    }
    return false;
  }

  // PopDue()
  //
  // Moves the wakers of every live timer due at `now` into `due`, in
  // (deadline, start order).
  void PopDue(Instant now, std::vector<Waker>& due) {
    Waker waker;
    while (PopNextDue(now, waker)) due.push_back(std::move(waker));
  }

  // Timers started and neither fired nor cancelled.
  size_t live() const { return live_; }

 private:
  void Swap(TimerQueue& other) noexcept {
    heap_.swap(other.heap_);
    slots_.swap(other.slots_);
    std::swap(free_head_, other.free_head_);
    std::swap(sequence_, other.sequence_);
    std::swap(sequence_limit_, other.sequence_limit_);
    std::swap(live_, other.live_);
    std::swap(stale_, other.stale_);
  }

  // (biased deadline << 64) | (sequence << 32) | slot. The sequence is unique
  // among entries, so the slot bits never decide an order.
  using Key = unsigned __int128;

  struct Slot {
    Waker waker;
    uint32_t generation = 0;  // odd while armed
    uint32_t sequence = 0;    // armed: the live entry's; free: the next free slot
  };

  static constexpr uint32_t kNoSlot = UINT32_MAX;

  // The heap's storage starts on a cache line and the root sits at index
  // kRoot, so that every node's four children (at 4p - 8 .. 4p - 5) fill
  // exactly one 64-byte line: one miss per level when popping.
  static constexpr size_t kRoot = 3;
  static constexpr size_t kLine = 64;
  static_assert(4 * sizeof(Key) == kLine);
  template <typename T>
  struct LineAllocator {
    using value_type = T;
    LineAllocator() = default;
    template <typename U>
    LineAllocator(const LineAllocator<U>&) {}  // NOLINT: allocator rebinding
    T* allocate(size_t n) {
      return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kLine}));
    }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{kLine}); }
    friend bool operator==(const LineAllocator&, const LineAllocator&) { return true; }
  };

  size_t entries() const { return heap_.empty() ? 0 : heap_.size() - kRoot; }

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

  // Puts `key` at the hole `i`, moving it up past larger parents.
  void SiftUp(size_t i, Key key) {
    Key* h = heap_.data();
    while (i > kRoot) {
      const size_t parent = i / 4 + 2;
      if (!(key < h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = key;
  }

  // Removes the root. The hole goes down along the smallest children to a
  // leaf, then the old last entry sifts up from there: it came from the
  // bottom, so it rarely moves, and each level costs only the children's
  // comparisons.
  void PopTop() {
    const Key last = heap_.back();
    heap_.pop_back();
    const size_t n = heap_.size();
    if (n == kRoot) {
      heap_.clear();
      return;
    }
    Key* h = heap_.data();
    size_t hole = kRoot;
    for (;;) {
      const size_t first = 4 * hole - 8;
      size_t best;
      if (first + 4 <= n) {
        const size_t a = h[first + 1] < h[first] ? first + 1 : first;
        const size_t b = h[first + 3] < h[first + 2] ? first + 3 : first + 2;
        best = h[b] < h[a] ? b : a;
      } else if (first < n) {
        best = first;
        for (size_t c = first + 1; c < n; ++c) {
          if (h[c] < h[best]) best = c;
        }
      } else {
        break;
      }
      h[hole] = h[best];
      hole = best;
    }
    SiftUp(hole, last);
  }

  void DropStaleTop() {
    while (entries() > 0) {
      const Key top = heap_[kRoot];
      if (IsLive(top, SlotOf(top))) return;
      PopTop();
      --stale_;
    }
  }

  // Drops the stale entries. A sorted array is a valid heap.
  void Rebuild() {
    if (heap_.empty()) return;
    const auto stale = std::remove_if(heap_.begin() + kRoot, heap_.end(),
                                      [this](Key key) { return !IsLive(key, SlotOf(key)); });
    heap_.erase(stale, heap_.end());
    std::sort(heap_.begin() + kRoot, heap_.end());
    stale_ = 0;
  }

  // Gives the live entries the sequences 0..n-1 in their current order, so
  // 32 bits suffice however many timers a queue starts.
  void Renumber() {
    Rebuild();
    for (size_t i = 0; i < entries(); ++i) {
      Key& key = heap_[kRoot + i];
      const uint32_t slot = SlotOf(key);
      const uint32_t sequence = static_cast<uint32_t>(i);
      key = (key >> 64 << 64) | (Key{sequence} << 32) | slot;
      slots_[slot].sequence = sequence;
    }
    sequence_ = entries();
  }

  std::vector<Key, LineAllocator<Key>> heap_;  // empty, or kRoot padding + the heap
  std::vector<Slot> slots_;
  uint32_t free_head_ = kNoSlot;
  uint64_t sequence_ = 0;
  uint64_t sequence_limit_ = kSequenceLimit;
  size_t live_ = 0;
  size_t stale_ = 0;  // cancelled entries still in the heap
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
