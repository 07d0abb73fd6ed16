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
// A slot is 16 bytes: the waker (a task pointer and a poll sequence number)
// and, in the waker's tail padding, one word: whether the slot is armed, and
// the start sequence of its timer, which also tells its heap entry from a
// stale one and serves as the generation of the timer's id. A TimerId packs
// (start sequence, slot + 1), so zero is never a valid id.
//
// Cancelling is O(1): the slot is disarmed and the heap entry is skipped
// when it surfaces (its sequence no longer matches the slot's); if stale
// entries pile up (long timers cancelled early, over and over) the heap is
// rebuilt without them.
//
// Sequences count to 2^29; the rare queue that starts that many timers
// renumbers its live entries (keeping their order; the slot keeps its
// timer's id sequence and a mark that its heap entry was renumbered, so ids
// survive it) and carries on in the other half of a 30-bit space (an epoch
// bit), so a stale id of this epoch or the one before never matches a live
// timer. One older than that (at least a whole epoch, about 2^29 starts,
// old) would cancel the timer in its slot if that has the very same
// sequence, as a 32-bit generation per slot once wrapped after 2^31 reuses.
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

#include "scheduler/internal/check.h"
#include "scheduler/scheduler.h"
#include "scheduler/waker.h"

namespace simsched::internal {

class TimerQueue {
 public:
  // Timers started before the sequence is renumbered. Tests pass a small
  // limit to exercise the renumbering.
  static constexpr uint64_t kSequenceLimit = uint64_t{1} << 29;

  TimerQueue() = default;
  explicit TimerQueue(uint64_t sequence_limit)
      : sequence_limit_(std::clamp<uint64_t>(sequence_limit, 1, kSequenceLimit)) {}
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
  [[gnu::always_inline]] TimerId Add(Instant deadline, Waker waker) {
    if (deadline == kEndOfTime) return TimerId{};
    if (sequence_ >= sequence_limit_) [[unlikely]] Renumber();
    // Every slot is armed or free (growth, out of line, links the new ones
    // onto the free list), so taking one is a pop.
    if (free_head_ == kNoSlot) [[unlikely]] GrowSlots();
    const uint32_t slot = free_head_;
    free_head_ = slots_[slot].word;  // a free slot's word links the list
    Slot& entry = slots_[slot];
    // A free slot's waker is empty (Disarm moved it out): saying so drops
    // the release of its old value.
    if (entry.waker) __builtin_unreachable();
    entry.waker = std::move(waker);
    const uint32_t sequence = epoch_ | static_cast<uint32_t>(sequence_++);
    entry.word = kArmed | sequence;
    const Key key = MakeKey(deadline, sequence, slot);
    if (heap_.empty()) heap_.resize(kRoot);  // the padding before the root
    heap_.emplace_back();
    SiftUp(heap_.size() - 1, key);
    ++live_;
    return TimerId{(uint64_t{sequence} << 32) | (uint64_t{slot} + 1)};
  }

  // Cancel()
  //
  // Stops a timer that has not fired and returns its waker (so a caller
  // holding a lock can release it after unlocking). Unknown, fired or
  // already cancelled ids return an empty waker.
  Waker Cancel(TimerId timer) {
    if (timer.value == 0) return Waker();
    const uint32_t slot = static_cast<uint32_t>(timer.value) - 1;
    const uint64_t sequence = timer.value >> 32;
    if (slot >= slots_.size()) return Waker();
    const uint32_t word = slots_[slot].word;
    if ((word & kArmed) == 0 || (word & kSequenceMask) != sequence) return Waker();
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
      // With no cancelled entry in the heap (stale_ is exact), every entry
      // is its slot's armed timer's.
      if (stale_ != 0 && !IsLive(fired, slot)) [[unlikely]] {
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

  // Starts loading the slot of the earliest timer, which the next
  // PopNextDue reads: slots are taken in start order and fire in deadline
  // order, so with many timers that read is a cache miss.
  void PrefetchNext() const {
    if (entries() == 0) return;
    const Slot* slot = &slots_[SlotOf(heap_[kRoot])];
    // g++ 12 drops a prefetch whose address is computed under a condition;
    // the empty asm, which takes the address, keeps it.
    asm volatile("" : : "r"(slot));
    __builtin_prefetch(slot);
  }

 private:
  void Swap(TimerQueue& other) noexcept {
    heap_.swap(other.heap_);
    slots_.swap(other.slots_);
    std::swap(free_head_, other.free_head_);
    std::swap(sequence_, other.sequence_);
    std::swap(sequence_limit_, other.sequence_limit_);
    std::swap(epoch_, other.epoch_);
    std::swap(renumbered_below_, other.renumbered_below_);
    std::swap(live_, other.live_);
    std::swap(stale_, other.stale_);
  }

  // (biased deadline << 64) | (sequence << 32) | slot. The sequence is unique
  // among entries, so the slot bits never decide an order.
  using Key = unsigned __int128;

  // The waker's tail padding holds `word` (the ABI lets a potentially
  // overlapping member's padding be reused): 16 bytes, not 24.
  struct Slot {
    [[no_unique_address]] Waker waker;  // empty while free
    // Armed: kArmed, kRenumbered if its heap entry's sequence was renumbered
    // since the timer started, and the timer's start sequence (the one its
    // id carries). Free: the next free slot, or kNoSlot.
    uint32_t word = 0;
  };
  static_assert(sizeof(Slot) == 16, "the slot's word should sit in the waker's tail padding");

  static constexpr uint32_t kArmed = uint32_t{1} << 31;
  static constexpr uint32_t kRenumbered = uint32_t{1} << 30;
  static constexpr uint32_t kSequenceMask = kRenumbered - 1;  // epoch bit + count
  static constexpr uint32_t kEpochBit = uint32_t{1} << 29;
  static_assert(kSequenceLimit <= kEpochBit);
  // Slot numbers stay below kArmed, so a free slot's link never looks armed.
  static constexpr uint32_t kNoSlot = kArmed - 1;

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

  // Whether `key` (an entry of the heap, for `slot`) is the slot's armed
  // timer's, not a cancelled one's.
  bool IsLive(Key key, uint32_t slot) const {
    const uint32_t word = slots_[slot].word;
    if ((word & kRenumbered) != 0) [[unlikely]] {
      // Armed since the last renumbering, which dropped every stale entry and
      // gave the live ones the sequences below renumbered_below_: this
      // slot's one entry there is its timer's. Newer entries are above.
      return (word & kArmed) != 0 && SequenceOf(key) < renumbered_below_;
    }
    return (word & (kArmed | kSequenceMask)) == (kArmed | SequenceOf(key));
  }

  // With no slot free: twice as many slots (below kNoSlot), the new ones
  // linked onto the free list in index order, so slots are handed out in
  // the order appending them would.
  [[gnu::noinline]] void GrowSlots() {
    const size_t size = slots_.size();
    SIMSCHED_CHECK(size < kNoSlot, "more than 2^31 - 1 timers at once");
    const size_t grown = std::min<size_t>(std::max<size_t>(2 * size, 16), kNoSlot);
    slots_.reserve(grown);
    slots_.resize(grown);
    for (size_t i = size; i + 1 < grown; ++i) slots_[i].word = static_cast<uint32_t>(i + 1);
    slots_[grown - 1].word = kNoSlot;  // growth only when none is free
    free_head_ = static_cast<uint32_t>(size);
  }

  Waker Disarm(uint32_t slot) {
    Slot& entry = slots_[slot];
    Waker waker = std::move(entry.waker);
    entry.word = free_head_;  // free: not armed, not renumbered
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
    Key* const h = heap_.data();
    Key* const end = h + n;
    Key* const last_four = end - 4;  // n > kRoot: within the vector
    // A node's first child, h + 4 * (node - h) - 8, is 4 * node - bias as an
    // address: a shift and a subtraction a level, where the index takes six.
    const uintptr_t bias = 3 * reinterpret_cast<uintptr_t>(h) + 8 * sizeof(Key);
    Key* hole = h + kRoot;
    for (;;) {
      Key* const first = reinterpret_cast<Key*>(4 * reinterpret_cast<uintptr_t>(hole) - bias);
      Key* best;
      if (first <= last_four) {
        // The deadlines alone (the high words) pick the earliest child
        // unless two of those compared tie, which is rare: then the whole
        // keys do. Half the loads of comparing whole keys, no borrow chains.
        const uint64_t d0 = High(first[0]), d1 = High(first[1]);
        const uint64_t d2 = High(first[2]), d3 = High(first[3]);
        Key* const a = d1 < d0 ? first + 1 : first;
        const uint64_t da = d1 < d0 ? d1 : d0;
        Key* const b = d3 < d2 ? first + 3 : first + 2;
        const uint64_t db = d3 < d2 ? d3 : d2;
        best = db < da ? b : a;
        if ((d0 == d1) | (d2 == d3) | (da == db)) [[unlikely]] best = EarliestOfFour(first);
      } else if (first < end) {
        best = first;
        for (Key* c = first + 1; c < end; ++c) {
          if (*c < *best) best = c;
        }
      } else {
        break;
      }
      *hole = *best;
      hole = best;
    }
    SiftUp(static_cast<size_t>(hole - h), last);
  }

  // The earliest of first[0 .. 3] by whole keys (PopTop's tie path).
  [[gnu::noinline]] static Key* EarliestOfFour(Key* first) {
    Key* const a = first[1] < first[0] ? first + 1 : first;
    Key* const b = first[3] < first[2] ? first + 3 : first + 2;
    return *b < *a ? b : a;
  }

  void DropStaleTop() {
    // No cancelled entries: the top is live, and its slot (another timer's,
    // far from the one just fired) need not be read.
    if (stale_ == 0) return;
    while (entries() > 0) {
      const Key top = heap_[kRoot];
      if (IsLive(top, SlotOf(top))) return;
      PopTop();
      --stale_;
    }
  }

  // Drops the stale entries. A sorted array is a valid heap.
  // (stale_ counts exactly the cancelled entries still in the heap: Cancel
  // adds one, skipping or dropping one takes one, Rebuild clears them.)
  void Rebuild() {
    if (heap_.empty()) return;
    const auto stale = std::remove_if(heap_.begin() + kRoot, heap_.end(),
                                      [this](Key key) { return !IsLive(key, SlotOf(key)); });
    heap_.erase(stale, heap_.end());
    std::sort(heap_.begin() + kRoot, heap_.end());
    stale_ = 0;
  }

  // Gives the live entries the sequences 0..n-1 of the other epoch in their
  // current order, so 29 bits suffice however many timers a queue starts.
  // The slots keep their timers' id sequences, marked kRenumbered.
  void Renumber() {
    Rebuild();  // no stale entries: below renumbered_below_, only live ones
    SIMSCHED_CHECK(entries() < kSequenceLimit, "more than 2^29 timers at once");
    epoch_ ^= kEpochBit;
    for (size_t i = 0; i < entries(); ++i) {
      Key& key = heap_[kRoot + i];
      const uint32_t slot = SlotOf(key);
      const uint32_t sequence = epoch_ | static_cast<uint32_t>(i);
      key = (key >> 64 << 64) | (Key{sequence} << 32) | slot;
      slots_[slot].word |= kRenumbered;
    }
    sequence_ = entries();
    renumbered_below_ = epoch_ | static_cast<uint32_t>(entries());
  }

  std::vector<Key, LineAllocator<Key>> heap_;  // empty, or kRoot padding + the heap
  std::vector<Slot> slots_;
  uint32_t free_head_ = kNoSlot;
  uint64_t sequence_ = 0;  // the next start's count in this epoch
  uint64_t sequence_limit_ = kSequenceLimit;
  uint32_t epoch_ = 0;  // 0 or kEpochBit: the current epoch's sequences carry it
  // Entries renumbered by the last Renumber() have sequences below this (and
  // at or above epoch_); zero before any.
  uint32_t renumbered_below_ = 0;
  size_t live_ = 0;
  size_t stale_ = 0;  // cancelled entries still in the heap
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TIMER_QUEUE_H_
