#include "scheduler/internal/block_allocator.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <new>

#include "scheduler/internal/check.h"

namespace simsched::internal {

// A slab's bookkeeping, in its first kSlabHeaderBytes; the blocks follow.
// Every field is guarded by the class's lock.
struct BlockHeap::Slab {
  // Blocks given back, not yet taken again. The slab is in the class's
  // `with_free` list exactly while this is not null.
  FreeBlock* free = nullptr;
  Slab* prev = nullptr;
  Slab* next = nullptr;
  uint32_t live = 0;    // blocks taken and not given back
  uint32_t carved = 0;  // blocks handed out at least once (the first `carved`)
  uint32_t capacity = 0;
  uint32_t size_class = 0;
};
static_assert(kSlabHeaderBytes % kBlockAlignment == 0);
static_assert((kSlabBytes & (kSlabBytes - 1)) == 0, "slabs are found by masking");
static_assert(kBlockBatch <= kBlockCacheCap);

namespace {

// A free block's link, read and written with its cell poisoned around it.
FreeBlock* LoadNext(FreeBlock* block) noexcept {
  SIMSCHED_UNPOISON_BLOCK(block, sizeof(FreeBlock));
  FreeBlock* const next = block->next;
  SIMSCHED_POISON_BLOCK(block, sizeof(FreeBlock));
  return next;
}
void StoreNext(FreeBlock* block, FreeBlock* next) noexcept {
  SIMSCHED_UNPOISON_BLOCK(block, sizeof(FreeBlock));
  block->next = next;
  SIMSCHED_POISON_BLOCK(block, sizeof(FreeBlock));
}

// Retires this thread's cache of the process's heap when the thread ends.
// Separate from the cache, which stays trivially destructible (no guard on
// its accesses); armed by the cache's first slow path.
struct RetireAtThreadExit {
  bool armed = false;
  ~RetireAtThreadExit() {
    if (armed) tls_block_cache.Retire();
  }
};
thread_local RetireAtThreadExit retire_at_thread_exit;

constinit BlockHeap process_block_heap;

}  // namespace

thread_local constinit BlockCache tls_block_cache;

BlockHeap& ProcessBlockHeap() noexcept { return process_block_heap; }

BlockHeap::Slab* BlockHeap::SlabOf(const void* block) noexcept {
  static_assert(sizeof(Slab) <= kSlabHeaderBytes);
  return reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(block) & ~(kSlabBytes - 1));
}

void BlockHeap::DeleteSlab(Slab* slab) noexcept {
  SIMSCHED_UNPOISON_BLOCK(slab, kSlabBytes);
  slab->~Slab();
  ::operator delete (static_cast<void*>(slab), std::align_val_t{kSlabBytes});
}

void BlockHeap::Unlink(SizeClass& c, Slab* slab) noexcept {
  if (slab->prev != nullptr) {
    slab->prev->next = slab->next;
  } else {
    c.with_free = slab->next;
  }
  if (slab->next != nullptr) slab->next->prev = slab->prev;
  slab->prev = slab->next = nullptr;
}

FreeBlock* BlockHeap::Take(size_t size_class, uint32_t want, FreeBlock* tail, uint32_t* taken) {
  SizeClass& c = classes_[size_class];
  const size_t block_bytes = BlockClassBytes(size_class);
  FreeBlock* head = tail;
  uint32_t n = 0;
  {
    std::lock_guard<SpinLock> guard(c.lock);
    while (n < want) {
      // Blocks given back first: their slabs stay in use, emptier ones can drain.
      if (Slab* const slab = c.with_free) {
        while (n < want && slab->free != nullptr) {
          FreeBlock* const block = slab->free;
          slab->free = LoadNext(block);
          StoreNext(block, head);
          head = block;
          ++slab->live;
          ++n;
        }
        if (slab->free == nullptr) Unlink(c, slab);
        continue;
      }
      if (c.carving == nullptr) {
        void* const memory =
            ::operator new (kSlabBytes, std::align_val_t{kSlabBytes}, std::nothrow);
        if (memory == nullptr) break;
        Slab* const slab = ::new (memory) Slab;
        slab->capacity = static_cast<uint32_t>((kSlabBytes - kSlabHeaderBytes) / block_bytes);
        slab->size_class = static_cast<uint32_t>(size_class);
        SIMSCHED_POISON_BLOCK(static_cast<unsigned char*>(memory) + kSlabHeaderBytes,
                              kSlabBytes - kSlabHeaderBytes);
        c.carving = slab;
        ++c.slabs;
      }
      // Carving: the next blocks in address order, counted in locals (the
      // links' stores could alias the slab's fields).
      Slab* const slab = c.carving;
      const uint32_t first = slab->carved;
      const uint32_t end = std::min(slab->capacity, first + (want - n));
      unsigned char* at =
          reinterpret_cast<unsigned char*>(slab) + kSlabHeaderBytes + size_t{first} * block_bytes;
      for (uint32_t i = first; i < end; ++i, at += block_bytes) {
        FreeBlock* const block = reinterpret_cast<FreeBlock*>(at);
        StoreNext(block, head);
        head = block;
      }
      slab->carved = end;
      slab->live += end - first;
      n += end - first;
      if (end == slab->capacity) c.carving = nullptr;
    }
    c.blocks_out += n;
  }
  if (n == 0) throw std::bad_alloc();
  *taken = n;
  return head;
}

FreeBlock* BlockHeap::Give(size_t size_class, FreeBlock* head, uint32_t count) noexcept {
  SizeClass& c = classes_[size_class];
  Slab* empty = nullptr;  // slabs to free, linked through `next`
  FreeBlock* rest;
  {
    std::lock_guard<SpinLock> guard(c.lock);
    FreeBlock* block = head;
    for (uint32_t i = 0; i < count; ++i) {
      FreeBlock* const next = LoadNext(block);
      Slab* const slab = SlabOf(block);
#ifndef NDEBUG
      SIMSCHED_CHECK(slab->size_class == size_class, "a task block freed with the wrong size");
#endif
      SIMSCHED_CHECK(slab->live > 0, "a task block freed twice");
      FreeBlock* const had_free = slab->free;
      StoreNext(block, had_free);
      slab->free = block;
      if (--slab->live == 0) {
        if (had_free != nullptr) Unlink(c, slab);
        if (slab == c.carving) {
          // Keep the slab being carved (at most one empty slab a class),
          // as new: a class used by one block at a time never frees it.
          slab->free = nullptr;
          slab->carved = 0;
        } else {
          slab->next = empty;
          empty = slab;
          --c.slabs;
        }
      } else if (had_free == nullptr) {
        slab->prev = nullptr;
        slab->next = c.with_free;
        if (c.with_free != nullptr) c.with_free->prev = slab;
        c.with_free = slab;
      }
      block = next;
    }
    c.blocks_out -= count;
    rest = block;
  }
  while (empty != nullptr) {
    Slab* const slab = empty;
    empty = slab->next;
    DeleteSlab(slab);
  }
  return rest;
}

void BlockHeap::ReleaseEmptySlabs() noexcept {
  for (SizeClass& c : classes_) {
    Slab* empty = nullptr;
    {
      std::lock_guard<SpinLock> guard(c.lock);
      if (c.carving != nullptr && c.carving->live == 0) {
        empty = c.carving;
        c.carving = nullptr;
        if (empty->free != nullptr) Unlink(c, empty);
        --c.slabs;
      }
    }
    if (empty != nullptr) DeleteSlab(empty);
  }
}

BlockHeapStats BlockHeap::Stats() const {
  BlockHeapStats stats;
  for (const SizeClass& c : classes_) {
    std::lock_guard<SpinLock> guard(c.lock);
    stats.slabs += c.slabs;
    stats.blocks_out += c.blocks_out;
  }
  stats.slab_bytes = stats.slabs * kSlabBytes;
  return stats;
}

void BlockCache::Bind() noexcept {
  if (heap_ == nullptr) heap_ = &ProcessBlockHeap();
  bound_ = true;
  if (this == &tls_block_cache) retire_at_thread_exit.armed = true;
  SetLimits(Uncached() ? 0 : kBlockCacheCap);
}

void BlockCache::SetLimits(uint32_t limit) noexcept {
  for (FreeList& list : lists_) list.limit = limit;
}

void* BlockCache::AllocateSlow(size_t size_class, size_t bytes) {
  if (!bound_) Bind();
  if (observer_ != nullptr) observer_(bytes, false);
  FreeList& list = lists_[size_class];
  uint32_t taken = 0;
  FreeBlock* const block = heap_->Take(size_class, Uncached() ? 1 : kBlockBatch, nullptr, &taken);
  list.head = LoadNext(block);
  list.count = taken - 1;
  SIMSCHED_UNPOISON_BLOCK(block, BlockClassBytes(size_class));
  return block;
}

void BlockCache::FreeSlow(size_t size_class) noexcept {
  if (!bound_) Bind();
  if (observer_ != nullptr) observer_(BlockClassBytes(size_class), true);
  if (Uncached()) {
    Trim(size_class, 0);
  } else if (lists_[size_class].count > lists_[size_class].limit) {
    Trim(size_class, kBlockBatch);
  }
}

void BlockCache::Trim(size_t size_class, uint32_t keep) noexcept {
  FreeList& list = lists_[size_class];
  if (list.count <= keep) return;
  const uint32_t give = list.count - keep;
  list.head = heap_->Give(size_class, list.head, give);
  list.count = keep;
}

void BlockCache::Flush() noexcept {
  if (!bound_) return;
  for (size_t size_class = 0; size_class < kBlockClasses; ++size_class) Trim(size_class, 0);
}

void BlockCache::Retire() noexcept {
  Flush();
  retired_ = true;
  SetLimits(0);
}

void BlockCache::SetObserver(Observer observer) noexcept {
  Flush();
  observer_ = observer;
  if (bound_) SetLimits(Uncached() ? 0 : kBlockCacheCap);
}

uint64_t BlockCache::cached_blocks() const noexcept {
  uint64_t blocks = 0;
  for (const FreeList& list : lists_) blocks += list.count;
  return blocks;
}

}  // namespace simsched::internal
