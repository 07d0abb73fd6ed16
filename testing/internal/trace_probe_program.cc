#include "testing/internal/trace_probe_program.h"

#include <chrono>
#include <optional>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "sim/buggify.h"
#include "sim/channel.h"
#include "sim/world.h"

namespace simsched::testing::test_internal {

void TraceProbeProgram(Sim& sim, bool check_jobs) {
  World world(sim.scheduler(), {.buggify_enable_probability = 1.0,
                                .buggify_fire_probability = 1.0});
  auto cloud = CloudSimulatedScheduler::Create(sim.scheduler_ptr());
  const SessionId session = cloud->CreateSession();
  ExecutionContext ctx = *cloud->Context(session);
  Channel<int> jobs(1, "jobs");
  SpawnLabeled(sim.scheduler(), TaskLabel("producer"), [&]() -> Co<void> {
    co_await Sleep(std::chrono::milliseconds(5));
    if (SIMSCHED_BUGGIFY("producer.extra_job")) (void)co_await jobs.Send(0);
    (void)co_await jobs.Send(1);
    jobs.Close();
  }).Detach();
  SpawnLabeled(sim.scheduler(), TaskLabel("consumer"), [&]() -> Co<void> {
    int received = 0;
    while (std::optional<int> job = co_await jobs.Recv()) ++received;
    // The planted bug: the buggified extra job was not expected.
    if (check_jobs) {
      EXPECT_EQ(received, 1) << "the consumer received an unexpected job";
    }
  }).Detach();
  Spawn(*cloud, [&]() -> Co<void> {
    co_await ctx.Spawn([]() -> Co<void> { co_await Sleep(std::chrono::milliseconds(1)); });
    ctx.End().IgnoreError();
  }).Detach();
  EXPECT_TRUE(sim.scheduler().Run().ok());
}

}  // namespace simsched::testing::test_internal
