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
// top entry (its index and priority) when it is strictly above every other,
// and a bound on the others' priorities ("the rest"). Strictly: then the top
// is the only one of its value, so queue order cannot matter for it. Entries
// appended since the last pick are taken in lazily (between picks the queue
// only grows at the back). With no entry known to be on top, Best() scans the
// queue as the old pick did, and learns the top and the rest's exact bound
// on the way.
//
// Under PCT the running task keeps its priority, so when it is queued again
// it is above the rest's bound and is the top without a scan, step after
// step; scans happen when a task finishes or a change point demotes it.
// Under POS each enqueue draws a new priority; the entries left in the queue
// are the draws that lost, so a fresh draw beats them on most steps (96% in
// the 10-task sweep); the other steps scan (a tight loop). Either way the
// usual step is TakeNewestIfBest(): the newest entry on top, taken at once.
//
// Anything that changes the queue otherwise (removing an entry from the
// middle, a uniform pick, a demotion, a new run) must call Reset().
//
// Example (inside TestScheduler):
//
//   TaskHeader* next = top.TakeNewestIfBest(background_);  // the usual step
//   if (next == nullptr) {
//     const size_t best = top.Best(background_);   // the old scan's pick
//     next = top.Take(background_, best);
//   }

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace simsched::internal {

class TopPriorities {
 public:
  // Forgets everything; the next Best() scans the queue.
  void Reset() {
    has_top_ = false;
    rest_max_ = 0;
    seen_ = 0;
  }

  // The index the full scan picks in `queue` (a queue of pointers to
  // something with an `enqueue_seq`): the largest priority, the first in
  // queue order among equals. `queue` must not be empty.
  template <typename Queue>
  [[gnu::always_inline]] size_t Best(const Queue& queue) {
    const size_t size = queue.size();
    if (!has_top_ && seen_ + 1 == size) [[likely]] {
      // One entry queued since the last pick (under PCT: the task that ran,
      // with its priority): on top if it beats the rest.
      const uint64_t priority = queue[seen_]->enqueue_seq;
      if (priority > rest_max_) {
        top_priority_ = priority;
        top_index_ = seen_;
        has_top_ = true;
        seen_ = size;
        return top_index_;
      }
    }
    if (seen_ > size) [[unlikely]] Reset();  // changed without a Reset: start over
    for (size_t i = seen_; i < size; ++i) {
      const uint64_t priority = queue[i]->enqueue_seq;
      if (priority <= rest_max_) continue;  // joins the rest
      if (!has_top_ || priority > top_priority_) {
        if (has_top_) rest_max_ = top_priority_;
        top_priority_ = priority;
        top_index_ = i;
        has_top_ = true;
      } else {
        // Below or equal to the top: the rest's new bound (an equal one
        // leaves no entry strictly on top).
        rest_max_ = priority;
        if (priority == top_priority_) has_top_ = false;
      }
    }
    seen_ = size;
    if (!has_top_) return Scan(queue);
    return top_index_;
  }

  // Best() and Take() at once in their most common case: the one entry
  // appended since the last pick beats the rest (under PCT the task that
  // just ran, keeping its priority; under POS a fresh draw, which beats the
  // rest on almost every step, as the rest are the draws that lost). Returns
  // that entry, removed as Take() removes it, and leaves what is known as
  // Best() and Take() leave it; or, touching nothing, a null pointer when
  // the case does not apply (then call Best() and Take()). No stores but the
  // queue's size: the top is found and taken in the same step.
  template <typename Queue>
  [[gnu::always_inline]] auto TakeNewestIfBest(Queue& queue) {
    using Entry = std::remove_cvref_t<decltype(queue[0])>;
    if (has_top_ || seen_ + 1 != queue.size()) return Entry{};
    Entry newest = queue[seen_];
    if (newest->enqueue_seq <= rest_max_) return Entry{};
    if (seen_ == 0) {
      queue.pop_front();  // as Take() at index 0 (an emptied ring restarts at slot 0)
      rest_max_ = 0;
    } else {
      queue.DropBack();  // SwapRemove of the last entry
    }
    return newest;
  }

  // Removes entry `index` (Best()'s answer; any other index forgets what is
  // known) as the full scan's pick did, and returns it.
  template <typename Queue>
  [[gnu::always_inline]] auto Take(Queue& queue, size_t index) {
    const size_t last = queue.size() - 1;
    auto task = index == 0 ? queue.pop_front() : queue.SwapRemove(index);
    if (has_top_ && index == top_index_ && seen_ == last + 1) [[likely]] {
      // The rest is what remains, and rest_max_ still bounds it.
      has_top_ = false;
      seen_ = last;
      if (last == 0) rest_max_ = 0;
    } else {
      Reset();  // a tie at the top was taken, or the queue changed behind our back
    }
    return task;
  }

 private:
  // The full scan; also learns the top and the rest's bound from it.
  template <typename Queue>
  size_t Scan(const Queue& queue) {
    size_t best_index = 0;
    uint64_t best = queue[0]->enqueue_seq;
    uint64_t second = 0;
    const size_t size = queue.size();
    for (size_t i = 1; i < size; ++i) {
      const uint64_t priority = queue[i]->enqueue_seq;
      if (priority > best) {
        second = best;
        best = priority;
        best_index = i;
      } else if (priority > second) {
        second = priority;
      }
    }
    // A tie at the top (second == best) leaves no top: the next pick scans
    // again, which is rare (drawn priorities are 62-bit).
    has_top_ = best > second;
    top_priority_ = best;
    top_index_ = best_index;
    rest_max_ = second;
    seen_ = size;
    return best_index;
  }

  // When has_top_: the entry at top_index_ has top_priority_, and every
  // other accounted-for entry at most rest_max_ < top_priority_. Otherwise
  // every accounted-for entry has at most rest_max_.
  bool has_top_ = false;
  uint64_t top_priority_ = 0;
  size_t top_index_ = 0;
  uint64_t rest_max_ = 0;
  // Entries [0, seen_) of the queue are accounted for; later ones were
  // appended since.
  size_t seen_ = 0;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TOP_PRIORITIES_H_
