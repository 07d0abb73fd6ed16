// Wait sites outside the task header (scheduler/wait_record.h,
// internal/wait_site.h): what reports show for a user's WaitRecord and for
// the interned DescribeWait(what, where), and that no report ever reads a
// record that is gone: a cancelled waiter, a task destroyed while waiting, a
// wait recorded and then completed without suspending, a record in a child
// frame that has ended, and tasks on the ThreadPoolScheduler (tsan).

#include <atomic>
#include <coroutine>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/co.h"
#include "scheduler/event.h"
#include "scheduler/internal/wait_site.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/wait_record.h"
#include "scheduler/waker.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class Blocker final : public WaitTarget {
 public:
  std::string DescribeBlocker() const override { return "held by the test"; }
};

// A user awaitable whose description is per object: it holds a WaitRecord.
class Gate {
 public:
  explicit Gate(std::string name) : name_(std::move(name)) {}

  class Awaiter {
   public:
    Awaiter(Gate& gate, SourceLocation where) : gate_(gate), where_(where) {}
    bool await_ready() const { return gate_.open_; }
    // Records the wait, then suspends unless the gate opened meanwhile (a
    // wait that completes without suspending).
    bool await_suspend(std::coroutine_handle<>) {
      record_.Set(gate_.name_, where_, &gate_.blocker_);
      DescribeWait(record_);
      if (gate_.open_on_suspend_) return false;
      gate_.waiters_.push_back(CurrentWaker());
      return true;
    }
    void await_resume() {}

   private:
    Gate& gate_;
    SourceLocation where_;
    WaitRecord record_;
  };
  Awaiter Wait(SourceLocation where = SourceLocation::current()) { return Awaiter(*this, where); }

  void Open() {
    open_ = true;
    for (Waker& waker : waiters_) std::move(waker).Wake();
    waiters_.clear();
  }
  // The next Wait records its site, then does not suspend.
  void OpenOnSuspend() { open_on_suspend_ = true; }

 private:
  std::string name_;
  Blocker blocker_;
  bool open_ = false;
  bool open_on_suspend_ = false;
  std::vector<Waker> waiters_;
};

// Suspends once and records nothing.
struct Silent {
  Waker* out;
  bool await_ready() { return false; }
  void await_suspend(std::coroutine_handle<>) { *out = CurrentWaker(); }
  void await_resume() {}
};

TEST(WaitRecordTest, AUsersWaitRecordIsWhatReportsShow) {
  TestScheduler s;
  Gate gate("Gate 'front door'");
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await gate.Wait(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeTask(task.metadata().id),
              ContainsRegex("waiting on Gate 'front door' at .*wait_record_test.cc:[0-9]+ "
                            "\\(operator\\(\\)\\); it is held by the test"));
  gate.Open();  // queued, not yet run: the record is still the awaiter's
  EXPECT_THAT(s.DescribeTask(task.metadata().id),
              ContainsRegex("queued to run \\(woken from Gate 'front door' at "
                            ".*wait_record_test.cc:[0-9]+"));
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(task.IsFinished());
}

TEST(WaitRecordTest, DescribeWaitByValueIsInternedPerCallSite) {
  const SourceLocation here = SourceLocation::current();
  const SourceLocation there = SourceLocation::current();
  const internal::PackedWaitSite* a = internal::InternWaitSite("Thing::Wait", here, nullptr);
  EXPECT_EQ(internal::InternWaitSite("Thing::Wait", here, nullptr), a);
  EXPECT_NE(internal::InternWaitSite("Thing::Wait", there, nullptr), a);
  Blocker blocker;
  EXPECT_NE(internal::InternWaitSite("Thing::Wait", here, &blocker), a);
  EXPECT_EQ(a->what(), "Thing::Wait");
  EXPECT_EQ(a->where().line(), here.line());
  EXPECT_EQ(a->target(), nullptr);

  // Many distinct sites (past the per-thread cache and the static table)
  // all read back.
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back("site " + std::to_string(i));
  std::vector<const internal::PackedWaitSite*> interned;
  for (const std::string& name : names) {
    interned.push_back(internal::InternWaitSite(name, here, nullptr));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(internal::InternWaitSite(names[i], here, nullptr), interned[i]);
    EXPECT_EQ(interned[i]->what(), names[i]);
  }

  // And reports show it as before.
  TestScheduler s;
  Waker parked;
  struct Described {
    Waker* out;
    bool await_ready() { return false; }
    void await_suspend(std::coroutine_handle<>) {
      *out = CurrentWaker();
      DescribeWait("Described::Wait");
    }
    void await_resume() {}
  };
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await Described{&parked}; });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeTask(task.metadata().id),
              ContainsRegex("waiting on Described::Wait at .*wait_record_test.cc:[0-9]+"));
}

// The inline lookup DescribeWait(what, where) runs before it interns: it
// finds exactly the record interned for the same words, per thread, with
// separate caches for sites with and without a target.
TEST(WaitRecordTest, TheInlineLookupFindsOnlyTheSameSite) {
  const SourceLocation here = SourceLocation::current();
  const std::string_view what = "Cached::Wait";
  Blocker blocker;
  EXPECT_EQ(internal::FindCachedWaitSite(what, here, nullptr), nullptr);  // never interned
  const internal::PackedWaitSite* plain = internal::InternWaitSite(what, here, nullptr);
  EXPECT_EQ(internal::FindCachedWaitSite(what, here, nullptr), plain);
  EXPECT_EQ(internal::FindCachedWaitSite(what, here, &blocker), nullptr);
  const internal::PackedWaitSite* targeted = internal::InternWaitSite(what, here, &blocker);
  EXPECT_NE(targeted, plain);
  EXPECT_EQ(internal::FindCachedWaitSite(what, here, &blocker), targeted);
  EXPECT_EQ(internal::FindCachedWaitSite(what, here, nullptr), plain);  // still cached
  // Same address, another length; same words, another location.
  EXPECT_EQ(internal::FindCachedWaitSite(what.substr(0, 6), here, nullptr), nullptr);
  const SourceLocation there = SourceLocation::current();
  EXPECT_EQ(internal::FindCachedWaitSite(what, there, nullptr), nullptr);
  // An empty description with no address at all is a site like any other
  // (an empty cache slot must not match it).
  EXPECT_EQ(internal::FindCachedWaitSite(std::string_view(), there, nullptr), nullptr);
  const internal::PackedWaitSite* empty = internal::InternWaitSite(std::string_view(), there, nullptr);
  EXPECT_EQ(empty->what(), "");
  EXPECT_EQ(internal::FindCachedWaitSite(std::string_view(), there, nullptr), empty);
  // Another thread's cache starts empty and interns to the same records.
  std::thread([&] {
    EXPECT_EQ(internal::FindCachedWaitSite(what, here, nullptr), nullptr);
    EXPECT_EQ(internal::InternWaitSite(what, here, nullptr), plain);
    EXPECT_EQ(internal::InternWaitSite(what, here, &blocker), targeted);
  }).join();
}

TEST(WaitRecordTest, AWaitThatDoesNotSuspendLeavesNoRecordBehind) {
  TestScheduler s;
  Gate gate("Gate 'side door'");
  gate.OpenOnSuspend();
  Waker parked;
  Task<void> task = Spawn(s, [&]() -> Co<void> {
    co_await gate.Wait();  // records, then completes at once: the awaiter dies
    co_await Silent{&parked};
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  // The dead awaiter's record is not read (ASan would see it): the task is
  // suspended at an awaitable that recorded nothing.
  const std::string report = s.DescribeTask(task.metadata().id);
  EXPECT_THAT(report, HasSubstr("does not record its wait site"));
  EXPECT_THAT(report, Not(HasSubstr("side door")));
  std::move(parked).Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
}

TEST(WaitRecordTest, ARecordInAnEndedChildFrameIsNotRead) {
  TestScheduler s;
  Gate gate("Gate 'child'");
  Waker parked;
  auto child = [&]() -> Co<void> { co_await gate.Wait(); };
  Task<void> task = Spawn(s, [&]() -> Co<void> {
    co_await child();  // the child's frame, and its record, end here
    co_await Silent{&parked};
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeTask(task.metadata().id), HasSubstr("Gate 'child'"));
  gate.Open();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeTask(task.metadata().id), HasSubstr("does not record its wait site"));
  std::move(parked).Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
}

TEST(WaitRecordTest, ACancelledWaiterWaitsOnNothing) {
  TestScheduler s;
  Gate gate("Gate 'cancelled'");
  Event event("cancelled");
  Task<void> at_gate = Spawn(s, [&]() -> Co<void> { co_await gate.Wait(); });
  Task<void> at_event = Spawn(s, [&]() -> Co<void> { co_await event.Wait(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(at_event.state()->wait_site().what, "Event 'cancelled'");
  ASSERT_EQ(at_gate.state()->wait_site().what, "Gate 'cancelled'");
  // The frames, and the awaiters holding the records, are destroyed; the
  // headers live on (the handles hold them).
  at_gate.Cancel();
  at_event.Cancel();
  ASSERT_TRUE(at_gate.IsCancelled());
  ASSERT_TRUE(at_event.IsCancelled());
  EXPECT_TRUE(at_gate.state()->wait_site().what.empty());
  EXPECT_EQ(at_gate.state()->wait_site().target, nullptr);
  EXPECT_TRUE(at_event.state()->wait_site().what.empty());
  EXPECT_THAT(s.DescribeLiveTasks(), Not(HasSubstr("cancelled'")));
}

TEST(WaitRecordTest, ATaskDestroyedWhileWaitingLeavesNothingToRead) {
  Gate gate("Gate 'destroyed'");
  Event event("destroyed");
  Task<void> at_gate;
  Task<void> at_event;
  {
    TestScheduler s;
    at_gate = Spawn(s, [&]() -> Co<void> { co_await gate.Wait(); });
    at_event = Spawn(s, [&]() -> Co<void> { co_await event.Wait(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_THAT(s.DescribeLiveTasks(), HasSubstr("Gate 'destroyed'"));
  }  // the scheduler's shutdown destroys the waiting frames
  EXPECT_TRUE(at_gate.IsFinished());
  EXPECT_TRUE(at_gate.state()->wait_site().what.empty());
  EXPECT_TRUE(at_event.state()->wait_site().what.empty());
}

// An Event destroyed while a task waits on it: the waiter's record lives in
// its frame, but its description was the Event's own string. Reports made
// after the Event is gone must not read it (ASan: heap-use-after-free before
// ~Event re-pointed its waiters' descriptions).
TEST(WaitRecordTest, AnEventDestroyedUnderAWaiterLeavesAReadableRecord) {
  TestScheduler s;
  // A name past the small-string buffer: the description is on the heap.
  auto event = std::make_unique<Event>("a rather long event name");
  Event* raw = event.get();
  Task<void> task = Spawn(s, [raw]() -> Co<void> { co_await raw->Wait(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(s.DescribeTask(task.metadata().id),
              HasSubstr("waiting on Event 'a rather long event name' at"));
  event.reset();  // the task still waits, on nothing that exists
  EXPECT_THAT(s.DescribeTask(task.metadata().id),
              ContainsRegex("waiting on a destroyed Event at .*wait_record_test.cc:[0-9]+"));
  EXPECT_THAT(s.DescribeLiveTasks(), HasSubstr("a destroyed Event"));
  EXPECT_THAT(s.DescribeWaitFor(), HasSubstr("a destroyed Event"));
  EXPECT_EQ(task.state()->wait_site().what, "a destroyed Event");
  task.Cancel();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(task.IsCancelled());
}

TEST(WaitRecordTest, AJoinIsRecordedWithoutARecord) {
  TestScheduler s;
  Waker parked;
  Task<void> inner = Spawn(s, [&]() -> Co<void> { co_await Silent{&parked}; });
  Task<void> outer = Spawn(s, [&]() -> Co<void> { co_await inner; });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  const WaitSite site = outer.state()->wait_site();
  EXPECT_EQ(site.awaited_task, inner.metadata().id);
  EXPECT_EQ(site.what, "task");
  EXPECT_EQ(site.target, nullptr);
  std::move(parked).Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(outer.IsFinished());
}

// Records written and forgotten on the pool's workers while other threads
// cancel and wake the waiters (run under --config=tsan).
TEST(WaitRecordTest, PoolTasksRecordAndForgetWhileCancelledAndWoken) {
  ThreadPoolScheduler pool(ThreadPoolSchedulerOptions{.worker_threads = 3});
  constexpr int kTasks = 200;
  std::vector<std::unique_ptr<Event>> events;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    events.push_back(std::make_unique<Event>("pool " + std::to_string(i)));
    Event* event = events.back().get();
    tasks.push_back(Spawn(pool, [event]() -> Co<void> {
      for (int round = 0; round < 3; ++round) {
        DescribeWait("about to wait");  // interned, from several threads
        co_await event->Wait();
        event->Reset();
      }
    }));
  }
  std::thread setter([&] {
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < kTasks; i += 2) events[i]->Set();
      std::this_thread::yield();
    }
  });
  for (int i = 1; i < kTasks; i += 2) tasks[i].Cancel();
  setter.join();
  for (int i = 0; i < kTasks; i += 2) {
    while (!tasks[i].IsFinished()) {
      events[i]->Set();
      std::this_thread::yield();
    }
  }
  for (int i = 1; i < kTasks; i += 2) {
    // A cancel from plain code does not wait for a poll under way.
    while (!tasks[i].IsFinished()) std::this_thread::yield();
    EXPECT_TRUE(tasks[i].state()->wait_site().what.empty());
  }
}

}  // namespace
}  // namespace simsched
