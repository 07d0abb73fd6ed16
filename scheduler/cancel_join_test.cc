// Joining cancellation on the ThreadPoolScheduler: a task, a frame's
// destruction or a combinator that cancels a task whose frames are in use on
// another thread (polled, or being destroyed by another canceller) returns
// only once those frames are gone, as a call stack unwinds innermost first
// (docs/cancellation.md, "Cancelling from another thread"). Plain code outside
// any task does not wait; nothing waits for itself.

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

template <typename Predicate>
bool WaitFor(Predicate predicate) {
  // Generous: the machine may be loaded; a pass never waits this long.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// A local whose destructor takes a while: it signals that the destruction has
// started, waits for `release` and only then marks the frame gone. The pause
// after `release` leaves a canceller that does not wait plenty of time to
// return early, so a missing join shows as `gone == false`.
struct SlowToDestroy {
  std::atomic<bool>* started;
  std::atomic<bool>* release;
  std::atomic<bool>* gone;
  ~SlowToDestroy() {
    started->store(true);
    while (!release->load()) std::this_thread::yield();
    std::this_thread::sleep_for(milliseconds(20));
    gone->store(true);
  }
};

// Regression (issue 11, the torture test's last pool violation): the frames
// of a task cancelled while suspended are destroyed by whoever cancels it.
// A second canceller that joins (here: CancelAndJoin, as combinators and
// owners do) used to see "cancelled, not running" and return while the first
// was still destroying them, so an owner could free its own frame first.
TEST(CancelJoinTest, JoiningWaitsForADestructionAnotherThreadIsCarryingOut) {
  ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 1});
  Event never("never");
  std::atomic<bool> waiting{false}, started{false}, release{false}, gone{false};
  Task<void> task = Spawn(pool, [&]() -> Co<void> {
    SlowToDestroy local{&started, &release, &gone};
    waiting = true;
    co_await never.Wait();
  });
  internal::TaskHeader* header = task.state();
  ASSERT_TRUE(WaitFor([&] { return waiting.load() && never.WaiterCount() == 1 && !header->running(); }));
  header->AddRef();  // the second canceller's own reference
  std::thread first([&] { task.Cancel(); });  // plain code: destroys the frame itself
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  release = true;
  header->CancelAndJoin();
  EXPECT_TRUE(gone.load()) << "CancelAndJoin returned while another thread was still "
                              "destroying the task's frame";
  first.join();
  header->Release();
}

// The same race through the public surface: a task cancels a task it owns
// while a thread of no task is cancelling it too.
TEST(CancelJoinTest, OwnerCancellingFromATaskWaitsForAnotherThreadsDestruction) {
  ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 2});
  Event never("never");
  std::atomic<bool> waiting{false}, started{false}, release{false}, gone{false};
  std::atomic<bool> gone_when_cancel_returned{false}, owner_done{false};
  auto child = std::make_shared<Task<void>>(Spawn(pool, [&]() -> Co<void> {
    SlowToDestroy local{&started, &release, &gone};
    waiting = true;
    co_await never.Wait();
  }));
  ASSERT_TRUE(WaitFor([&] {
    return waiting.load() && never.WaiterCount() == 1 && !child->state()->running();
  }));
  internal::TaskHeader* header = child->state();
  std::thread first([&] { header->Cancel(); });  // plain code: no join, destroys inline
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  Task<void> owner = Spawn(pool, [&, child]() -> Co<void> {
    release = true;
    child->Cancel();  // from a task: joins
    gone_when_cancel_returned = gone.load();
    owner_done = true;
    co_return;
  });
  ASSERT_TRUE(WaitFor([&] { return owner_done.load(); }));
  EXPECT_TRUE(gone_when_cancel_returned.load());
  first.join();
}

// A frame that holds the last handle to its own task: when the task is
// cancelled mid-poll from another thread, the poller destroys the frame and
// the handle's destructor cancels the task again, from inside that
// destruction. It must not wait for itself.
TEST(CancelJoinTest, ATaskWhoseFrameOwnsItsOwnHandleIsDestroyedWithoutWaitingForItself) {
  ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 1});
  std::atomic<bool> running{false}, cancelled{false}, destroyed{false};
  auto self = std::make_shared<Task<void>>();
  struct Flag {
    std::atomic<bool>* set;
    ~Flag() { set->store(true); }
  };
  Task<void> task = Spawn(pool, [&running, &cancelled, &destroyed,
                                 holder = self]() mutable -> Co<void> {
    Flag flag{&destroyed};
    std::shared_ptr<Task<void>> own = std::move(holder);
    running = true;
    while (!cancelled.load()) std::this_thread::yield();
    co_await Yield();
  });
  internal::TaskHeader* header = task.state();
  header->AddRef();
  *self = std::move(task);
  self.reset();  // the frame (its lambda's captures, `own`) holds the only handle
  ASSERT_TRUE(WaitFor([&] { return running.load(); }));
  header->Cancel();  // plain code, mid-poll: the poller destroys the frame
  cancelled = true;
  EXPECT_TRUE(WaitFor([&] { return destroyed.load(); })) << "the poller deadlocked";
  EXPECT_TRUE(WaitFor([&] { return header->finished(); }));
  header->Release();
}

// Two tasks on two workers, each cancelling the other from its poll: at least
// one poll goes on, both end, neither waits forever.
TEST(CancelJoinTest, TwoTasksCancellingEachOtherDoNotDeadlock) {
  for (int round = 0; round < 50; ++round) {
    ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 2});
    std::atomic<int> ready{0};
    Task<void> a, b;
    std::atomic<bool> go{false};
    a = Spawn(pool, [&]() -> Co<void> {
      ++ready;
      while (!go.load()) std::this_thread::yield();
      b.Cancel();
      co_return;
    });
    b = Spawn(pool, [&]() -> Co<void> {
      ++ready;
      while (!go.load()) std::this_thread::yield();
      a.Cancel();
      co_return;
    });
    ASSERT_TRUE(WaitFor([&] { return ready.load() == 2; }));
    go = true;
    ASSERT_TRUE(WaitFor([&] { return a.IsFinished() && b.IsFinished(); }))
        << "round " << round << ": two tasks cancelling each other deadlocked";
  }
}

// Regression (torture seeds 1033 and 1178): during the pool's shutdown a
// task's poll wakes the task that owns it. The woken owner used to be
// cancelled right there, inside the waking call, so its frame (and what it
// lends) was destroyed while the task it owns was still running on this very
// thread. Shutdown now holds such work and cancels it after the workers stop.
TEST(CancelJoinTest, AWakeDuringShutdownDoesNotDestroyTheWokenOwnerInsideTheWakersPoll) {
  auto pool = std::make_unique<ThreadPoolScheduler>(ThreadPoolSchedulerOptions{.worker_threads = 1});
  Event owner_wakes("owner-wakes");
  std::atomic<bool> shutting_down{false}, child_running{false};
  std::atomic<bool> owner_alive{true}, owner_alive_after_wake{false}, child_done{false};
  struct ClearOnDestruction {
    std::atomic<bool>* flag;
    ~ClearOnDestruction() { flag->store(false); }
  };
  Task<void> owner = Spawn(*pool, [&]() -> Co<void> {
    ClearOnDestruction alive{&owner_alive};
    Task<void> child = Spawn(*CurrentScheduler(), [&]() -> Co<void> {
      child_running = true;
      while (!shutting_down.load()) std::this_thread::yield();
      // Give the destructor time to stop accepting work (step 1 of shutdown);
      // it then waits for this poll to end before it cancels anything.
      std::this_thread::sleep_for(milliseconds(50));
      owner_wakes.Set();
      owner_alive_after_wake = owner_alive.load();
      child_done = true;
      co_return;
    });
    co_await owner_wakes.Wait();
    co_await child;
  });
  owner.Detach();
  ASSERT_TRUE(WaitFor([&] { return child_running.load() && owner_wakes.WaiterCount() == 1; }));
  shutting_down = true;
  pool.reset();
  EXPECT_TRUE(child_done.load());
  EXPECT_TRUE(owner_alive_after_wake.load())
      << "the owner's frame was destroyed inside the poll of the task it owns";
  EXPECT_FALSE(owner_alive.load()) << "shutdown did not cancel the owner";
}

}  // namespace
}  // namespace simsched
