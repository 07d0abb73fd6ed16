// Frame budgets of coroutines that await a primitive (g++, 64-bit;
// docs/performance.md, Memory). g++ keeps every class-type temporary of a
// `co_await` expression in the coroutine frame, across the suspension, so a
// factory with a defaulted `SourceLocation` argument (16 bytes) made every
// waiting frame 16 bytes larger than its awaiter needs. The factories take
// the call site as scalars instead (as Sleep does); these tests fail if a
// location temporary comes back. This binary replaces the global operator new
// to see the frames' sizes, and sees the task blocks a frame takes from the
// block allocator (scheduler/internal/block_allocator.h) through this
// thread's cache's observer.

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <optional>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/event.h"
#include "scheduler/internal/block_allocator.h"
#include "scheduler/scheduler.h"
#include "sim/channel.h"
#include "sim/combinators.h"
#include "sim/mutex.h"
#include "sim/semaphore.h"

namespace {

// Single-threaded test: plain counters.
bool g_counting = false;
std::size_t g_last_size = 0;

void* Allocate(std::size_t size) {
  if (g_counting) g_last_size = size;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void OnTaskBlock(std::size_t bytes, bool freed) {
  if (g_counting && !freed) g_last_size = bytes;
}

}  // namespace

void* operator new(std::size_t size) { return Allocate(size); }
void* operator new[](std::size_t size) { return Allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace simsched {
namespace {

#if defined(__GNUC__) && !defined(__clang__) && SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
// Each coroutine takes its primitive by reference (one 8-byte parameter in
// the frame) and awaits it once.
Co<void> Empty(int*) { co_return; }
Co<void> WaitsForEvent(Event* event) { co_await event->Wait(); }
Co<void> Receives(Channel<int>* channel) { (void)co_await channel->Recv(); }
Co<void> Sends(Channel<int>* channel) { (void)co_await channel->Send(1); }
Co<void> Locks(Mutex* mutex) { MutexGuard guard = co_await mutex->Lock(); }
Co<void> Acquires(Semaphore* semaphore) { co_await semaphore->Acquire(); }
Co<int> One() { co_return 1; }
// The combinators, with the call site as scalars (the default) and with an
// explicit SourceLocation temporary, as a defaulted one was.
Co<void> AwaitsWhenAll(int*) { (void)co_await WhenAll(One(), One()); }
Co<void> AwaitsWhenAllAt(int*) {
  (void)co_await WhenAll<Co<int>, Co<int>>(One(), One(), SourceLocation::current());
}
Co<void> AwaitsWhenAny(int*) { (void)co_await WhenAny(One(), One()); }
Co<void> AwaitsWhenAnyAt(int*) {
  (void)co_await WhenAny<Co<int>, Co<int>>(One(), One(), SourceLocation::current());
}
Co<void> AwaitsWithTimeout(int*) {
  (void)co_await WithTimeout(One(), std::chrono::seconds(1));
}
Co<void> AwaitsWithTimeoutAt(int*) {
  (void)co_await WithTimeout(One(), std::chrono::seconds(1), SourceLocation::current());
}

// The size of the frame `make()` allocates (the coroutine is not started).
template <typename F>
std::size_t FrameSize(F make) {
  internal::tls_block_cache.SetObserver(&OnTaskBlock);
  g_counting = true;
  g_last_size = 0;
  Co<void> co = make();
  g_counting = false;
  internal::tls_block_cache.SetObserver(nullptr);
  return g_last_size;
}
#endif

TEST(AwaiterFrameTest, AWaitingFrameHoldsItsAwaiterAndNoLocationTemporary) {
#if defined(__GNUC__) && !defined(__clang__) && SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  if constexpr (sizeof(void*) == 8) {
    int unused = 0;
    // The frame with nothing across a suspension: room for a task header,
    // resume and destroy pointers, the promise, g++'s bookkeeping, and the
    // parameter.
    const std::size_t empty = FrameSize([&] { return Empty(&unused); });
    ASSERT_GT(empty, 0u);
    // What may come on top of it: the awaiter (and the awaited result, where
    // g++ keeps one), plus at most 8 bytes of alignment and bookkeeping; a
    // SourceLocation temporary would be 16 more.
    auto budget = [&](std::size_t awaiter) { return empty + awaiter + 8; };

    Event event("frame-test");
    EXPECT_LE(FrameSize([&] { return WaitsForEvent(&event); }), budget(sizeof(Event::Awaiter)));
    Channel<int> channel(1, "frame-test");
    // g++ also gives the awaited result (discarded here) a frame slot.
    EXPECT_LE(FrameSize([&] { return Receives(&channel); }),
              budget(sizeof(Channel<int>::RecvAwaiter) + sizeof(std::optional<int>)));
    EXPECT_LE(FrameSize([&] { return Sends(&channel); }),
              budget(sizeof(Channel<int>::SendAwaiter) + sizeof(absl::Status)));
    Mutex mutex("frame-test");
    EXPECT_LE(FrameSize([&] { return Locks(&mutex); }),
              budget(sizeof(Mutex::LockAwaiter) + sizeof(MutexGuard)));
    Semaphore semaphore(1, "frame-test");
    EXPECT_LE(FrameSize([&] { return Acquires(&semaphore); }),
              budget(sizeof(Semaphore::AcquireAwaiter)));
  }
#else
  GTEST_SKIP() << "frame budgets are for g++";
#endif
}

// WhenAll, WhenAny and WithTimeout take the call site as scalars too: the
// frame awaiting one is at least a SourceLocation's 16 bytes smaller than
// one that passes a SourceLocation object, as the defaulted argument did.
TEST(AwaiterFrameTest, CombinatorsTakeTheirCallSiteAsScalars) {
#if defined(__GNUC__) && !defined(__clang__) && SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  if constexpr (sizeof(void*) == 8) {
    int unused = 0;
    const std::size_t location = sizeof(SourceLocation);
    EXPECT_LE(FrameSize([&] { return AwaitsWhenAll(&unused); }) + location,
              FrameSize([&] { return AwaitsWhenAllAt(&unused); }));
    EXPECT_LE(FrameSize([&] { return AwaitsWhenAny(&unused); }) + location,
              FrameSize([&] { return AwaitsWhenAnyAt(&unused); }));
    EXPECT_LE(FrameSize([&] { return AwaitsWithTimeout(&unused); }) + location,
              FrameSize([&] { return AwaitsWithTimeoutAt(&unused); }));
  }
#else
  GTEST_SKIP() << "frame budgets are for g++";
#endif
}

}  // namespace
}  // namespace simsched
