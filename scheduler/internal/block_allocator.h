// Internal: BlockHeap and BlockCache, the allocator of task blocks.
//
// Every `Co` frame, with the task-header room in front of it (co.h), is one
// block. A 100,000-task run frees its blocks in whatever order the tasks end,
// all over the heap; glibc's malloc misses its fast bins and per-thread cache
// for blocks of 128 bytes and more and reads a freed chunk's neighbours to
// merge them (about 350 instructions and 4.6 cache misses a block in W2,
// docs/performance.md). Here blocks of up to kMaxSmallBlockBytes come in
// 16-byte size classes from slabs of kSlabBytes, one `::operator new` each,
// aligned to their size so that a block finds its slab by masking its
// address; a thread takes and returns them through its own free list per
// class (a few instructions, inline), which trades batches with the slabs
// under the class's lock when it runs dry or grows past its cap. A slab goes
// back to `::operator new`'s heap when its last block comes back to it; a
// thread's cached blocks go back when it exits. Larger blocks go straight to
// `::operator new`.
//
// Threads: a block freed on another thread joins that thread's free list
// (blocks of a class are interchangeable); only the slabs' bookkeeping is
// shared, and only under the class's lock. A task header can outlive its
// scheduler and the thread that made it: its block is just memory of a
// class, valid until it is freed on any thread.
//
// Sanitizers and the opt-out: under AddressSanitizer or ThreadSanitizer
// (SIMSCHED_ASAN, SIMSCHED_TSAN, or the compiler's own macros), or with
// SIMSCHED_PLAIN_TASK_BLOCKS defined for the whole build (docs/building.md),
// AllocateTaskBlock and FreeTaskBlock are `::operator new` and `delete`, so
// the sanitizer, a heap profiler or a replacement allocator sees every block.
// The classes below are built and unit-tested in every configuration; under
// ASan they poison the cells they hold.
//
//   void* block = internal::AllocateTaskBlock(200);
//   internal::FreeTaskBlock(block, 200);  // on any thread
//
//   internal::BlockHeap heap;             // a private heap, as tests use
//   internal::BlockCache cache(&heap);    // one per thread
//   void* b = cache.Allocate(64);
//   cache.Free(b, 64);
//   cache.Retire();                       // before the thread ends

#ifndef SIMSCHED_SCHEDULER_INTERNAL_BLOCK_ALLOCATOR_H_
#define SIMSCHED_SCHEDULER_INTERNAL_BLOCK_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <new>

#include "scheduler/internal/spin_lock.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMSCHED_BLOCK_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SIMSCHED_BLOCK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SIMSCHED_ASAN)
#define SIMSCHED_BLOCK_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) || defined(SIMSCHED_TSAN)
#define SIMSCHED_BLOCK_TSAN 1
#endif

#if defined(SIMSCHED_BLOCK_ASAN)
#include <sanitizer/asan_interface.h>
#define SIMSCHED_POISON_BLOCK(at, size) ASAN_POISON_MEMORY_REGION(at, size)
#define SIMSCHED_UNPOISON_BLOCK(at, size) ASAN_UNPOISON_MEMORY_REGION(at, size)
#else
#define SIMSCHED_POISON_BLOCK(at, size) ((void)(at), (void)(size))
#define SIMSCHED_UNPOISON_BLOCK(at, size) ((void)(at), (void)(size))
#endif

namespace simsched::internal {

// Whether task blocks bypass the slabs (sanitizers, or the user's opt-out).
#if defined(SIMSCHED_BLOCK_ASAN) || defined(SIMSCHED_BLOCK_TSAN) || \
    defined(SIMSCHED_PLAIN_TASK_BLOCKS)
inline constexpr bool kPlainTaskBlocks = true;
#else
inline constexpr bool kPlainTaskBlocks = false;
#endif

// Blocks are 16-byte aligned (__STDCPP_DEFAULT_NEW_ALIGNMENT__, which a
// coroutine frame needs) and come in classes 16 bytes apart.
inline constexpr size_t kBlockAlignment = 16;
inline constexpr size_t kMaxSmallBlockBytes = 512;
inline constexpr size_t kBlockClasses = kMaxSmallBlockBytes / kBlockAlignment;
// A slab: its bookkeeping in the first 64 bytes, then blocks of one class.
// 32 KiB (measured against 16 KiB: 1,569 against 1,583 instructions a W2
// timer) keeps a slab below glibc's mmap threshold even with the alignment's
// slack, and wastes at most a block's size at its end.
inline constexpr size_t kSlabBytes = 32768;
inline constexpr size_t kSlabHeaderBytes = 64;
// A thread keeps at most kBlockCacheCap blocks of a class; past it, it
// returns all but kBlockBatch of them to their slabs. It takes kBlockBatch
// at a time when it runs dry.
inline constexpr uint32_t kBlockCacheCap = 64;
inline constexpr uint32_t kBlockBatch = 32;

constexpr size_t BlockClassOf(size_t bytes) { return (bytes - 1) / kBlockAlignment; }
constexpr size_t BlockClassBytes(size_t size_class) { return (size_class + 1) * kBlockAlignment; }

// A free block's first word links it to the next.
struct FreeBlock {
  FreeBlock* next;
};

// What a heap holds: slabs (each kSlabBytes from `::operator new`) and the
// blocks taken from them that have not come back (in threads' free lists or
// in use).
struct BlockHeapStats {
  uint64_t slabs = 0;
  uint64_t slab_bytes = 0;
  uint64_t blocks_out = 0;
};

// The slabs of every class. Thread-safe; its constructor is constexpr and its
// destructor trivial, so the process's heap works before and after any other
// static object's lifetime. A heap must outlive its blocks; destroying one
// that still holds slabs leaks them.
class BlockHeap {
 public:
  constexpr BlockHeap() = default;
  BlockHeap(const BlockHeap&) = delete;
  BlockHeap& operator=(const BlockHeap&) = delete;

  // Takes up to `want` (at least one) blocks of `size_class` from its slabs,
  // making a slab if none has a free block, and links them into a list
  // ending in `tail`; returns the list's head. `*taken` gets the count.
  FreeBlock* Take(size_t size_class, uint32_t want, FreeBlock* tail, uint32_t* taken);
  // Returns the first `count` blocks of the list at `head` (all of
  // `size_class`) to their slabs, and the rest of the list; a slab whose last
  // block comes back is freed.
  FreeBlock* Give(size_t size_class, FreeBlock* head, uint32_t count) noexcept;

  BlockHeapStats Stats() const;

  // Frees the empty slab each class keeps for carving (see Give). For a
  // private heap before it is destroyed, and for tests of what a heap holds.
  void ReleaseEmptySlabs() noexcept;

 private:
  struct Slab;
  struct SizeClass {
    mutable SpinLock lock;
    Slab* with_free = nullptr;  // slabs with blocks on their free list
    Slab* carving = nullptr;    // the slab with blocks not yet handed out
    uint64_t slabs = 0;
    uint64_t blocks_out = 0;
  };
  static Slab* SlabOf(const void* block) noexcept;
  static void Unlink(SizeClass& c, Slab* slab) noexcept;
  static void DeleteSlab(Slab* slab) noexcept;

  SizeClass classes_[kBlockClasses];
};

// A thread's free lists, one per class, in front of a heap. Not thread-safe:
// one thread uses it (a block may be freed into any thread's cache). Its
// constructor is constexpr and its destructor trivial (it can be a
// thread_local without a guard); Retire() returns what it holds.
class BlockCache {
 public:
  // The process's heap (bound on first use).
  constexpr BlockCache() = default;
  explicit constexpr BlockCache(BlockHeap* heap) : heap_(heap) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A block of at least `bytes` (> 0), aligned to kBlockAlignment.
  void* Allocate(size_t bytes) {
    if (bytes > kMaxSmallBlockBytes) [[unlikely]] {
      return ::operator new(bytes);
    }
    const size_t size_class = BlockClassOf(bytes);
    FreeList& list = lists_[size_class];
    FreeBlock* const block = list.head;
    if (block == nullptr) [[unlikely]] {
      return AllocateSlow(size_class, bytes);
    }
    SIMSCHED_UNPOISON_BLOCK(block, BlockClassBytes(size_class));
    list.head = block->next;
    --list.count;
    return block;
  }

  // Frees a block from any thread's Allocate of the same `bytes` (or of any
  // size in the same class) on any cache of the same heap.
  void Free(void* block, size_t bytes) noexcept {
    if (bytes > kMaxSmallBlockBytes) [[unlikely]] {
      ::operator delete(block);
      return;
    }
    const size_t size_class = BlockClassOf(bytes);
    FreeList& list = lists_[size_class];
    FreeBlock* const freed = static_cast<FreeBlock*>(block);
    freed->next = list.head;
    SIMSCHED_POISON_BLOCK(freed, BlockClassBytes(size_class));
    list.head = freed;
    if (++list.count > list.limit) [[unlikely]] {
      FreeSlow(size_class);
    }
  }

  // Returns every cached block to the heap; the cache keeps working.
  void Flush() noexcept;
  // Flush(), then caches nothing: every later Free returns its block to the
  // heap and every Allocate takes one from it. For a thread that is ending
  // (the process's caches retire at thread exit).
  void Retire() noexcept;

  // Blocks held in this cache's free lists.
  uint64_t cached_blocks() const noexcept;

  // Test hook: while set, this cache holds nothing and calls `observer` with
  // the requested size of every small block allocated through it (`freed`
  // false) and the class's size of every one freed (`freed` true); large
  // blocks are `::operator new`'s, which a test can replace. Null turns it
  // off.
  using Observer = void (*)(size_t bytes, bool freed);
  void SetObserver(Observer observer) noexcept;

 private:
  struct FreeList {
    FreeBlock* head = nullptr;
    uint32_t count = 0;
    // Zero until the cache is bound to its heap, and when retired or
    // observed: every Free then takes the slow path.
    uint32_t limit = 0;
  };

  [[gnu::noinline]] void* AllocateSlow(size_t size_class, size_t bytes);
  [[gnu::noinline]] void FreeSlow(size_t size_class) noexcept;
  void Bind() noexcept;
  bool Uncached() const noexcept { return retired_ || observer_ != nullptr; }
  void SetLimits(uint32_t limit) noexcept;
  // Returns the list's blocks past its first `keep` to the heap.
  void Trim(size_t size_class, uint32_t keep) noexcept;

  FreeList lists_[kBlockClasses];
  BlockHeap* heap_ = nullptr;
  Observer observer_ = nullptr;
  bool bound_ = false;
  bool retired_ = false;
};

// The process's heap, and this thread's cache in front of it.
BlockHeap& ProcessBlockHeap() noexcept;
extern thread_local constinit BlockCache tls_block_cache;

// AllocateTaskBlock(), FreeTaskBlock()
//
// A `Co` frame's block (co.h). `bytes` on free must be the size allocated.
inline void* AllocateTaskBlock(size_t bytes) {
  if constexpr (kPlainTaskBlocks) {
    return ::operator new(bytes);
  } else {
    return tls_block_cache.Allocate(bytes);
  }
}
inline void FreeTaskBlock(void* block, size_t bytes) noexcept {
  if constexpr (kPlainTaskBlocks) {
    (void)bytes;
    // g++ 12 pairs this with co.h's class operator new, inlined above it,
    // and warns of a mismatch; that operator new is ::operator new too.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
    ::operator delete(block);
#pragma GCC diagnostic pop
  } else {
    tls_block_cache.Free(block, bytes);
  }
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_BLOCK_ALLOCATOR_H_
