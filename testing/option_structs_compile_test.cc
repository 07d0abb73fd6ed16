// The option structs of the public API accept designated initializers that
// name only some fields, without a -Wmissing-field-initializers warning (part
// of the repository's own -Wextra): every field has a default member
// initializer. This file is compiled with -Werror=missing-field-initializers
// (see its BUILD target), so a field added without a default breaks the
// build here instead of warning in every user's code.

#include <chrono>
#include <cstdint>

#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "session/cloud_simulated_scheduler.h"
#include "sim/disk.h"
#include "sim/fault_plan.h"
#include "sim/host.h"
#include "sim/world.h"
#include "testing/sim_test.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

TEST(OptionStructsCompileTest, DesignatedInitializersNamingOneFieldKeepTheOtherDefaults) {
  TestSchedulerOptions test{.seed = 7};
  EXPECT_EQ(test.seed, 7u);
  EXPECT_EQ(test.max_steps, TestSchedulerOptions{}.max_steps);
  BlockOnBudget budget{.max_steps = 3};
  EXPECT_FALSE(budget.max_time.has_value());
  ThreadPoolSchedulerOptions pool{.worker_threads = 2};
  EXPECT_EQ(pool.worker_threads, 2u);
  CloudSchedulerOptions cloud{.grace_period = std::chrono::seconds(5)};
  EXPECT_EQ(cloud.grace_period, std::chrono::seconds(5));
  LinkOptions link{.loss = 0.5};
  EXPECT_EQ(link.queue_limit, LinkOptions{}.queue_limit);
  FaultPlan plan{.crash_hosts = {"a"}};
  EXPECT_EQ(plan.crash_hosts.size(), 1u);
  FaultPlan plan2{.link = link};
  EXPECT_TRUE(plan2.crash_hosts.empty());
  CpuModel cpu{.enabled = true};
  EXPECT_TRUE(cpu.enabled);
  WorldOptions world{.buggify = false};
  EXPECT_TRUE(world.record_events);
  HostOptions host{.clock_drift_ppm = 5};
  EXPECT_EQ(host.cpu_slowdown_percent, 100u);
  FileOpenOptions file{.create = true};
  EXPECT_TRUE(file.create);
  testing::SimTestOptions sim{.iterations = 5};
  EXPECT_EQ(sim.iterations, 5u);
  testing::SweepConfig sweep{.iterations = 9};
  EXPECT_EQ(sweep.total_shards, 1u);
}

}  // namespace
}  // namespace simsched
