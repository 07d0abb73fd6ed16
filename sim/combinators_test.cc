#include "sim/combinators.h"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/testing/forwarding_scheduler.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/channel.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kSeeds = 20;

// Counts destructions: put one in a coroutine frame to see it cancelled.
class Tracker {
 public:
  explicit Tracker(int* destroyed) : destroyed_(destroyed) {}
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
  ~Tracker() { ++*destroyed_; }

 private:
  int* destroyed_;
};

Co<int> SleepThen(Duration d, int value, int* destroyed = nullptr) {
  std::optional<Tracker> tracker;
  if (destroyed != nullptr) tracker.emplace(destroyed);
  co_await Sleep(d);
  co_return value;
}

Co<std::string> SleepThenString(Duration d, std::string value) {
  co_await Sleep(d);
  co_return value;
}

Co<void> SleepVoid(Duration d, int* destroyed = nullptr) {
  std::optional<Tracker> tracker;
  if (destroyed != nullptr) tracker.emplace(destroyed);
  co_await Sleep(d);
}

Co<int> SleepThenThrow(Duration d, std::string message) {
  co_await Sleep(d);
  throw std::runtime_error(message);
}

Co<int> YieldThen(int yields, int value) {
  for (int i = 0; i < yields; ++i) co_await Yield();
  co_return value;
}

TEST(WhenAllTest, GivesEveryResultInArgumentOrderAndRunsInputsConcurrently) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    auto result = s.BlockOn([&]() -> Co<std::tuple<int, std::string, std::monostate>> {
      Task<int> a = Spawn(*CurrentScheduler(), SleepThen(milliseconds(30), 1));
      co_return co_await WhenAll(std::move(a), SleepThenString(milliseconds(10), "two"),
                                 SleepVoid(milliseconds(20)));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(std::get<0>(*result), 1);
    EXPECT_EQ(std::get<1>(*result), "two");
    EXPECT_EQ(s.Elapsed(), milliseconds(30)) << "inputs ran at the same time";
  }
}

TEST(WhenAllTest, OfAVectorGivesResultsInInputOrder) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    auto result = s.BlockOn([&]() -> Co<std::vector<int>> {
      std::vector<Task<int>> tasks;
      for (int i = 0; i < 5; ++i) {
        tasks.push_back(Spawn(*CurrentScheduler(), SleepThen(milliseconds(10 * (5 - i)), i)));
      }
      co_return co_await WhenAll(std::move(tasks));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_THAT(*result, ElementsAre(0, 1, 2, 3, 4));
    EXPECT_EQ(s.Elapsed(), milliseconds(50));
  }
}

TEST(WhenAllTest, OfNothingCompletesAtOnce) {
  TestScheduler s;
  auto result = s.BlockOn([&]() -> Co<size_t> {
    std::tuple<> none = co_await WhenAll();
    (void)none;
    std::vector<int> empty = co_await WhenAll(std::vector<Co<int>>());
    co_return empty.size();
  }());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 0u);
  EXPECT_EQ(s.step_count(), 1u);
}

TEST(WhenAllTest, RethrowsTheFirstFailureAndCancelsTheRest) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    int destroyed = 0;
    bool caught = false;
    Task<void> parent = Spawn(s, [&]() -> Co<void> {
      try {
        (void)co_await WhenAll(SleepThenThrow(milliseconds(10), "late"),
                               SleepThen(seconds(1), 1, &destroyed),
                               SleepThenThrow(milliseconds(5), "first"));
      } catch (const std::runtime_error& e) {
        caught = true;
        EXPECT_STREQ(e.what(), "first");
      }
    });
    ASSERT_TRUE(s.BlockOn(parent).ok());
    EXPECT_TRUE(caught);
    EXPECT_EQ(destroyed, 1) << "the slow input was cancelled";
    EXPECT_EQ(s.Elapsed(), milliseconds(5)) << "fail-fast: no waiting for the rest";
    EXPECT_EQ(s.LiveTaskCount(), 0u);
    ASSERT_TRUE(s.Run().ok());
    EXPECT_EQ(s.Elapsed(), milliseconds(5)) << "the cancelled inputs' timers are gone";
  }
}

// The inputs' frames may use what the awaiting frame lent them: cancelling
// the awaiting task destroys them before its locals (docs/cancellation.md).
Co<void> SleepThenTouch(const std::string& lent, std::vector<std::string>* log) {
  struct Touch {
    const std::string& lent;
    std::vector<std::string>* log;
    ~Touch() { log->push_back("input saw " + lent); }
  } touch{lent, log};
  co_await Sleep(seconds(3600));
}

TEST(WhenAllTest, CancellationDestroysInputsBeforeTheAwaitingFramesLocals) {
  TestScheduler scheduler({.seed = 1});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, [&log]() -> Co<void> {
    const std::string lent(64, 'w');
    co_await WhenAll(SleepThenTouch(lent, &log), SleepThenTouch(lent, &log));
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task = Task<void>();
  EXPECT_THAT(log, ElementsAre("input saw " + std::string(64, 'w'),
                               "input saw " + std::string(64, 'w')));
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(WhenAnyTest, CancellationDestroysInputsBeforeTheAwaitingFramesLocals) {
  TestScheduler scheduler({.seed = 2});
  std::vector<std::string> log;
  Task<void> task = Spawn(scheduler, [&log]() -> Co<void> {
    const std::string lent(64, 'a');
    co_await WhenAny(SleepThenTouch(lent, &log), SleepThenTouch(lent, &log));
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  task = Task<void>();
  EXPECT_THAT(log, ElementsAre("input saw " + std::string(64, 'a'),
                               "input saw " + std::string(64, 'a')));
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(WhenAllTest, CancellingTheAwaitingTaskCancelsEveryInput) {
  TestScheduler s;
  int destroyed = 0;
  Task<void> parent = Spawn(s, [&]() -> Co<void> {
    Task<void> task = Spawn(*CurrentScheduler(), SleepVoid(seconds(1), &destroyed));
    (void)co_await WhenAll(std::move(task), SleepThen(seconds(1), 1, &destroyed));
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.LiveTaskCount(), 4u) << "parent, a Task input, and a runner per input";
  parent.Cancel();
  EXPECT_EQ(destroyed, 2);
  EXPECT_EQ(s.LiveTaskCount(), 0u);
  ASSERT_TRUE(s.Run().ok());
  EXPECT_EQ(s.Elapsed(), Duration::zero()) << "no timer survived the cancellation";
}

TEST(WhenAllTest, EmptyTaskInputIsAnInvalidArgument) {
  TestScheduler s;
  bool thrown = false;
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 Task<int> empty;
                 try {
                   (void)co_await WhenAll(SleepThen(milliseconds(1), 1), std::move(empty));
                 } catch (const std::invalid_argument& e) {
                   thrown = true;
                   EXPECT_THAT(e.what(), ContainsRegex("WhenAll at .*combinators_test.cc:[0-9]+"
                                                       ".*input 2 is an empty Task or Co"));
                 }
               }()).ok());
  EXPECT_TRUE(thrown);
  EXPECT_EQ(s.LiveTaskCount(), 0u) << "nothing was spawned";
}

TEST(WhenAllTest, InputsOfAForegroundTaskStayOnTheMainThread) {
  TestScheduler s;
  auto on_main = []() -> Co<bool> {
    co_await Yield();
    co_return CurrentScheduler()->IsMainThread();
  };
  Task<std::tuple<bool, bool>> parent = SpawnForeground(s, [&]() -> Co<std::tuple<bool, bool>> {
    co_return co_await WhenAll(on_main(), on_main());
  });
  auto result = s.BlockOn(parent);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(std::get<0>(*result));
  EXPECT_TRUE(std::get<1>(*result));
}

TEST(WhenAllTest, DeadlockReportNamesWhenAllAndItsSite) {
  TestScheduler s;
  Event never("never");
  auto stuck = [&]() -> Co<void> { co_await never.Wait(); };
  Task<void> parent = Spawn(s, [&]() -> Co<void> {
    (void)co_await WhenAll(stuck(), SleepVoid(milliseconds(1)));
  });
  absl::Status status = s.BlockOn(parent);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  const std::string report(status.message());
  EXPECT_THAT(report, ContainsRegex("waiting on WhenAll at .*combinators_test.cc:[0-9]+"));
  EXPECT_THAT(report, ContainsRegex("spawned at .*combinators_test.cc:[0-9]+.*: waiting on "
                                    "Event 'never'"))
      << "the input's task carries the WhenAll site";
}

TEST(WhenAllTest, ReferenceResultsAreReportedAsReferenceWrappers) {
  TestScheduler s;
  int a = 1, b = 2;
  auto ref = [](int& target) -> Co<int&> {
    co_await Yield();
    co_return target;
  };
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 auto [ra, rb] = co_await WhenAll(ref(a), ref(b));
                 ra.get() = 10;
                 rb.get() = 20;
                 absl::StatusOr<std::reference_wrapper<int>> rc =
                     co_await WithTimeout(ref(a), seconds(1));
                 EXPECT_TRUE(rc.ok());
                 if (rc.ok()) rc->get() += 1;
               }()).ok());
  EXPECT_EQ(a, 11);
  EXPECT_EQ(b, 20);
}

TEST(WhenAnyTest, GivesTheFirstToFinishAndCancelsTheRest) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    int destroyed = 0;
    auto result = s.BlockOn([&]() -> Co<std::variant<int, std::string, std::monostate>> {
      co_return co_await WhenAny(SleepThen(milliseconds(30), 1, &destroyed),
                                 SleepThenString(milliseconds(10), "fast"),
                                 SleepVoid(milliseconds(20), &destroyed));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->index(), 1u);
    EXPECT_EQ(std::get<1>(*result), "fast");
    EXPECT_EQ(destroyed, 2) << "both losers cancelled";
    EXPECT_EQ(s.LiveTaskCount(), 0u);
    ASSERT_TRUE(s.Run().ok());
    EXPECT_EQ(s.Elapsed(), milliseconds(10)) << "the losers' timers are gone";
  }
}

TEST(WhenAnyTest, OfAVectorGivesTheWinnersIndexAndValue) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    auto result = s.BlockOn([&]() -> Co<WhenAnyResult<int>> {
      std::vector<Co<int>> inputs;
      inputs.push_back(SleepThen(milliseconds(40), 10));
      inputs.push_back(SleepThen(milliseconds(20), 11));
      inputs.push_back(SleepThen(milliseconds(30), 12));
      co_return co_await WhenAny(std::move(inputs));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->index, 1u);
    EXPECT_EQ(result->value, 11);
  }
}

TEST(WhenAnyTest, RethrowsWhenTheFirstToFinishThrew) {
  TestScheduler s;
  int destroyed = 0;
  bool caught = false;
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 try {
                   (void)co_await WhenAny(SleepThen(seconds(1), 1, &destroyed),
                                          SleepThenThrow(milliseconds(1), "boom"));
                 } catch (const std::runtime_error& e) {
                   caught = true;
                   EXPECT_STREQ(e.what(), "boom");
                 }
               }()).ok());
  EXPECT_TRUE(caught);
  EXPECT_EQ(destroyed, 1);
}

TEST(WhenAnyTest, OfAnEmptyVectorIsAnInvalidArgument) {
  TestScheduler s;
  bool thrown = false;
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 try {
                   (void)co_await WhenAny(std::vector<Task<int>>());
                 } catch (const std::invalid_argument& e) {
                   thrown = true;
                   EXPECT_THAT(e.what(), HasSubstr("given no inputs"));
                 }
               }()).ok());
  EXPECT_TRUE(thrown);
}

size_t RaceWinner(uint64_t seed, uint64_t* hash) {
  TestScheduler s({.seed = seed});
  auto result = s.BlockOn([&]() -> Co<size_t> {
    auto winner = co_await WhenAny(YieldThen(3, 0), YieldThen(3, 1), YieldThen(3, 2));
    co_return winner.index();
  }());
  EXPECT_TRUE(result.ok()) << result.status();
  *hash = s.TraceHash();
  return *result;
}

TEST(WhenAnyTest, WinnerOfATieIsChosenBySeedAndReplays) {
  std::set<size_t> winners;
  std::set<uint64_t> hashes;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    uint64_t first_hash = 0, second_hash = 0;
    const size_t winner = RaceWinner(seed, &first_hash);
    EXPECT_EQ(winner, RaceWinner(seed, &second_hash)) << "seed " << seed;
    EXPECT_EQ(first_hash, second_hash) << "seed " << seed;
    winners.insert(winner);
    hashes.insert(first_hash);
  }
  EXPECT_EQ(winners.size(), 3u) << "every racer wins under some seed";
  EXPECT_GT(hashes.size(), 10u);
}

TEST(WithTimeoutTest, GivesTheResultWhenTheTaskIsFastEnough) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    auto result = s.BlockOn([&]() -> Co<absl::StatusOr<int>> {
      co_return co_await WithTimeout(SleepThen(milliseconds(10), 7), milliseconds(50));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_TRUE(result->ok()) << result->status();
    EXPECT_EQ(**result, 7);
    ASSERT_TRUE(s.Run().ok());
    EXPECT_EQ(s.Elapsed(), milliseconds(10)) << "the timer lost and was cancelled";
  }
}

TEST(WithTimeoutTest, ExpiryCancelsTheTaskAndNamesTheDurationAndSite) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    int destroyed = 0;
    auto result = s.BlockOn([&]() -> Co<absl::StatusOr<int>> {
      Task<int> slow = Spawn(*CurrentScheduler(), SleepThen(seconds(5), 1, &destroyed));
      co_return co_await WithTimeout(std::move(slow), milliseconds(250));
    }());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_THAT(std::string(result->status().message()),
                ContainsRegex("WithTimeout\\(250ms\\) at .*combinators_test.cc:[0-9]+"));
    EXPECT_EQ(destroyed, 1) << "the slow task was cancelled";
    EXPECT_EQ(s.Elapsed(), milliseconds(250));
    EXPECT_EQ(s.LiveTaskCount(), 0u);
  }
}

// A scheduler whose timers fire as they are armed, after a hook has run: the
// pool's timer thread and another worker can do both between a combinator's
// await_ready and its registration, once in thousands of runs.
class TimerFiresAtOnce final : public internal::ForwardingScheduler {
 public:
  using ForwardingScheduler::ForwardingScheduler;
  std::function<void()> on_start_timer;

  TimerId StartTimer(Instant deadline, Waker waker) override {
    if (on_start_timer) std::exchange(on_start_timer, nullptr)();
    waker.Wake("a timer firing as it is armed");
    return ForwardingScheduler::StartTimer(deadline, std::move(waker));
  }
};

// A combinator condition the test satisfies by hand.
class ManualCondition final : public internal::CombinatorState {
 public:
  void Satisfy() {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiter = SatisfyLocked();
    }
    waiter.Wake();
  }
};

// Regression (the pool torture test, seeds 13875 and 21): a combinator wait
// with a deadline armed its timer before deciding to suspend; when the inputs
// had finished meanwhile it continued without suspending, but the abandoned
// timer could already have fired. A waker belongs to the poll, so that wake
// ended the task's next suspension in the same poll at once: a Channel
// receiver resumed while queued, a Mutex waiter resumed without the lock.
TEST(WithTimeoutTest, ATimerOfAWaitThatDidNotSuspendCannotEndTheNextWait) {
  auto test = TestScheduler::Create();
  TimerFiresAtOnce scheduler(test);
  ManualCondition condition;
  Event never("never set");
  bool passed_the_event = false;
  // The input finishes as the timer is armed; the timer fires too.
  scheduler.on_start_timer = [&] { condition.Satisfy(); };
  Task<void> task = Spawn(scheduler, [&]() -> Co<void> {
    co_await internal::CombinatorWait(condition, "a test condition", SourceLocation::current(),
                                      scheduler.Now() + seconds(1));
    co_await never.Wait();
    passed_the_event = true;
  });
  ASSERT_TRUE(test->RunUntilIdle().ok());
  EXPECT_FALSE(passed_the_event) << "the task was resumed at an Event nobody set";
  EXPECT_FALSE(task.IsFinished());
  EXPECT_EQ(never.WaiterCount(), 1u);
}

TEST(WithTimeoutTest, OfAVoidTaskGivesAStatus) {
  TestScheduler s;
  auto result = s.BlockOn([&]() -> Co<std::pair<absl::Status, absl::Status>> {
    absl::Status fast = co_await WithTimeout(SleepVoid(milliseconds(1)), seconds(1));
    absl::Status slow = co_await WithTimeout(SleepVoid(seconds(2)), seconds(1));
    co_return std::pair(fast, slow);
  }());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->first.ok()) << result->first;
  EXPECT_EQ(result->second.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(result->second.message()), HasSubstr("WithTimeout(1s)"));
}

TEST(WithTimeoutTest, RethrowsTheTasksException) {
  TestScheduler s;
  bool caught = false;
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> {
                 try {
                   (void)co_await WithTimeout(SleepThenThrow(milliseconds(1), "bad"), seconds(1));
                 } catch (const std::runtime_error& e) {
                   caught = true;
                   EXPECT_STREQ(e.what(), "bad");
                 }
               }()).ok());
  EXPECT_TRUE(caught);
}

TEST(WithTimeoutTest, ZeroTimeoutExpiresAtOnceUnlessTheTaskHasFinished) {
  TestScheduler s;
  auto result = s.BlockOn([&]() -> Co<std::pair<absl::StatusOr<int>, absl::StatusOr<int>>> {
    absl::StatusOr<int> unstarted = co_await WithTimeout(YieldThen(0, 1), Duration::zero());
    Task<int> done = Spawn(*CurrentScheduler(), YieldThen(0, 2));
    while (!done.IsFinished()) co_await Yield();
    absl::StatusOr<int> finished = co_await WithTimeout(std::move(done), milliseconds(-5));
    co_return std::pair(std::move(unstarted), std::move(finished));
  }());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->first.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(result->second.ok()) << result->second.status();
  EXPECT_EQ(*result->second, 2);
}

TEST(WithTimeoutTest, CancellingTheAwaitingTaskCancelsTheInputAndTheTimer) {
  TestScheduler s;
  int destroyed = 0;
  Task<void> parent = Spawn(s, [&]() -> Co<void> {
    (void)co_await WithTimeout(SleepThen(seconds(5), 1, &destroyed), seconds(1));
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  parent.Cancel();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(s.LiveTaskCount(), 0u);
  ASSERT_TRUE(s.Run().ok());
  EXPECT_EQ(s.Elapsed(), Duration::zero()) << "no timer survived the cancellation";
}

TEST(WithTimeoutTest, DeadlockReportNamesWithTimeoutWhenNoTimerCanFire) {
  TestScheduler s;
  Event never("never");
  auto stuck = [&]() -> Co<void> { co_await never.Wait(); };
  Task<void> parent = Spawn(s, [&]() -> Co<void> {
    // Too long to represent as a deadline: waits without a timer.
    (void)co_await WithTimeout(stuck(), Duration::max());
  });
  absl::Status status = s.BlockOn(parent);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on WithTimeout at .*combinators_test.cc:[0-9]+"));
}

// WithTimeout of any awaitable: the commonest is a Channel receive.
TEST(WithTimeoutOfAnAwaitableTest, ChannelRecvGivesTheValueWhenItComesInTime) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TestScheduler s({.seed = seed});
    Channel<int> ch(4, "jobs");
    Spawn(s, [&]() -> Co<void> {
      co_await Sleep(std::chrono::milliseconds(5));
      (void)co_await ch.Send(42);
    }).Detach();
    absl::StatusOr<absl::StatusOr<std::optional<int>>> got =
        s.BlockOn([&]() -> Co<absl::StatusOr<std::optional<int>>> {
          co_return co_await WithTimeout(ch.Recv(), std::chrono::milliseconds(50));
        }());
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->ok()) << "seed " << seed << ": " << got->status();
    EXPECT_EQ(**got, std::optional<int>(42));
    EXPECT_EQ(s.Elapsed(), std::chrono::milliseconds(5));
  }
}

TEST(WithTimeoutOfAnAwaitableTest, ChannelRecvExpiresAndTheLateValueIsNotLost) {
  TestScheduler s({.seed = 3});
  Channel<int> ch(4, "jobs");
  Spawn(s, [&]() -> Co<void> {
    co_await Sleep(std::chrono::milliseconds(80));
    (void)co_await ch.Send(7);
  }).Detach();
  std::vector<std::string> log;
  Task<void> receiver = Spawn(s, [&]() -> Co<void> {
    absl::StatusOr<std::optional<int>> first =
        co_await WithTimeout(ch.Recv(), std::chrono::milliseconds(50));
    log.push_back(first.ok() ? "value" : std::string(first.status().message()));
    EXPECT_EQ(CurrentScheduler()->Now() - Instant{}, std::chrono::milliseconds(50));
    // The expired receive left the queue: the next one gets the value.
    absl::StatusOr<std::optional<int>> second =
        co_await WithTimeout(ch.Recv(), std::chrono::milliseconds(50));
    log.push_back(second.ok() && second->has_value() ? absl::StrCat("got ", **second)
                                                     : second.status().ToString());
  });
  ASSERT_TRUE(s.BlockOn(receiver).ok());
  ASSERT_EQ(log.size(), 2u);
  EXPECT_THAT(log[0], ContainsRegex("WithTimeout\\(50ms\\) at .*combinators_test.cc:[0-9]+"));
  EXPECT_EQ(log[1], "got 7");
  EXPECT_EQ(ch.TryRecv().status().code(), absl::StatusCode::kUnavailable) << "taken once";
}

TEST(WithTimeoutOfAnAwaitableTest, EventWaitGivesAStatus) {
  TestScheduler s({.seed = 1});
  Event ready("ready");
  Event never("never");
  Spawn(s, [&]() -> Co<void> {
    co_await Sleep(std::chrono::milliseconds(1));
    ready.Set();
  }).Detach();
  absl::StatusOr<absl::Status> set = s.BlockOn([&]() -> Co<absl::Status> {
    co_return co_await WithTimeout(ready.Wait(), std::chrono::milliseconds(10));
  }());
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->ok()) << *set;
  absl::StatusOr<absl::Status> unset = s.BlockOn([&]() -> Co<absl::Status> {
    co_return co_await WithTimeout(never.Wait(), std::chrono::milliseconds(10));
  }());
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(s.LiveTaskCount(), 0u) << "the expired wait's task was cancelled";
}

}  // namespace
}  // namespace simsched
