#include "testing/bugbench/patterns.h"

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "scheduler/scheduler.h"
#include "scheduler/strategy.h"
#include "scheduler/waker.h"
#include "sim/mutex.h"

namespace simsched::bugbench {
namespace {

// A non-sticky notification: NotifyAll wakes the tasks waiting *now*; a
// notification nobody waits for is lost (what a condition variable does).
class Notifier {
 public:
  auto Wait() {
    struct Awaiter {
      Notifier& notifier;
      bool await_ready() const { return false; }
      void await_suspend(std::coroutine_handle<>) {
        DescribeWait("bugbench Notifier::Wait", SourceLocation::current());
        notifier.waiters_.push_back(CurrentWaker());
      }
      void await_resume() const {}
    };
    return Awaiter{*this};
  }
  void NotifyAll() {
    std::vector<Waker> waiters = std::move(waiters_);
    waiters_.clear();
    for (const Waker& waker : waiters) waker.Wake();
  }

 private:
  std::vector<Waker> waiters_;
};

Co<void> YieldTimes(int n) {
  for (int i = 0; i < n; ++i) co_await Yield();
}

// 1. Two tasks increment a counter with a read, a yield, and a write.
bool LostUpdate(TestScheduler& s, bool fixed) {
  auto counter = std::make_shared<int>(0);
  for (int i = 0; i < 2; ++i) {
    Spawn(s, [counter, fixed]() -> Co<void> {
      co_await Yield();
      const int seen = *counter;
      if (!fixed) co_await Yield();
      *counter = (fixed ? *counter : seen) + 1;
    }).Detach();
  }
  return !s.Run().ok() || *counter != 2;
}

// 2. Three withdrawals of 10 from 20 check the balance, yield, then debit:
// all three must pass the check before any debit.
bool AtomicityThreeTasks(TestScheduler& s, bool fixed) {
  auto balance = std::make_shared<int>(20);
  for (int i = 0; i < 3; ++i) {
    Spawn(s, [balance, fixed]() -> Co<void> {
      co_await Yield();
      if (*balance >= 10) {
        if (!fixed) co_await Yield();
        *balance -= 10;
      }
    }).Detach();
  }
  return !s.Run().ok() || *balance < 0;
}

// 3. A user reads a config another task initialises after a yield.
bool OrderViolation(TestScheduler& s, bool fixed) {
  auto config = std::make_shared<std::unique_ptr<int>>();
  auto ready = std::make_shared<Notifier>();
  auto bad = std::make_shared<bool>(false);
  Spawn(s, [config, ready]() -> Co<void> {
    co_await YieldTimes(2);
    *config = std::make_unique<int>(7);
    ready->NotifyAll();
  }).Detach();
  Spawn(s, [config, ready, bad, fixed]() -> Co<void> {
    co_await Yield();
    if (fixed) {
      while (*config == nullptr) co_await ready->Wait();
    }
    *bad = *config == nullptr;  // would be a null dereference
  }).Detach();
  return !s.Run().ok() || *bad;
}

// 4. ABBA: two tasks take two mutexes in opposite orders.
bool AbbaDeadlock(TestScheduler& s, bool fixed) {
  auto a = std::make_shared<Mutex>("A");
  auto b = std::make_shared<Mutex>("B");
  Spawn(s, [a, b]() -> Co<void> {
    MutexGuard first = co_await a->Lock();
    co_await Yield();
    MutexGuard second = co_await b->Lock();
  }).Detach();
  Spawn(s, [a, b, fixed]() -> Co<void> {
    std::shared_ptr<Mutex> one = fixed ? a : b;
    std::shared_ptr<Mutex> two = fixed ? b : a;
    MutexGuard first = co_await one->Lock();
    co_await Yield();
    MutexGuard second = co_await two->Lock();
  }).Detach();
  return !s.Run().ok() || s.LiveTaskCount() > 0;
}

// 5. Missed notification: the waiter checks the flag, yields, then waits;
// a notify in that window is lost and the waiter sleeps forever.
bool MissedNotification(TestScheduler& s, bool fixed) {
  auto flag = std::make_shared<bool>(false);
  auto notifier = std::make_shared<Notifier>();
  Spawn(s, [flag, notifier, fixed]() -> Co<void> {
    if (fixed) {
      while (!*flag) co_await notifier->Wait();  // re-checked in the same step as the wait
    } else if (!*flag) {
      co_await Yield();
      co_await notifier->Wait();
    }
  }).Detach();
  Spawn(s, [flag, notifier]() -> Co<void> {
    co_await Yield();
    *flag = true;
    notifier->NotifyAll();
  }).Detach();
  return !s.Run().ok() || s.LiveTaskCount() > 0;
}

// 6. Lazy initialisation: three users find the cache empty and build it,
// the slow construction taking two steps; it must be built once.
bool LazyInitRace(TestScheduler& s, bool fixed) {
  auto initialised = std::make_shared<bool>(false);
  auto inits = std::make_shared<int>(0);
  for (int i = 0; i < 3; ++i) {
    Spawn(s, [initialised, inits, fixed, i]() -> Co<void> {
      co_await YieldTimes(i);  // users arrive at different times
      if (!*initialised) {
        if (fixed) *initialised = true;  // claim before the slow part
        co_await YieldTimes(2);          // the slow construction
        ++*inits;
        *initialised = true;
      }
    }).Detach();
  }
  return !s.Run().ok() || *inits != 1;
}

// 7. Bounded buffer of one slot: two producers check for room and a consumer
// checks for an item, each then yields before acting.
bool BoundedBufferRace(TestScheduler& s, bool fixed) {
  struct State {
    int size = 0;
    bool broken = false;
  };
  auto st = std::make_shared<State>();
  for (int i = 0; i < 2; ++i) {
    Spawn(s, [st, fixed]() -> Co<void> {
      co_await Yield();
      if (st->size < 1) {
        if (!fixed) co_await Yield();
        ++st->size;
        st->broken |= st->size > 1;
      }
    }).Detach();
  }
  Spawn(s, [st, fixed]() -> Co<void> {
    co_await YieldTimes(2);
    if (st->size > 0) {
      if (!fixed) co_await Yield();
      --st->size;
      st->broken |= st->size < 0;
    }
  }).Detach();
  return !s.Run().ok() || st->broken;
}

// 8. Depth 2: T1 opens a window, and T2's last step (its 21st) must fall
// inside it before T1's next step closes it. Two ordering constraints.
bool OrderDepth2(TestScheduler& s, bool fixed) {
  struct State {
    bool a = false, b = false, bug = false;
  };
  auto st = std::make_shared<State>();
  Spawn(s, [st, fixed]() -> Co<void> {
    st->a = true;
    co_await Yield();
    st->bug = !fixed && st->b;  // the fixed twin never acts on the window
    st->a = false;
  }).Detach();
  Spawn(s, [st]() -> Co<void> {
    co_await YieldTimes(20);
    st->b = st->a;  // T1 is inside its window
  }).Detach();
  return !s.Run().ok() || st->bug;
}

// 9. Depth 3, deep: A and B each open a window, work 20 steps inside it and
// close it; C works 60 steps, and its last step must find both windows open;
// six more tasks run 5 steps each. Three ordering constraints: A preempted
// inside its window, B preempted inside its window, and C's whole run before
// either resumes. Random interleaves the three evenly, so C finishing 61
// steps while A and B have each made fewer than 21 almost never happens;
// PCT needs C below A and B (1 in 3) and its two change points one in each
// window (about 2 (20/k)^2); depth 2 cannot do it at all. The fix does the
// work outside the window, opening and closing it in one step.
bool OrderDepth3(TestScheduler& s, bool fixed) {
  constexpr int kWindow = 20;
  constexpr int kLongRun = 60;
  struct State {
    int open = 0;  // windows open now
    bool bug = false;
  };
  auto st = std::make_shared<State>();
  for (int i = 0; i < 2; ++i) {
    Spawn(s, [st, fixed]() -> Co<void> {
      if (fixed) co_await YieldTimes(kWindow);
      ++st->open;
      if (!fixed) co_await YieldTimes(kWindow);
      --st->open;
    }).Detach();
  }
  Spawn(s, [st]() -> Co<void> {
    co_await YieldTimes(kLongRun);
    st->bug = st->open == 2;
  }).Detach();
  for (int i = 0; i < 6; ++i) Spawn(s, YieldTimes(4)).Detach();
  return !s.Run().ok() || st->bug;
}

// 10. One task among 16 must be preempted at one point: A reads a counter,
// yields, writes; B adds 100 after 20 steps; 14 more tasks run 5 steps each.
// B's update is lost only if all of B's steps fit inside A's window.
bool PreemptAmongSixteen(TestScheduler& s, bool fixed) {
  auto counter = std::make_shared<int>(0);
  Spawn(s, [counter, fixed]() -> Co<void> {
    const int seen = *counter;
    if (!fixed) co_await Yield();
    *counter = (fixed ? *counter : seen) + 1;
  }).Detach();
  Spawn(s, [counter]() -> Co<void> {
    co_await YieldTimes(20);
    *counter += 100;
  }).Detach();
  for (int i = 0; i < 14; ++i) Spawn(s, YieldTimes(5)).Detach();
  return !s.Run().ok() || *counter != 101;
}

// 11. Two-stage pipeline, 50 producers and 50 consumers. A consumer closes
// the pipeline when the queue is empty and every *started* producer is done
// (the fix: when all 50 are done); an item pushed after that is lost. It
// needs one producer to finish before any other starts.
bool PipelineHundred(TestScheduler& s, bool fixed) {
  constexpr int kProducers = 50;
  constexpr int kConsumers = 50;
  struct State {
    int started = 0, done = 0, consumed = 0, lost = 0;
    bool closed = false;
    std::deque<int> queue;
    Notifier changed;
  };
  auto st = std::make_shared<State>();
  for (int i = 0; i < kProducers; ++i) {
    Spawn(s, [st, i]() -> Co<void> {
      ++st->started;
      co_await YieldTimes(12);
      if (st->closed) {
        ++st->lost;
      } else {
        st->queue.push_back(i);
      }
      ++st->done;
      st->changed.NotifyAll();
    }).Detach();
  }
  for (int i = 0; i < kConsumers; ++i) {
    Spawn(s, [st, fixed]() -> Co<void> {
      for (;;) {
        if (!st->queue.empty()) {
          st->queue.pop_front();
          ++st->consumed;
          co_await Yield();  // process the item
          continue;
        }
        if (st->closed) co_return;
        const bool finished =
            fixed ? st->done == kProducers : st->started == st->done && st->started > 0;
        if (finished) {
          st->closed = true;
          st->changed.NotifyAll();
          co_return;
        }
        co_await st->changed.Wait();
      }
    }).Detach();
  }
  return !s.Run().ok() || st->lost > 0 || st->consumed != kProducers || s.LiveTaskCount() > 0;
}

// 12. Torn read: a writer updates two fields in two steps; a reader checks
// that they agree.
bool TornRead(TestScheduler& s, bool fixed) {
  struct State {
    int x = 0, y = 0;
    bool torn = false;
  };
  auto st = std::make_shared<State>();
  Spawn(s, [st, fixed]() -> Co<void> {
    co_await Yield();
    st->x = 1;
    if (!fixed) co_await Yield();
    st->y = 1;
  }).Detach();
  Spawn(s, [st]() -> Co<void> {
    co_await YieldTimes(2);
    st->torn = st->x != st->y;
  }).Detach();
  return !s.Run().ok() || st->torn;
}

}  // namespace

const std::vector<BugPattern>& AllPatterns() {
  static const auto* patterns = new std::vector<BugPattern>{
      {"lost_update", "two read-yield-write increments", false, LostUpdate},
      {"atomicity_3", "check-then-debit across three tasks", false, AtomicityThreeTasks},
      {"order_violation", "use before another task initialises", false, OrderViolation},
      {"abba_deadlock", "two mutexes taken in opposite orders", false, AbbaDeadlock},
      {"missed_notify", "notify between check and wait is lost", false, MissedNotification},
      {"lazy_init", "three users build a lazily made cache twice", false, LazyInitRace},
      {"bounded_buffer", "two producers and a consumer on one slot", false,
       BoundedBufferRace},
      {"torn_read", "reader between a writer's two stores", false, TornRead},
      {"order_depth2", "a 21-step task ends inside another's one-step window", true,
       OrderDepth2},
      {"order_depth3", "a 61-step task ends inside two others' 20-step windows", true,
       OrderDepth3},
      {"preempt_1_of_16", "one task preempted while a 20-step task runs, 14 others",
       true, PreemptAmongSixteen},
      {"pipeline_100", "50 producers, 50 consumers, early close", true, PipelineHundred},
  };
  return *patterns;
}

Outcome RunPattern(const BugPattern& pattern, bool fixed, uint64_t seed,
                   const std::string& strategy) {
  TestScheduler scheduler({.seed = seed, .strategy = strategy, .max_steps = 1'000'000});
  Outcome outcome;
  outcome.failed = pattern.run(scheduler, fixed);
  outcome.steps = scheduler.step_count();
  return outcome;
}

uint64_t CountFailures(const BugPattern& pattern, bool fixed, const std::string& strategy,
                       uint64_t first_seed, uint64_t seeds) {
  uint64_t failures = 0;
  for (uint64_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    failures += RunPattern(pattern, fixed, seed, strategy).failed ? 1 : 0;
  }
  return failures;
}

const BugPattern* FindPattern(const std::string& name) {
  for (const BugPattern& pattern : AllPatterns()) {
    if (pattern.name == name) return &pattern;
  }
  return nullptr;
}

uint64_t CalibratedRunLength(const BugPattern& pattern, bool fixed) {
  RunLengthEstimator estimator;
  for (uint64_t seed = 0; seed < 3; ++seed) {
    estimator.Observe(RunPattern(pattern, fixed, seed, "random").steps);
  }
  return estimator.Estimate();
}

}  // namespace simsched::bugbench
