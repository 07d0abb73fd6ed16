// CloudSimulatedScheduler over the ThreadPoolScheduler: sessions created,
// served and ended from several worker threads at once. The registry's
// bookkeeping must stay exact (every task of a session is recorded under it,
// every ended session is released) and, under --config=tsan, free of races.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "scheduler/internal/testing/pool_test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "session/execution_context.h"

namespace simsched {
namespace {

using internal::MakePool;
using internal::WaitFor;

// A request: spawns `fan_out` children through the session's context and one
// grandchild each through the current scheduler (inherited session), checks
// the session every one of them was recorded under, then ends the session.
Co<void> Serve(ExecutionContext ctx, int fan_out, std::atomic<int>* mislabelled,
               std::atomic<int>* ended) {
  std::vector<Task<std::optional<SessionId>>> children;
  for (int i = 0; i < fan_out; ++i) {
    children.push_back(ctx.Spawn([]() -> Co<std::optional<SessionId>> {
      Task<void> grandchild = Spawn(*CurrentScheduler(), []() -> Co<void> { co_await Yield(); });
      const std::optional<SessionId> inherited = grandchild.metadata().session;
      co_await std::move(grandchild);
      co_return inherited;
    }));
  }
  for (Task<std::optional<SessionId>>& child : children) {
    const std::optional<SessionId> own = child.metadata().session;
    const std::optional<SessionId> inherited = co_await std::move(child);
    if (own != ctx.session() || inherited != ctx.session()) mislabelled->fetch_add(1);
  }
  if (ctx.End().ok()) ended->fetch_add(1);
}

TEST(CloudSimulatedSchedulerPoolTest, SessionsServedOnManyThreadsAreRecordedAndReleased) {
  auto pool = MakePool(4);
  auto cloud =
      CloudSimulatedScheduler::Create(pool, {.grace_period = std::chrono::milliseconds(1)});
  constexpr int kSessions = 200;
  std::atomic<int> mislabelled{0};
  std::atomic<int> ended{0};
  std::vector<Task<void>> servers;
  for (int i = 0; i < kSessions; ++i) {
    absl::StatusOr<ExecutionContext> ctx = cloud->Context(cloud->CreateSession());
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    servers.push_back(Spawn(*cloud, Serve(*ctx, 1 + i % 4, &mislabelled, &ended)));
  }
  // BlockOn through the decorator and on the pool it wraps both work: a task
  // spawned through a decorator of the pool runs on the pool.
  for (size_t i = 0; i < servers.size(); ++i) {
    absl::Status served = i % 2 == 0 ? BlockOn(*cloud, servers[i]) : BlockOn(*pool, servers[i]);
    ASSERT_TRUE(served.ok()) << served;
  }
  EXPECT_EQ(ended.load(), kSessions);
  EXPECT_EQ(mislabelled.load(), 0);
  // Over the pool a session's record goes once it has ended, its grace
  // period is over and its last task finished.
  EXPECT_TRUE(WaitFor([&] { return cloud->tracked_session_count() == 0; }))
      << cloud->tracked_session_count() << " session records still held";
  // Validation needs the TestScheduler's run; over the pool it says so.
  EXPECT_EQ(cloud->ValidateSessionCleanup(SessionId{1}).code(),
            absl::StatusCode::kFailedPrecondition);
}

// BlockOn returns once a task has completed, a moment before the task
// reports its end to the decorator on its worker; destroying the decorator
// right away must wait for that report instead of failing or freeing the
// decorator under it (ASan/TSan see the latter).
TEST(CloudSimulatedSchedulerPoolTest, DestroyingItRightAfterBlockOnIsSafe) {
  auto pool = MakePool(4);
  for (int round = 0; round < 50; ++round) {
    auto cloud = CloudSimulatedScheduler::Create(pool);
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 20; ++i) {
      tasks.push_back(Spawn(*cloud, [i]() -> Co<int> {
        co_await Yield();
        co_return i;
      }));
    }
    for (int i = 0; i < 20; ++i) {
      absl::StatusOr<int> value = BlockOn(*pool, tasks[i]);
      ASSERT_TRUE(value.ok()) << value.status();
      EXPECT_EQ(*value, i);
    }
    tasks.clear();
    cloud.reset();
  }
}

}  // namespace
}  // namespace simsched
