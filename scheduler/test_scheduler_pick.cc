// TestScheduler's general pick: which queued task the general step runs
// when the fast path does not apply and PickNextSlow (test_scheduler_steps.cc)
// does not either: lanes, deprioritized work, FIFO, uniform picks, and PCT
// and POS with lane work or at a change point.

#include "scheduler/internal/check.h"
#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::TaskHeader;

// PCT and POS: the candidate with the largest priority (ties: the first in
// candidate order: background queue order, then lanes by id). Deprioritized
// work competes only when nothing else is runnable (`main_work` false), as in
// every strategy. The background's best comes from TopPriorities, which picks
// what a scan of the whole queue picks (scheduler/priority_pick_test.cc).
void TestScheduler::PickByPriority(TaskHeader*& next, LaneId& lane, bool main_work) {
  internal::TopPriorities& top = strategy_.background_top();
  for (;;) {
    Queue* best_queue = nullptr;
    size_t best_index = 0;
    LaneId best_lane = kNoLane;
    uint64_t best = 0;
    if (main_work) {
      if (!background_.empty()) {
        best_queue = &background_;
        best_index = top.Best(background_);
        best = background_[best_index]->enqueue_seq;
      }
      for (LaneId id = 0; lane_queued_ != 0 && id < lanes_.size(); ++id) {
        Lane& l = lanes_[id];
        if (l.queue.empty() || l.blocked != 0) continue;
        const uint64_t priority = l.queue.front()->enqueue_seq;
        if (best_queue == nullptr || priority > best) {
          best_queue = &l.queue;
          best_index = 0;
          best_lane = id;
          best = priority;
        }
      }
    } else {
      best_queue = &deprioritized_;
      for (size_t i = 0; i < deprioritized_.size(); ++i) {
        const uint64_t priority = deprioritized_[i]->enqueue_seq;
        if (i == 0 || priority > best) {
          best_index = i;
          best = priority;
        }
      }
    }
    SIMSCHED_CHECK(best_queue != nullptr && !best_queue->empty(),
                   "PickByPriority without a candidate");
    if (strategy_.DemoteAtChangePoint(steps_ + 1, *(*best_queue)[best_index])) {
      if (best_queue == &background_) top.Reset();  // a kept priority changed
      continue;
    }
    if (best_lane != kNoLane) {
      next = best_queue->pop_front();
      --lane_queued_;
    } else if (best_queue == &background_) {
      next = top.Take(background_, best_index);
    } else {
      next = best_index == 0 ? best_queue->pop_front() : best_queue->SwapRemove(best_index);
    }
    lane = best_lane;
    return;
  }
}

bool TestScheduler::PickNextGeneral(TaskHeader*& next, LaneId& lane) {
  const size_t background = background_.size();
  // Candidates: all background entries, then the head of each runnable lane
  // in lane order.
  size_t eligible_lanes = 0;
  for (const Lane& l : lanes_) eligible_lanes += (!l.queue.empty() && l.blocked == 0) ? 1 : 0;
  const size_t candidates = background + eligible_lanes;
  if (candidates == 0 && deprioritized_.empty()) return false;
  if (strategy_.ByPriority(steps_ + 1)) {
    PickByPriority(next, lane, /*main_work=*/candidates > 0);
    return true;
  }
  const bool randomize = !strategy_.fifo();
  if (candidates == 0) {
    const size_t index = randomize ? rng_.Below(deprioritized_.size()) : 0;
    next = index == 0 ? deprioritized_.pop_front() : deprioritized_.SwapRemove(index);
    lane = kNoLane;
    return true;
  }
  size_t pick;
  if (randomize) {
    pick = rng_.Below(candidates);
  } else {
    // FIFO: the candidate enqueued first.
    pick = 0;
    uint64_t best = background > 0 ? background_.front()->enqueue_seq : UINT64_MAX;
    size_t k = background;
    for (Lane& l : lanes_) {
      if (l.queue.empty() || l.blocked != 0) continue;
      if (l.queue.front()->enqueue_seq < best) {
        best = l.queue.front()->enqueue_seq;
        pick = k;
      }
      ++k;
    }
  }
  if (pick < background) {
    // In randomized mode the queue's order carries no meaning, so the picked
    // entry is swapped with the back and popped in O(1). A random pick of
    // the front takes it in place (the order pop_front leaves, without
    // rotating the ring): under the uniform strategy the background queue
    // then never rotates, which its fast steps and direct wakes rely on
    // (UniformFastStepLoop, DirectEnqueueTarget). O(n), but only one random
    // pick in n takes the front; FIFO, which always does, pops it.
    if (pick != 0) {
      next = background_.SwapRemove(pick);
    } else {
      next = randomize ? background_.RemoveFirstInPlace() : background_.pop_front();
    }
    strategy_.background_top().Reset();  // (PCT past fair_after_ picks here)
    lane = kNoLane;
    return true;
  }
  size_t k = background;
  for (LaneId id = 0; id < lanes_.size(); ++id) {
    Lane& l = lanes_[id];
    if (l.queue.empty() || l.blocked != 0) continue;
    if (k++ == pick) {
      next = l.queue.pop_front();
      --lane_queued_;
      lane = id;
      return true;
    }
  }
  SIMSCHED_CHECK(false, "PickNext lost its candidate");
}

}  // namespace simsched
