// Internal: SpinLock, the lock for critical sections of a few dozen
// instructions (the thread pool's run queues, Event's waiter list).
//
// A test-and-test-and-set lock. Uncontended, lock() is one atomic exchange
// and unlock() one release store, both inlined: no call into pthreads, which
// matters on the single-threaded TestScheduler where every lock is
// uncontended. After a short spin it yields the CPU, so a holder preempted
// on an oversubscribed machine gets to run. Never hold it across anything
// that blocks or runs user code.
//
//   internal::SpinLock lock;
//   { std::lock_guard<internal::SpinLock> guard(lock); queue.push_back(x); }

#ifndef SIMSCHED_SCHEDULER_INTERNAL_SPIN_LOCK_H_
#define SIMSCHED_SCHEDULER_INTERNAL_SPIN_LOCK_H_

#include <atomic>
#include <thread>

namespace simsched::internal {

// Spins with the CPU's pause hint: cheaper for the sibling hyperthread and
// the memory system than a bare load loop.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class SpinLock {
 public:
  void lock() {
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]] return;
    LockSlow();
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  [[gnu::noinline]] void LockSlow() {
    int spins = 0;
    do {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 100) {
          CpuRelax();
        } else {
          std::this_thread::yield();
        }
      }
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  std::atomic<bool> locked_{false};
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_SPIN_LOCK_H_
