// File: scheduler/internal/top_priorities.h
// -----------------------------------------------------------------------------
//
// Internal to the TestScheduler: which entry of its background queue PCT and
// POS pick (the largest priority, `enqueue_seq`; among equals the first in
// queue order), without scanning the queue on every step.
//
// The queue itself stays exactly as it was: its order matters (ties go to the
// first entry, and once PCT switches to uniform picks it picks by index), so
// a pick still removes its entry the way the full scan's did: `pop_front` at
// index 0, else swap with the back (`Take`). Beside the queue this keeps the
// few largest priorities with their indices, each strictly larger than the
// next and than every other entry ("the rest", bounded by `rest_max_`).
// Strictly: then the largest is the only one of its value, so queue order
// cannot matter for it and the moves of a swap-remove cannot reorder it
// against an equal entry. Entries appended since the last pick are taken in
// lazily (the queue only grows at the back between picks); a tie at the top
// falls back to the full scan.
//
// Under PCT the running task keeps its priority, so it is found again at the
// back in O(1) step after step; the kept entries only run out when tasks
// finish or change points demote them. Under POS each enqueue draws a new
// priority; a rescan refills the entries every few steps.
//
// Anything that changes the queue otherwise (removing an entry from the
// middle, a uniform pick, a demotion, a new run) must call Reset().
//
// Example (inside TestScheduler):
//
//   const size_t best = top.Best(background_);   // the old scan's pick
//   TaskHeader* next = top.Take(background_, best);

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace simsched::internal {

class TopPriorities {
 public:
  // How many of the largest priorities are kept between picks.
  static constexpr uint32_t kKept = 4;

  // Forgets everything; the next Best() rescans the queue.
  void Reset() {
    count_ = 0;
    rest_max_ = 0;
    seen_ = 0;
  }

  // The index the full scan picks in `queue` (a queue of pointers to
  // something with an `enqueue_seq`): the largest priority, the first in
  // queue order among equals. `queue` must not be empty.
  template <typename Queue>
  size_t Best(const Queue& queue) {
    const size_t size = queue.size();
    // Known entries gone with nothing known to be on top (they were picked),
    // or a queue shorter than what was seen (changed without a Reset): rescan.
    if ((count_ == 0 && seen_ != 0) || seen_ > size) Reset();
    for (size_t i = seen_; i < size; ++i) Insert(queue[i]->enqueue_seq, i);
    seen_ = size;
    if (count_ == 0) [[unlikely]] return ScanFirstMax(queue);  // a tie at the top
    return top_[count_ - 1].index;
  }

  // Removes entry `index` (normally Best()'s) as the full scan's pick did,
  // and returns it.
  template <typename Queue>
  auto Take(Queue& queue, size_t index) {
    const size_t last = queue.size() - 1;
    auto task = index == 0 ? queue.pop_front() : queue.SwapRemove(index);
    if (seen_ != last + 1) {
      Reset();
      return task;
    }
    // Drop the taken entry; follow the others as the queue moved them.
    uint32_t kept = 0;
    for (uint32_t k = 0; k < count_; ++k) {
      Entry entry = top_[k];
      if (entry.index == index) continue;
      if (index == 0) {
        --entry.index;
      } else if (entry.index == last) {
        entry.index = index;
      }
      top_[kept++] = entry;
    }
    count_ = kept;
    seen_ = last;
    if (seen_ == count_) rest_max_ = 0;  // nothing else is queued
    return task;
  }

 private:
  struct Entry {
    uint64_t priority;
    size_t index;
  };

  // Accounts for the entry at `index`: kept if it beats the rest.
  void Insert(uint64_t priority, size_t index) {
    if (priority <= rest_max_) return;
    // top_ is ascending; find where `priority` goes.
    uint32_t at = count_;
    while (at > 0 && top_[at - 1].priority > priority) --at;
    if (at > 0 && top_[at - 1].priority == priority) {
      // Equal to a kept entry: neither is strictly above the other, so both,
      // and everything below them, join the rest.
      const uint32_t dropped = at;
      for (uint32_t k = dropped; k < count_; ++k) top_[k - dropped] = top_[k];
      count_ -= dropped;
      rest_max_ = priority;
      return;
    }
    if (count_ == kKept) {
      if (at == 0) {
        rest_max_ = priority;  // below every kept entry
        return;
      }
      // The smallest kept entry joins the rest.
      rest_max_ = top_[0].priority;
      for (uint32_t k = 1; k < at; ++k) top_[k - 1] = top_[k];
      top_[at - 1] = {priority, index};
      return;
    }
    for (uint32_t k = count_; k > at; --k) top_[k] = top_[k - 1];
    top_[at] = {priority, index};
    ++count_;
  }

  template <typename Queue>
  static size_t ScanFirstMax(const Queue& queue) {
    size_t best_index = 0;
    uint64_t best = queue[0]->enqueue_seq;
    for (size_t i = 1; i < queue.size(); ++i) {
      const uint64_t priority = queue[i]->enqueue_seq;
      if (priority > best) {
        best = priority;
        best_index = i;
      }
    }
    return best_index;
  }

  // Ascending by priority, strictly; the largest (the pick) last.
  std::array<Entry, kKept> top_{};
  uint32_t count_ = 0;
  // Every accounted-for entry not in top_ has a priority <= rest_max_, and
  // every entry in top_ one above it.
  uint64_t rest_max_ = 0;
  // Entries [0, seen_) of the queue are accounted for; later ones were
  // appended since.
  size_t seen_ = 0;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_
