// Internal: RingQueue, the TestScheduler's ready queue.
//
// A growable power-of-two ring buffer of trivially copyable elements (raw
// task pointers). It supports what the scheduler needs in O(1): push at the
// back, pop at the front (FIFO mode), index from the front, and remove-by-
// swap-with-back (randomized mode, where queue order carries no meaning). A
// `std::deque<Runnable>` cost about 50 instructions more per poll (see
// docs/performance.md).

#ifndef SIMSCHED_SCHEDULER_INTERNAL_RING_QUEUE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_RING_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "scheduler/internal/check.h"

namespace simsched::internal {

template <typename T>
class RingQueue {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;
  RingQueue(RingQueue&& other) noexcept { *this = std::move(other); }
  RingQueue& operator=(RingQueue&& other) noexcept {
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    mask_ = std::exchange(other.mask_, 0);
    head_ = std::exchange(other.head_, 0);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Empties the queue, keeping its storage.
  void clear() {
    head_ = 0;
    size_ = 0;
  }

  T& operator[](size_t i) { return data_[(head_ + i) & mask_]; }
  const T& operator[](size_t i) const { return data_[(head_ + i) & mask_]; }
  // Element i if the ring has not rotated (no pop_front since it was last
  // empty), else some element or a stale slot: for guesses only (a
  // prefetch), without operator[]'s index arithmetic. `i` must be below
  // size() + 1 and the queue must have storage.
  T Guess(size_t i) const { return data_[i]; }
  T& front() { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }

  [[gnu::always_inline]] void push_back(T value) {
    if (size_ == capacity_) Grow();
    data_[(head_ + size_) & mask_] = value;
    ++size_;
  }

  T pop_front() {
    SIMSCHED_CHECK(size_ > 0, "pop_front on an empty RingQueue");
    T value = data_[head_];
    // Emptied, the ring starts over at slot 0, where SwapRemove is cheapest.
    head_ = --size_ == 0 ? 0 : (head_ + 1) & mask_;
    return value;
  }

  T pop_back() {
    SIMSCHED_CHECK(size_ > 0, "pop_back on an empty RingQueue");
    --size_;
    return data_[(head_ + size_) & mask_];
  }

  // Removes the last element (which the caller has read); the queue must
  // not be empty. SwapRemove(size() - 1) without its index arithmetic.
  [[gnu::always_inline]] void DropBack() { --size_; }

  // Removes element i by moving the last element into its place.
  [[gnu::always_inline]] T SwapRemove(size_t i) {
    SIMSCHED_CHECK(i < size_, "SwapRemove index out of range");
    if (head_ == 0) [[likely]] {
      // Never rotated (no pop_front since it was last empty): a plain array,
      // no index masking. The randomized queue's usual state.
      T value = data_[i];
      data_[i] = data_[--size_];
      return value;
    }
    T& slot = (*this)[i];
    T value = slot;
    slot = back();
    --size_;
    return value;
  }

  // Gives the storage back if the queue is empty and its capacity is over
  // `keep` elements (the next push allocates again, from the smallest
  // capacity). For a queue whose high-water mark is far above its usual
  // size: W2 and the memory benchmark queue 100,000 tasks at once, then
  // none while they sleep.
  void ReleaseStorageIfEmpty(size_t keep) {
    if (capacity_ <= keep || size_ != 0) [[likely]] {
      return;
    }
    data_.reset();
    capacity_ = 0;
    mask_ = 0;
    head_ = 0;
  }
  size_t capacity() const { return capacity_; }

  // Whether a pop_front moved the ring's start since it was last empty. A
  // queue that only ever loses elements through SwapRemove, DropBack,
  // pop_back, Erase and RemoveFirstInPlace is never rotated: element i is
  // slot i, and the *Unrotated functions below index it as a plain array.
  bool rotated() const { return head_ != 0; }

  // pop_front() that keeps an unrotated queue unrotated: the other elements
  // move down one slot (O(n); the same order as pop_front's).
  T RemoveFirstInPlace() {
    SIMSCHED_CHECK(size_ > 0, "RemoveFirstInPlace on an empty RingQueue");
    if (head_ != 0) return pop_front();
    T value = data_[0];
    --size_;
    std::memmove(data_.get(), data_.get() + 1, size_ * sizeof(T));
    return value;
  }

  // SwapRemove() and push_back() for a queue that is not rotated(), without
  // the start's offset and the index mask.
  [[gnu::always_inline]] T SwapRemoveUnrotated(size_t i) {
    T value = data_[i];
    data_[i] = data_[--size_];
    return value;
  }
  // SwapRemoveUnrotated(0) on a queue of one element: it empties the queue.
  [[gnu::always_inline]] T TakeOnlyUnrotated() {
    size_ = 0;
    return data_[0];
  }
  [[gnu::always_inline]] void PushBackUnrotated(T value) {
    if (size_ == capacity_) [[unlikely]] Grow();
    data_[size_++] = value;
  }

  // Removes element i keeping the order of the others (O(n)).
  T Erase(size_t i) {
    SIMSCHED_CHECK(i < size_, "Erase index out of range");
    T value = (*this)[i];
    for (size_t j = i; j + 1 < size_; ++j) (*this)[j] = (*this)[j + 1];
    --size_;
    return value;
  }

 private:
  // Out of line: keeps push_back small enough to inline on hot paths.
  // The new storage is not zeroed (a push writes a slot before anything
  // reads it; Guess may read a slot never written, for a prefetch only), and
  // the ring is copied as its two runs: W2 queues 100,000 tasks before the
  // first poll, and zeroing and copying slot by slot cost it 30
  // instructions a task.
  [[gnu::noinline]] void Grow() {
    const size_t new_capacity = capacity_ == 0 ? 64 : capacity_ * 2;
    auto data = std::make_unique_for_overwrite<T[]>(new_capacity);
    if (size_ != 0) {
      const size_t first_run = std::min(size_, capacity_ - head_);
      std::memcpy(data.get(), data_.get() + head_, first_run * sizeof(T));
      std::memcpy(data.get() + first_run, data_.get(), (size_ - first_run) * sizeof(T));
    }
    data_ = std::move(data);
    capacity_ = new_capacity;
    mask_ = new_capacity - 1;
    head_ = 0;
  }

  std::unique_ptr<T[]> data_;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_RING_QUEUE_H_
