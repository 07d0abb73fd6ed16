// Internal: RadixHeap, the monotone priority queue under TimerQueue.
//
// A min-queue of distinct 128-bit keys whose high word (a deadline) is, in
// practice, never below the last one popped: virtual time only moves forward,
// and a timer starts at or after now. That is what a radix heap needs to pop
// in amortized constant time. Let D be the high word of the last key popped.
// The keys with high word D sit in the current run, sorted; every other key
// sits in a bucket chosen by the highest hex digit (4 bits) in which its high
// word differs from D, and that digit's value: bucket 16 * digit + value.
// Every key of a lower bucket is smaller than every key of a higher one.
// Popping past the current run takes the lowest non-empty bucket, makes its
// smallest high word the new D and moves the bucket's keys down (those with
// high word D form the new run). A key moves at most once per hex digit of
// its high word, and in practice a few times, appended in sequential scans;
// a binary heap sifts through O(log n) scattered lines on every push and pop.
//
// A key whose high word is below D (a deadline already past when started)
// goes to a small binary heap of its own; its keys are below all others, so
// it is popped first. The order is exactly the keys' order either way.
//
// Deletion is lazy: the caller's `keep(key)` says whether a key is still
// wanted; a rejected key is dropped when a look at the front meets it (it is
// called once for each dropped key, so it may count them). Each bucket knows
// its smallest key, so finding the minimum is a look at three fronts.
//
// Not thread-safe.
//
//   RadixHeap heap;
//   heap.Push(key);
//   const RadixHeap::Key* min = heap.Min(keep);  // null when empty
//   if (min != nullptr && *min <= limit) heap.Pop();

#ifndef SIMSCHED_SCHEDULER_INTERNAL_RADIX_HEAP_H_
#define SIMSCHED_SCHEDULER_INTERNAL_RADIX_HEAP_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace simsched::internal {

class RadixHeap {
 public:
  using Key = unsigned __int128;

  RadixHeap() = default;
  // `floor`: the high word below which keys are expected to be rare (they
  // are kept apart in a binary heap until popped).
  explicit RadixHeap(uint64_t floor) : floor_(floor), current_(floor) {}
  RadixHeap(RadixHeap&& other) noexcept { Swap(other); }
  RadixHeap& operator=(RadixHeap&& other) noexcept {
    RadixHeap old(std::move(other));
    Swap(old);
    return *this;
  }

  // Push()
  //
  // Adds `key`, which must differ from every key in the heap.
  void Push(Key key) {
    ++size_;
    const uint64_t high = High(key);
    if (high == current_) {
      // Normally after the run's keys (keys are numbered in start order).
      if (run_.size() == run_head_ || run_.back() < key) {
        run_.push_back(key);
      } else {
        run_.insert(std::upper_bound(run_.begin() + static_cast<ptrdiff_t>(run_head_),
                                     run_.end(), key),
                    key);
      }
      return;
    }
    if (high < current_) [[unlikely]] {
      below_.push_back(key);
      std::push_heap(below_.begin(), below_.end(), std::greater<Key>());
      return;
    }
    if (buckets_ == nullptr) [[unlikely]] buckets_ = std::make_unique<Buckets>();
    Put(BucketOf(high), key);
  }

  // Min()
  //
  // The smallest key `keep` accepts, or null if there is none; the keys it
  // rejects on the way are dropped. The pointer is valid until the next call
  // of anything but `Pop`.
  template <typename Keep>
  const Key* Min(Keep&& keep) {
    while (!below_.empty()) {
      if (keep(below_.front())) {
        from_ = kFromBelow;
        return &below_.front();
      }
      PopBelow();
    }
    while (run_head_ < run_.size()) {
      if (keep(run_[run_head_])) {
        from_ = kFromRun;
        return &run_[run_head_];
      }
      PopRun();
    }
    if (buckets_ == nullptr) return nullptr;
    for (;;) {
      const int b = LowestBucket();
      if (b < 0) return nullptr;
      Bucket& bucket = (*buckets_)[b];
      if (keep(bucket.min)) {
        from_ = b;
        return &bucket.min;
      }
      // The smallest key is dropped. A sorted bucket drops from its front;
      // otherwise drop every rejected key and sort the rest, so that timers
      // cancelled in deadline order (timeouts) cost O(1) each from then on.
      if (!bucket.sorted) {
        // keep() has rejected the smallest already: it is not asked twice.
        const Key rejected = bucket.min;
        size_t kept = 0;
        for (size_t i = bucket.head; i < bucket.keys.size(); ++i) {
          const Key key = bucket.keys[i];
          if (key != rejected && keep(key)) bucket.keys[kept++] = key;
        }
        size_ -= bucket.keys.size() - bucket.head - kept;
        bucket.keys.resize(kept);
        bucket.head = 0;
        std::sort(bucket.keys.begin(), bucket.keys.end());
        bucket.sorted = true;
      } else {
        ++bucket.head;
        --size_;
      }
      if (bucket.head == bucket.keys.size()) {
        bucket.Clear();
        MarkEmpty(b);
      } else {
        bucket.min = bucket.keys[bucket.head];
      }
    }
  }

  // Pop()
  //
  // Removes the key the last `Min` returned (which must not have been null,
  // with nothing but `Min` called since).
  void Pop() {
    if (from_ == kFromBelow) {
      PopBelow();
      return;
    }
    if (from_ >= 0) Settle(from_);
    PopRun();
  }

  // Keys held, including rejected ones not yet dropped.
  size_t size() const { return size_; }

  // Filter()
  //
  // Drops every key `keep` rejects now (it is called once per key).
  template <typename Keep>
  void Filter(Keep&& keep) {
    const auto drop = [&keep](Key key) { return !keep(key); };
    below_.erase(std::remove_if(below_.begin(), below_.end(), drop), below_.end());
    std::make_heap(below_.begin(), below_.end(), std::greater<Key>());
    run_.erase(run_.begin(), run_.begin() + static_cast<ptrdiff_t>(run_head_));
    run_head_ = 0;
    run_.erase(std::remove_if(run_.begin(), run_.end(), drop), run_.end());  // stays sorted
    size_ = below_.size() + run_.size();
    if (buckets_ == nullptr) return;
    for (int b = 0; b < kBuckets; ++b) {
      Bucket& bucket = (*buckets_)[b];
      if (bucket.head == bucket.keys.size()) continue;
      bucket.keys.erase(bucket.keys.begin(),
                        bucket.keys.begin() + static_cast<ptrdiff_t>(bucket.head));
      bucket.head = 0;
      // remove_if keeps the order, so a sorted bucket stays sorted.
      bucket.keys.erase(std::remove_if(bucket.keys.begin(), bucket.keys.end(), drop),
                        bucket.keys.end());
      if (bucket.keys.empty()) {
        bucket.Clear();
        MarkEmpty(b);
        continue;
      }
      bucket.min = *std::min_element(bucket.keys.begin(), bucket.keys.end());
      size_ += bucket.keys.size();
    }
  }

  // Drain()
  //
  // Appends every key to `out`, in no particular order, and empties the heap
  // as if new (any key may be pushed next; the floor stays). Capacity is
  // kept.
  void Drain(std::vector<Key>& out) {
    out.insert(out.end(), below_.begin(), below_.end());
    below_.clear();
    out.insert(out.end(), run_.begin() + static_cast<ptrdiff_t>(run_head_), run_.end());
    run_.clear();
    run_head_ = 0;
    if (buckets_ != nullptr) {
      for (Bucket& bucket : *buckets_) {
        out.insert(out.end(), bucket.keys.begin() + static_cast<ptrdiff_t>(bucket.head),
                   bucket.keys.end());
        bucket.Clear();
      }
    }
    nonempty_ = {};
    summary_ = 0;
    current_ = floor_;
    size_ = 0;
  }

 private:
  // Digits of 8 bits: a key moves at most once per byte of its high word.
  static constexpr int kDigitBits = 8;
  static constexpr int kValues = 1 << kDigitBits;
  static constexpr int kBuckets = 64 / kDigitBits * kValues;
  static constexpr int kWords = kBuckets / 64;
  static constexpr int kFromBelow = -2;
  static constexpr int kFromRun = -1;

  // Keys from `head` on; the ones before it are dropped.
  struct Bucket {
    std::vector<Key> keys;
    size_t head = 0;
    Key min = ~Key{0};   // the smallest key (kept and rejected alike)
    bool sorted = true;  // keys from head on are in ascending order

    void Clear() {
      keys.clear();
      head = 0;
      min = ~Key{0};
      sorted = true;
    }
  };
  using Buckets = std::array<Bucket, kBuckets>;

  static uint64_t High(Key key) { return static_cast<uint64_t>(key >> 64); }

  // The bucket of a high word above current_.
  int BucketOf(uint64_t high) const {
    const int digit = (63 - std::countl_zero(high ^ current_)) / kDigitBits;
    return kValues * digit +
           static_cast<int>((high >> (kDigitBits * digit)) & (kValues - 1));
  }

  void Put(int b, Key key) {
    Bucket& bucket = (*buckets_)[b];
    if (bucket.head == bucket.keys.size()) {
      bucket.Clear();
      bucket.min = key;
      MarkNonEmpty(b);
    } else {
      if (key < bucket.keys.back()) bucket.sorted = false;
      if (key < bucket.min) bucket.min = key;
    }
    bucket.keys.push_back(key);
  }

  int LowestBucket() const {
    if (summary_ == 0) return -1;
    const int word = std::countr_zero(summary_);
    return 64 * word + std::countr_zero(nonempty_[word]);
  }
  void MarkNonEmpty(int b) {
    nonempty_[b / 64] |= uint64_t{1} << (b % 64);
    summary_ |= uint64_t{1} << (b / 64);
  }
  void MarkEmpty(int b) {
    nonempty_[b / 64] &= ~(uint64_t{1} << (b % 64));
    if (nonempty_[b / 64] == 0) summary_ &= ~(uint64_t{1} << (b / 64));
  }

  // Makes bucket b's smallest high word current: its keys with that high word
  // become the run (sorted), the rest move to lower buckets. The run is
  // empty: a bucket is only settled once the run is used up.
  void Settle(int b) {
    Bucket& bucket = (*buckets_)[b];
    MarkEmpty(b);
    current_ = High(bucket.min);
    if (b < kValues) {
      // The lowest digit: all its keys have one high word. They become the
      // run as they are.
      run_.swap(bucket.keys);
      run_head_ = bucket.head;
      const bool sorted = bucket.sorted;
      bucket.Clear();
      if (!sorted) std::sort(run_.begin() + static_cast<ptrdiff_t>(run_head_), run_.end());
      return;
    }
    run_.clear();
    run_head_ = 0;
    for (size_t i = bucket.head; i < bucket.keys.size(); ++i) {
      const Key key = bucket.keys[i];
      const uint64_t high = High(key);
      if (high == current_) {
        run_.push_back(key);
      } else {
        Put(BucketOf(high), key);
      }
    }
    const bool sorted = bucket.sorted;
    bucket.Clear();
    if (!sorted && run_.size() > 1) std::sort(run_.begin(), run_.end());
  }

  void PopBelow() {
    std::pop_heap(below_.begin(), below_.end(), std::greater<Key>());
    below_.pop_back();
    --size_;
  }

  void PopRun() {
    if (++run_head_ == run_.size()) {
      run_.clear();
      run_head_ = 0;
    }
    --size_;
  }

  void Swap(RadixHeap& other) noexcept {
    buckets_.swap(other.buckets_);
    below_.swap(other.below_);
    run_.swap(other.run_);
    std::swap(run_head_, other.run_head_);
    std::swap(nonempty_, other.nonempty_);
    std::swap(summary_, other.summary_);
    std::swap(floor_, other.floor_);
    std::swap(current_, other.current_);
    std::swap(size_, other.size_);
    std::swap(from_, other.from_);
  }

  // Allocated at the first bucketed push, so an unused heap costs nothing to
  // make, move or drop.
  std::unique_ptr<Buckets> buckets_;
  std::vector<Key> below_;  // keys with a high word below current_: a min-heap
  std::vector<Key> run_;    // keys with high word current_, sorted, from run_head_
  size_t run_head_ = 0;
  std::array<uint64_t, kWords> nonempty_{};  // bit b: bucket b holds keys
  uint64_t summary_ = 0;                     // bit w: nonempty_[w] != 0
  uint64_t floor_ = 0;    // current_ when nothing has been popped
  uint64_t current_ = 0;  // D: the high word of the last key popped, or floor_
  size_t size_ = 0;
  int from_ = kFromRun;  // where the last Min found its key: a bucket, or kFrom*
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_RADIX_HEAP_H_
