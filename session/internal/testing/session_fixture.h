// Test-only: the fixture the CloudSimulatedScheduler's tests share: a
// TestScheduler with the decorator over it, and the server side of a request
// (spawn the handler as the session's root task, then send the response).
//
// Example:
//
//   Sim sim(/*seed=*/7);
//   ExecutionContext ctx = sim.NewSession();
//   StartRequest(*sim.cloud, ctx, [&]() -> Co<void> { co_await Yield(); });
//   ASSERT_TRUE(sim.test->Run().ok());

#ifndef SIMSCHED_SESSION_INTERNAL_TESTING_SESSION_FIXTURE_H_
#define SIMSCHED_SESSION_INTERNAL_TESTING_SESSION_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "session/execution_context.h"

namespace simsched::internal {

// A TestScheduler with a CloudSimulatedScheduler over it.
struct Sim {
  explicit Sim(uint64_t seed = 1, CloudSchedulerOptions options = {})
      : test(TestScheduler::Create({.seed = seed})),
        cloud(CloudSimulatedScheduler::Create(test, options)) {}

  ExecutionContext NewSession() { return *cloud->Context(cloud->CreateSession()); }

  std::shared_ptr<TestScheduler> test;
  std::shared_ptr<CloudSimulatedScheduler> cloud;
};

// The server side of one request, running in no session: runs `handler` (a
// callable returning Co<void>) as the session's root task, then sends the
// response. `ended` gets End()'s status; without it, End() must succeed.
template <typename F>
Co<void> ServeRequest(ExecutionContext ctx, F handler, absl::Status* ended) {
  co_await ctx.Spawn(std::move(handler));
  absl::Status status = ctx.End();
  if (ended != nullptr) {
    *ended = status;
  } else {
    EXPECT_TRUE(status.ok()) << status;
  }
}

template <typename F>
void StartRequest(CloudSimulatedScheduler& cloud, ExecutionContext ctx, F handler,
                  absl::Status* ended = nullptr) {
  Spawn(cloud, ServeRequest(ctx, std::move(handler), ended)).Detach();
}

// Sets a flag when destroyed: shows a task's frame was torn down.
struct SetOnDestroy {
  bool* flag;
  ~SetOnDestroy() { *flag = true; }
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SESSION_INTERNAL_TESTING_SESSION_FIXTURE_H_
