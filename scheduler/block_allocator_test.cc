// BlockHeap and BlockCache (internal/block_allocator.h): focused tests, a
// seeded randomized test of alloc/free sequences over several caches (one per
// simulated thread: hand-offs, retirement, frees after a retirement) against
// an exact model of what the heap holds, the same on real threads (for
// ThreadSanitizer), and the process heap's bound after a 100,000-task run.
// Each test drives a private heap, so the slab code runs under every
// configuration; under AddressSanitizer the cells it holds are poisoned, and
// a test that touches one fails.

#include "scheduler/internal/block_allocator.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "sim/random.h"

namespace simsched::internal {
namespace {

// A block in use: its size and the byte it is filled with, checked before it
// is freed (two blocks handed out over each other would overwrite it).
struct Held {
  unsigned char* at;
  size_t bytes;
  unsigned char fill;
};

void Fill(const Held& held) { std::memset(held.at, held.fill, held.bytes); }
bool Intact(const Held& held) {
  for (size_t i = 0; i < held.bytes; ++i) {
    if (held.at[i] != held.fill) return false;
  }
  return true;
}

// A private heap that must hold nothing at the end: its empty slabs are
// released, and a slab left over would be a leak (AddressSanitizer's leak
// check reports it too).
class TestHeap : public BlockHeap {
 public:
  ~TestHeap() {
    ReleaseEmptySlabs();
    EXPECT_EQ(Stats().slabs, 0u) << "slabs left in a heap whose blocks all came back";
  }
};

Held Take(BlockCache& cache, size_t bytes, unsigned char fill) {
  Held held{static_cast<unsigned char*>(cache.Allocate(bytes)), bytes, fill};
  EXPECT_EQ(reinterpret_cast<uintptr_t>(held.at) % kBlockAlignment, 0u) << bytes;
  Fill(held);
  return held;
}

TEST(BlockAllocatorTest, SizeClassesAre16BytesApart) {
  EXPECT_EQ(BlockClassOf(1), 0u);
  EXPECT_EQ(BlockClassOf(16), 0u);
  EXPECT_EQ(BlockClassOf(17), 1u);
  EXPECT_EQ(BlockClassOf(kMaxSmallBlockBytes), kBlockClasses - 1);
  for (size_t bytes = 1; bytes <= kMaxSmallBlockBytes; ++bytes) {
    EXPECT_GE(BlockClassBytes(BlockClassOf(bytes)), bytes);
    EXPECT_LT(BlockClassBytes(BlockClassOf(bytes)), bytes + kBlockAlignment);
  }
}

TEST(BlockAllocatorTest, EverySizeGetsADistinctAlignedBlock) {
  TestHeap heap;
  BlockCache cache(&heap);
  std::vector<Held> held;
  for (size_t bytes = 1; bytes <= kMaxSmallBlockBytes + 64; ++bytes) {
    held.push_back(Take(cache, bytes, static_cast<unsigned char>(bytes)));
  }
  for (const Held& h : held) {
    EXPECT_TRUE(Intact(h)) << h.bytes;
    cache.Free(h.at, h.bytes);
  }
  cache.Retire();
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
  // One slab a class at most (the one being carved) stays.
  EXPECT_LE(heap.Stats().slabs, kBlockClasses);
}

#if defined(SIMSCHED_BLOCK_ASAN)
// Under AddressSanitizer a cell in a free list, or in a slab, is poisoned.
TEST(BlockAllocatorDeathTest, AFreedCellIsPoisoned) {
  TestHeap heap;
  BlockCache cache(&heap);
  unsigned char* const cached = static_cast<unsigned char*>(cache.Allocate(64));
  unsigned char* const returned = static_cast<unsigned char*>(cache.Allocate(64));
  cache.Free(cached, 64);
  EXPECT_DEATH(cached[40] = 1, "use-after-poison");
  cache.Retire();  // `returned` stays out; `cached` goes back to its slab
  cache.Free(returned, 64);
  EXPECT_DEATH(cached[8] = 1, "use-after-poison");
}
#endif

TEST(BlockAllocatorTest, LargeBlocksBypassTheSlabs) {
  TestHeap heap;
  BlockCache cache(&heap);
  Held big = Take(cache, kMaxSmallBlockBytes + 1, 7);
  Held huge = Take(cache, 1 << 20, 9);
  EXPECT_EQ(heap.Stats().slabs, 0u);
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
  EXPECT_TRUE(Intact(big));
  EXPECT_TRUE(Intact(huge));
  cache.Free(big.at, big.bytes);
  cache.Free(huge.at, huge.bytes);
  EXPECT_EQ(cache.cached_blocks(), 0u);
  cache.Retire();
}

TEST(BlockAllocatorTest, ASlabIsFreedWhenItsLastBlockComesBack) {
  TestHeap heap;
  BlockCache cache(&heap);
  constexpr size_t kBytes = 192;
  const size_t per_slab = (kSlabBytes - kSlabHeaderBytes) / kBytes;
  std::vector<Held> held;
  for (size_t i = 0; i < 10 * per_slab; ++i) held.push_back(Take(cache, kBytes, 1));
  // Ten full slabs, and the one the last batch was carved from.
  EXPECT_GE(heap.Stats().slabs, 10u);
  EXPECT_LE(heap.Stats().slabs, 11u);
  EXPECT_EQ(heap.Stats().slab_bytes, heap.Stats().slabs * kSlabBytes);
  for (const Held& h : held) cache.Free(h.at, h.bytes);
  EXPECT_LE(cache.cached_blocks(), kBlockCacheCap);
  cache.Flush();
  EXPECT_EQ(cache.cached_blocks(), 0u);
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
  // Every full slab went back; the one being carved stays, empty.
  EXPECT_LE(heap.Stats().slabs, 1u);

  // The slab being carved is kept, empty, so that one block taken and
  // returned again and again does not make and free a slab each time.
  cache.Retire();
  for (int i = 0; i < 100; ++i) {
    Held h = Take(cache, kBytes, 2);
    EXPECT_EQ(heap.Stats().slabs, 1u);
    cache.Free(h.at, h.bytes);
    EXPECT_EQ(heap.Stats().blocks_out, 0u);
    EXPECT_EQ(heap.Stats().slabs, 1u);
  }
}

TEST(BlockAllocatorTest, AThreadsCacheIsCapped) {
  TestHeap heap;
  BlockCache cache(&heap);
  constexpr size_t kBytes = 208;
  std::vector<Held> held;
  for (int i = 0; i < 5000; ++i) held.push_back(Take(cache, kBytes, 3));
  for (const Held& h : held) {
    cache.Free(h.at, h.bytes);
    ASSERT_LE(cache.cached_blocks(), kBlockCacheCap);
  }
  // What stays: the cached blocks and their slabs, and the slab being carved.
  const BlockHeapStats stats = heap.Stats();
  EXPECT_EQ(stats.blocks_out, cache.cached_blocks());
  EXPECT_LE(stats.slabs, cache.cached_blocks() + 1);
  cache.Retire();
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
}

TEST(BlockAllocatorTest, BlocksFreedOnAnotherThreadAndAfterTheAllocatorExits) {
  TestHeap heap;
  std::vector<Held> held;
  std::thread allocator([&] {
    BlockCache cache(&heap);
    for (int i = 0; i < 1000; ++i) held.push_back(Take(cache, 64 + 16 * (i % 4), 5));
    cache.Retire();
  });
  allocator.join();
  std::thread freer([&] {
    BlockCache cache(&heap);
    for (size_t i = 0; i < held.size() / 2; ++i) {
      EXPECT_TRUE(Intact(held[i]));
      cache.Free(held[i].at, held[i].bytes);
    }
    cache.Retire();
  });
  freer.join();
  BlockCache cache(&heap);
  for (size_t i = held.size() / 2; i < held.size(); ++i) {
    EXPECT_TRUE(Intact(held[i]));
    cache.Free(held[i].at, held[i].bytes);
  }
  cache.Retire();
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
  EXPECT_LE(heap.Stats().slabs, 4u);
}

// The observer sees every small block's request and free, with nothing cached.
size_t observed_requests = 0;
size_t observed_frees = 0;
size_t observed_last = 0;
void Observe(size_t bytes, bool freed) {
  if (freed) {
    ++observed_frees;
  } else {
    ++observed_requests;
    observed_last = bytes;
  }
}

TEST(BlockAllocatorTest, TheObserverSeesEveryRequest) {
  TestHeap heap;
  BlockCache cache(&heap);
  Held before = Take(cache, 100, 1);
  cache.SetObserver(&Observe);
  Held a = Take(cache, 100, 2);
  EXPECT_EQ(observed_requests, 1u);
  EXPECT_EQ(observed_last, 100u);
  Held b = Take(cache, 33, 3);
  EXPECT_EQ(observed_requests, 2u);
  EXPECT_EQ(observed_last, 33u);
  cache.Free(a.at, a.bytes);
  cache.Free(before.at, before.bytes);
  EXPECT_EQ(observed_frees, 2u);
  EXPECT_EQ(cache.cached_blocks(), 0u);
  cache.SetObserver(nullptr);
  cache.Free(b.at, b.bytes);
  EXPECT_EQ(observed_frees, 2u);
  cache.Retire();
  EXPECT_EQ(heap.Stats().blocks_out, 0u);
}

// One seeded case: `threads` caches over one heap, driven in a seeded
// interleaving on this thread. Each step allocates a block of a seeded size
// (a few sizes at a time, as tasks have), or frees a random live block
// through a random cache (a hand-off when it is not the allocating one), or
// retires a cache (the thread exits; its blocks live on and are freed
// through the others, or through the retired cache itself, as a thread_local
// destructor's frees are). Checks after every step that the heap's blocks
// out are exactly the live blocks and the cached ones, and that no cache
// passes its cap; at the end, that only the slabs being carved remain.
void RunCase(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  TestHeap heap;
  const int threads = 1 + static_cast<int>(rng.Below(4));
  std::vector<std::unique_ptr<BlockCache>> caches;
  for (int i = 0; i < threads; ++i) caches.push_back(std::make_unique<BlockCache>(&heap));
  std::vector<bool> retired(threads, false);
  size_t sizes[3];
  for (size_t& s : sizes) {
    s = rng.Chance(1, 10) ? kMaxSmallBlockBytes + 1 + rng.Below(600) : 1 + rng.Below(400);
  }
  std::vector<Held> live;
  const int steps = 50 + static_cast<int>(rng.Below(rng.Chance(1, 8) ? 3000 : 300));
  auto check = [&] {
    uint64_t cached = 0;
    for (const auto& cache : caches) {
      ASSERT_LE(cache->cached_blocks(), kBlockCacheCap * kBlockClasses);
      cached += cache->cached_blocks();
    }
    uint64_t small_live = 0;
    for (const Held& h : live) small_live += h.bytes <= kMaxSmallBlockBytes ? 1 : 0;
    ASSERT_EQ(heap.Stats().blocks_out, small_live + cached);
  };
  for (int step = 0; step < steps; ++step) {
    const uint64_t dice = rng.Below(100);
    const int t = static_cast<int>(rng.Below(threads));
    if (dice < 55 || live.empty()) {
      live.push_back(Take(*caches[t], sizes[rng.Below(3)], static_cast<unsigned char>(step)));
    } else if (dice < 97) {
      const size_t i = rng.Below(live.size());
      ASSERT_TRUE(Intact(live[i]));
      caches[t]->Free(live[i].at, live[i].bytes);
      live[i] = live.back();
      live.pop_back();
    } else if (!retired[t]) {
      caches[t]->Retire();
      retired[t] = true;
      ASSERT_EQ(caches[t]->cached_blocks(), 0u);
    } else if (rng.Chance(1, 2)) {
      sizes[rng.Below(3)] = 1 + rng.Below(kMaxSmallBlockBytes);
    }
    check();
    if (::testing::Test::HasFatalFailure()) return;
  }
  while (!live.empty()) {
    ASSERT_TRUE(Intact(live.back()));
    caches[rng.Below(threads)]->Free(live.back().at, live.back().bytes);
    live.pop_back();
  }
  for (auto& cache : caches) cache->Retire();
  const BlockHeapStats stats = heap.Stats();
  EXPECT_EQ(stats.blocks_out, 0u);
  EXPECT_LE(stats.slabs, kBlockClasses);  // the slabs being carved, empty
}

int CaseCount(int otherwise) {
  if (const char* cases = std::getenv("SIMSCHED_BLOCK_ALLOCATOR_CASES")) return std::atoi(cases);
  return otherwise;
}

// Fewer under ThreadSanitizer, which makes each step about 20 times slower.
#if defined(SIMSCHED_BLOCK_TSAN)
constexpr int kDefaultCases = 600;
#else
constexpr int kDefaultCases = 3000;
#endif

TEST(BlockAllocatorTest, SeededSequencesKeepTheAccounts) {
  const int cases = CaseCount(kDefaultCases);
  for (int seed = 0; seed < cases; ++seed) {
    RunCase(static_cast<uint64_t>(seed));
    if (HasFailure()) return;
  }
}

// Real threads: each allocates blocks of a seeded size, and frees its own or
// takes others' from a shared pile (a hand-off); some exit early, leaving
// their blocks to the rest and to this thread, which frees what is left.
TEST(BlockAllocatorTest, SeededSequencesOnRealThreads) {
  const int cases = CaseCount(kDefaultCases) / 100;
  for (int seed = 0; seed < cases; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TestHeap heap;
    std::mutex mutex;
    std::vector<Held> pile;
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        Rng rng(static_cast<uint64_t>(seed) * 8 + static_cast<uint64_t>(t));
        BlockCache cache(&heap);
        const size_t bytes = 1 + rng.Below(kMaxSmallBlockBytes);
        const int steps = 200 + static_cast<int>(rng.Below(2000));
        std::vector<Held> mine;
        for (int step = 0; step < steps; ++step) {
          const uint64_t dice = rng.Below(100);
          if (dice < 50) {
            mine.push_back(Take(cache, bytes, static_cast<unsigned char>(t + 1)));
          } else if (dice < 75 && !mine.empty()) {
            std::lock_guard<std::mutex> guard(mutex);
            pile.push_back(mine.back());
            mine.pop_back();
          } else if (dice < 90 && !mine.empty()) {
            EXPECT_TRUE(Intact(mine.back()));
            cache.Free(mine.back().at, mine.back().bytes);
            mine.pop_back();
          } else {
            Held other{};
            {
              std::lock_guard<std::mutex> guard(mutex);
              if (pile.empty()) continue;
              other = pile.back();
              pile.pop_back();
            }
            EXPECT_TRUE(Intact(other));
            cache.Free(other.at, other.bytes);
          }
        }
        std::lock_guard<std::mutex> guard(mutex);
        pile.insert(pile.end(), mine.begin(), mine.end());
        cache.Retire();
      });
    }
    for (std::thread& thread : threads) thread.join();
    BlockCache cache(&heap);
    for (const Held& h : pile) {
      EXPECT_TRUE(Intact(h));
      cache.Free(h.at, h.bytes);
    }
    cache.Retire();
    EXPECT_EQ(heap.Stats().blocks_out, 0u);
    EXPECT_LE(heap.Stats().slabs, 3u);
  }
}

// The process's caches retire at thread exit: what an ended thread cached
// goes back to the slabs, and its blocks still in use are freed elsewhere.
TEST(BlockAllocatorTest, AThreadsCacheGoesBackWhenItExits) {
  if constexpr (kPlainTaskBlocks) {
    GTEST_SKIP() << "task blocks are operator new's in this build";
  } else {
    tls_block_cache.Flush();
    const uint64_t out_before = ProcessBlockHeap().Stats().blocks_out;
    std::vector<void*> kept;
    std::thread thread([&] {
      std::vector<void*> blocks;
      for (int i = 0; i < 1000; ++i) blocks.push_back(AllocateTaskBlock(200));
      for (int i = 0; i < 500; ++i) FreeTaskBlock(blocks[i], 200);  // some stay cached
      EXPECT_GT(tls_block_cache.cached_blocks(), 0u);
      kept.assign(blocks.begin() + 500, blocks.end());
    });
    thread.join();
    // Only the 500 still in use are out: the thread's cache went back.
    EXPECT_EQ(ProcessBlockHeap().Stats().blocks_out, out_before + 500);
    for (void* block : kept) FreeTaskBlock(block, 200);
    tls_block_cache.Flush();
    EXPECT_EQ(ProcessBlockHeap().Stats().blocks_out, out_before);
  }
}

// The process's heap after a 100,000-task run: the scheduler is gone, and
// what the allocator keeps is this thread's capped cache, the slabs its
// blocks are in, and one slab a class being carved; not the run's 20 MB.
Co<void> SleepABit(Duration duration) { co_await Sleep(duration); }

TEST(BlockAllocatorTest, TheProcessHeapKeepsLittleAfterABigRun) {
  if constexpr (kPlainTaskBlocks) {
    GTEST_SKIP() << "task blocks are operator new's in this build";
  } else {
    constexpr int kTasks = 100000;
    {
      TestScheduler scheduler({.seed = 7});
      Rng rng(7);
      for (int i = 0; i < kTasks; ++i) {
        Spawn(scheduler, SleepABit(std::chrono::microseconds(rng.Below(1000000)))).Detach();
      }
      // All are suspended before the first fires: every block is out.
      ASSERT_TRUE(scheduler.RunUntilIdle().ok());
      EXPECT_GE(ProcessBlockHeap().Stats().blocks_out, static_cast<uint64_t>(kTasks));
      EXPECT_GE(ProcessBlockHeap().Stats().slab_bytes, kTasks * 96u);
      ASSERT_TRUE(scheduler.Run().ok());
    }
    const BlockHeapStats stats = ProcessBlockHeap().Stats();
    const uint64_t cached = tls_block_cache.cached_blocks();
    EXPECT_EQ(stats.blocks_out, cached);
    EXPECT_LE(cached,
              kBlockCacheCap * 2);  // the tasks' class, and maybe the scheduler's own frames'
    EXPECT_LE(stats.slabs, cached + kBlockClasses);
    tls_block_cache.Flush();
    EXPECT_EQ(ProcessBlockHeap().Stats().blocks_out, 0u);
    EXPECT_LE(ProcessBlockHeap().Stats().slabs, kBlockClasses);
    ProcessBlockHeap().ReleaseEmptySlabs();
    EXPECT_EQ(ProcessBlockHeap().Stats().slabs, 0u);
  }
}

}  // namespace
}  // namespace simsched::internal
