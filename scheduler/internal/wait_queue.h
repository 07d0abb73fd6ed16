// Internal: the intrusive FIFO of suspended awaiters behind every primitive
// (Event, and Channel, Mutex and Semaphore in sim/).
//
// An awaiter derives from `WaitNode` and lives in the suspended coroutine's
// frame, so queueing it allocates nothing. The queue does no locking: the
// primitive that owns it guards it (and every node's fields) with its own
// mutex. FIFO order is what makes the primitives fair and deterministic.
//
// The one rule for releasing a waiter: take everything you need from the node
// (its waker, a handed value) BEFORE removing it. `Remove` ends with a
// release-store of the node's `linked` flag, and that is the queue's last
// access to the node: an awaiter destroyed on another thread (its task
// cancelled there) may check `linked()` without the primitive's lock and, on
// seeing false, let its frame be freed at once. See docs/cancellation.md.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_WAIT_QUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_WAIT_QUEUE_H_

#include <atomic>
#include <cstddef>

#include "scheduler/internal/check.h"

namespace simsched::internal {

// WaitNode
//
// The link fields of a queued awaiter.
class WaitNode {
 public:
  WaitNode() = default;
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;

  // Whether the node is in a queue right now. Once this reads false the queue
  // will not touch the node again.
  bool linked() const { return linked_.load(std::memory_order_acquire); }

 private:
  friend class WaitQueue;
  WaitNode* prev_ = nullptr;
  WaitNode* next_ = nullptr;
  std::atomic<bool> linked_{false};
};

// WaitQueue
//
// A doubly linked FIFO of WaitNodes: O(1) push, pop and removal from the
// middle (a cancelled waiter leaves from wherever it is).
class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  WaitNode* front() const { return head_; }

  void PushBack(WaitNode* node) {
    SIMSCHED_CHECK(!node->linked_.load(std::memory_order_relaxed), "a waiter was queued twice");
    node->prev_ = tail_;
    node->next_ = nullptr;
    if (tail_ != nullptr) {
      tail_->next_ = node;
    } else {
      head_ = node;
    }
    tail_ = node;
    node->linked_.store(true, std::memory_order_relaxed);
    ++size_;
  }

  void Remove(WaitNode* node) {
    SIMSCHED_CHECK(node->linked_.load(std::memory_order_relaxed),
                   "removed a waiter that is not queued");
    if (node->prev_ != nullptr) {
      node->prev_->next_ = node->next_;
    } else {
      head_ = node->next_;
    }
    if (node->next_ != nullptr) {
      node->next_->prev_ = node->prev_;
    } else {
      tail_ = node->prev_;
    }
    --size_;
    node->prev_ = node->next_ = nullptr;
    node->linked_.store(false, std::memory_order_release);  // the last access: see above
  }

  // Removes and returns the oldest node, or null if the queue is empty.
  // Only for primitives whose awaiters always take the lock to leave (the
  // returned node is touched after its removal).
  WaitNode* PopFront() {
    WaitNode* node = head_;
    if (node != nullptr) Remove(node);
    return node;
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_WAIT_QUEUE_H_
