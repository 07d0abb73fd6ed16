// Tests of the World as a whole: RPC, SIMSCHED_BUGGIFY, fault plans with a
// liveness phase, and the CPU model.

#include "sim/world.h"

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"
#include "sim/buggify.h"
#include "sim/rpc.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const Address kServer{"server", 7000};

// An echo server on `host`, restarted with it.
void StartEcho(Host& host) {
  host.OnBoot([](Host& h) {
    auto& rpc = h.Emplace<RpcNode>(h, 7000);
    rpc.Handle("echo", [](std::string request) -> Co<absl::StatusOr<std::string>> {
      co_return "echo:" + request;
    });
    rpc.Handle("fail", [](std::string) -> Co<absl::StatusOr<std::string>> {
      co_return absl::PermissionDeniedError("no");
    });
    rpc.Handle("slow", [](std::string) -> Co<absl::StatusOr<std::string>> {
      co_await Sleep(1s);
      co_return "late";
    });
    ASSERT_TRUE(rpc.Start().ok());
  });
}

TEST(RpcTest, CallsReturnResponsesErrorsAndTimeouts) {
  TestScheduler scheduler({.seed = 1});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  Host& client = **world.AddHost("client");
  StartEcho(server);
  RpcNode& rpc = client.Emplace<RpcNode>(client, 9000);
  ASSERT_TRUE(rpc.Start().ok());
  auto results = scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<std::vector<absl::Status>> {
    std::vector<absl::Status> out;
    absl::StatusOr<std::string> echo = co_await rpc.Call(kServer, "echo", "hi", 50ms);
    EXPECT_EQ(echo.value_or(""), "echo:hi");
    out.push_back(echo.status());
    out.push_back((co_await rpc.Call(kServer, "fail", "", 50ms)).status());
    out.push_back((co_await rpc.Call(kServer, "nope", "", 50ms)).status());
    out.push_back((co_await rpc.Call(kServer, "slow", "", 50ms)).status());
    out.push_back((co_await rpc.Call({"ghost", 7000}, "echo", "", 50ms)).status());
    co_return out;
  }));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 5u);
  EXPECT_TRUE((*results)[0].ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*results)[1])) << (*results)[1];
  EXPECT_TRUE(absl::IsUnimplemented((*results)[2])) << (*results)[2];
  EXPECT_TRUE(absl::IsDeadlineExceeded((*results)[3])) << (*results)[3];
  EXPECT_THAT((*results)[3].message(), HasSubstr("'slow' to server:7000"));
  EXPECT_TRUE(absl::IsNotFound((*results)[4])) << (*results)[4];
}

TEST(RpcTest, ServerCrashTimesOutCallsAndRestartServesAgain) {
  TestScheduler scheduler({.seed = 2});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  Host& client = **world.AddHost("client");
  StartEcho(server);
  RpcNode& rpc = client.Emplace<RpcNode>(client, 9000);
  ASSERT_TRUE(rpc.Start().ok());
  server.Crash();
  auto down = scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<absl::Status> {
    co_return (co_await rpc.Call(kServer, "echo", "x", 50ms)).status();
  }));
  EXPECT_TRUE(absl::IsDeadlineExceeded(*down)) << *down;
  ASSERT_TRUE(server.Restart().ok());
  auto up = scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<absl::StatusOr<std::string>> {
    co_return co_await rpc.Call(kServer, "echo", "x", 50ms);
  }));
  EXPECT_EQ(up->value_or(""), "echo:x");
}

TEST(RpcTest, ALateResponseFromBeforeARestartAnswersNoNewCall) {
  // Found by sim/rpc_torture_test.cc: a restarted node numbered its requests
  // from 1 again, so the response to a call made before the crash answered
  // the new call that had the same id. (The server's dispatcher idles at the
  // end.)
  TestScheduler scheduler({.seed = 4, .allow_idle_tasks = true});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  Host& client = **world.AddHost("client");
  server.OnBoot([](Host& h) {
    auto& rpc = h.Emplace<RpcNode>(h, 7000);
    rpc.Handle("slow", [](std::string request) -> Co<absl::StatusOr<std::string>> {
      co_await Sleep(100ms);
      co_return "late:" + request;
    });
    ASSERT_TRUE(rpc.Start().ok());
  });
  RpcNode* rpc = nullptr;
  client.OnBoot([&rpc](Host& h) {
    rpc = &h.Emplace<RpcNode>(h, 9000);
    ASSERT_TRUE(rpc->Start().ok());
  });
  auto calls = scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<std::vector<std::string>> {
    absl::StatusOr<std::string> old_call = co_await rpc->Call(kServer, "slow", "old", 10ms);
    client.Crash();
    EXPECT_TRUE(client.Restart().ok());  // a new node on the same port
    absl::StatusOr<std::string> new_call = co_await rpc->Call(kServer, "slow", "new", 500ms);
    co_return std::vector<std::string>{old_call.status().ToString(),
                                       new_call.value_or(new_call.status().ToString())};
  }));
  ASSERT_TRUE(calls.ok()) << calls.status();
  EXPECT_THAT((*calls)[0], HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_EQ((*calls)[1], "late:new");
}

TEST(RpcTest, ClientCrashCancelsItsCalls) {
  // The echo server stays parked on its endpoint after the client is gone.
  TestScheduler scheduler({.seed = 3, .allow_idle_tasks = true});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  Host& client = **world.AddHost("client");
  StartEcho(server);
  RpcNode& rpc = client.Emplace<RpcNode>(client, 9000);
  ASSERT_TRUE(rpc.Start().ok());
  bool finished = false;
  ASSERT_TRUE(client.Spawn([&]() -> Co<void> {
    (void)co_await rpc.Call(kServer, "slow", "", 10s);
    finished = true;
  }).ok());
  ASSERT_TRUE(scheduler.RunUntilParked().ok());
  client.Crash();
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_FALSE(finished);
  EXPECT_EQ(client.TaskCount(), 0u);
}

// --- Buggify ---

int CountFires(World& world, std::string_view name, int evaluations) {
  (void)world;
  int fired = 0;
  for (int i = 0; i < evaluations; ++i) fired += SIMSCHED_BUGGIFY(name) ? 1 : 0;
  return fired;
}

TEST(BuggifyTest, FalseOutsideASimulation) {
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(SIMSCHED_BUGGIFY("outside"));
}

TEST(BuggifyTest, EnabledPerSeedThenFiresWithTheRate) {
  int enabled_seeds = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    TestScheduler scheduler({.seed = seed});
    World world(scheduler, {.buggify_enable_probability = 0.5, .buggify_fire_probability = 0.5});
    const int fired = CountFires(world, "point", 200);
    if (fired > 0) {
      ++enabled_seeds;
      EXPECT_GT(fired, 60);
      EXPECT_LT(fired, 140);
      EXPECT_THAT(world.FiredBuggifyPoints(), ::testing::ElementsAre("point"));
      EXPECT_THAT(world.BuggifyReport(), HasSubstr("point: fired"));
    } else {
      EXPECT_TRUE(world.FiredBuggifyPoints().empty());
    }
  }
  EXPECT_GT(enabled_seeds, 70);
  EXPECT_LT(enabled_seeds, 130);
}

TEST(BuggifyTest, EnablementDoesNotDependOnEvaluationOrder) {
  auto enabled = [](bool a_first) {
    TestScheduler scheduler({.seed = 99});
    World world(scheduler, {.buggify_enable_probability = 0.5, .buggify_fire_probability = 1.0});
    std::vector<bool> out(2);
    if (a_first) {
      out[0] = SIMSCHED_BUGGIFY("a");
      out[1] = SIMSCHED_BUGGIFY("b");
    } else {
      out[1] = SIMSCHED_BUGGIFY("b");
      out[0] = SIMSCHED_BUGGIFY("a");
    }
    return out;
  };
  EXPECT_EQ(enabled(true), enabled(false));
}

TEST(BuggifyTest, OffWorldAndStopFaultsNeverFire) {
  TestScheduler scheduler({.seed = 5});
  {
    World world(scheduler, {.buggify = false});
    EXPECT_EQ(CountFires(world, "p", 100), 0);
  }
  World world(scheduler, {.buggify_enable_probability = 1.0, .buggify_fire_probability = 1.0});
  EXPECT_EQ(CountFires(world, "p", 10), 10);
  world.StopFaults();
  EXPECT_EQ(CountFires(world, "p", 10), 0);
  EXPECT_THAT(world.Report(), HasSubstr("p: fired 10 of 20"));
  EXPECT_TRUE(absl::IsInvalidArgument(world.ConfigureBuggify(true, 2.0, 0.5)));
}

TEST(BuggifyTest, FiringsAreWorldEventsInTheLog) {
  TestScheduler scheduler({.seed = 6});
  std::vector<std::string> lines;
  World world(scheduler, {.log = [&](std::string_view line) { lines.emplace_back(line); },
                          .buggify_enable_probability = 1.0,
                          .buggify_fire_probability = 1.0});
  EXPECT_TRUE(SIMSCHED_BUGGIFY("disk.slow_path"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "t=+0s buggify: 'disk.slow_path' fired");
  EXPECT_EQ(world.Counters()["buggify.fired"], 1u);
  EXPECT_THAT(world.Report(), HasSubstr("disk.slow_path: fired 1 of 1"));
}

// --- Fault plans and liveness ---

// A client that calls "echo" until `target` calls succeeded, retrying on
// errors.
struct Pinger {
  int succeeded = 0;
  int attempts = 0;
  int target = 20;
  bool done() const { return succeeded >= target; }
};

void StartPinger(Host& host, Pinger& pinger) {
  host.OnBoot([&pinger](Host& h) {
    auto& rpc = h.Emplace<RpcNode>(h, 9000);
    ASSERT_TRUE(rpc.Start().ok());
    (void)h.Spawn([&pinger, &rpc]() -> Co<void> {
      while (!pinger.done()) {
        ++pinger.attempts;
        absl::StatusOr<std::string> r = co_await rpc.Call(kServer, "echo", "p", 30ms);
        if (r.ok()) {
          ++pinger.succeeded;
        } else {
          co_await Sleep(10ms);
        }
        co_await Sleep(40ms);
      }
    });
  });
}

FaultPlan ChaosPlan() {
  FaultPlan plan;
  plan.link.loss = 0.1;
  plan.link.duplicate = 0.05;
  plan.link.reorder = 0.1;
  plan.partition_probability = 0.3;
  plan.crash_probability = 0.1;
  plan.crash_hosts = {"server"};
  plan.chaos_duration = 2s;
  return plan;
}

// An echo server and a pinger under ChaosPlan() until `target` echoes are
// answered; what a replay must reproduce.
struct ChaosRun {
  uint64_t event_hash;
  uint64_t trace_hash;
  int attempts;
  std::map<std::string, uint64_t> counters;
  bool operator==(const ChaosRun&) const = default;
};

ChaosRun RunEchoUnderChaos(uint64_t seed, const std::string& strategy, int target) {
  TestScheduler scheduler({.seed = seed, .strategy = strategy});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  Host& client = **world.AddHost("client");
  StartEcho(server);
  Pinger pinger;
  pinger.target = target;
  StartPinger(client, pinger);
  absl::Status status = world.RunFaultPlan(
      ChaosPlan(), {.what = std::to_string(target) + " echoes answered",
                    .condition = [&] { return pinger.done(); }});
  EXPECT_TRUE(status.ok()) << strategy << " seed " << seed << ": " << status.message();
  return {world.EventHash(), scheduler.TraceHash(), pinger.attempts, world.Counters()};
}

TEST(FaultPlanTest, ChaosThenLivenessSucceedsAndIsDeterministic) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const ChaosRun first = RunEchoUnderChaos(seed, /*strategy=*/"", 60);
    EXPECT_TRUE(first == RunEchoUnderChaos(seed, /*strategy=*/"", 60)) << "seed " << seed;
    EXPECT_GT(first.counters.at("net.sent"), 0u);
  }
}

TEST(FaultPlanTest, WorksUnderEveryStrategyAndReplaysUnderEach) {
  for (const std::string strategy : {"random", "fifo", "pct:3", "pos", "mix"}) {
    for (uint64_t seed = 0; seed < 5; ++seed) {
      EXPECT_TRUE(RunEchoUnderChaos(seed, strategy, 30) == RunEchoUnderChaos(seed, strategy, 30))
          << strategy << " seed " << seed;
    }
  }
}

TEST(FaultPlanTest, FaultsActuallyHappen) {
  std::map<std::string, uint64_t> total;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    TestScheduler scheduler({.seed = seed});
    World world(scheduler);
    Host& server = **world.AddHost("server");
    Host& client = **world.AddHost("client");
    StartEcho(server);
    Pinger pinger;
    pinger.target = 1000;  // keeps traffic up through the chaos
    StartPinger(client, pinger);
    FaultPlan plan = ChaosPlan();
    pinger.target = 1000;
    (void)world.RunFaultPlan(plan, {.condition = [] { return true; }});
    for (const auto& [name, count] : world.Counters()) total[name] += count;
  }
  for (const char* name : {"net.dropped_loss", "net.duplicated", "net.partition", "host.crash",
                           "host.restart", "net.dropped_partition"}) {
    EXPECT_GT(total[name], 0u) << name;
  }
}

TEST(FaultPlanTest, LivenessViolationSaysWhatIsPending) {
  TestScheduler scheduler({.seed = 7});
  World world(scheduler);
  Host& server = **world.AddHost("server");
  StartEcho(server);
  FaultPlan plan;
  plan.chaos_duration = 200ms;
  absl::Status status = world.RunFaultPlan(
      plan, {.what = "the impossible",
             .condition = [] { return false; },
             .budget = 1s,
             .pending = [] { return std::string("request 42 unanswered"); }});
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("liveness violated: the impossible did not hold within +1s"));
  EXPECT_THAT(status.message(), HasSubstr("pending: request 42 unanswered"));
  EXPECT_THAT(status.message(), HasSubstr("server up"));
  EXPECT_THAT(status.message(), HasSubstr("live tasks"));
}

TEST(FaultPlanTest, StopFaultsHealsAndRestartsEverything) {
  TestScheduler scheduler({.seed = 8});
  World world(scheduler);
  Host& a = **world.AddHost("a");
  Host& b = **world.AddHost("b");
  (void)b;
  ASSERT_TRUE(world.network().Partition({"a"}, {"b"}).ok());
  a.Crash();
  world.StopFaults();
  EXPECT_TRUE(a.IsUp());
  EXPECT_FALSE(world.network().AnyCut());
  EXPECT_EQ(world.network().DefaultLink().loss, 0);
}

TEST(FaultPlanTest, BadPlansAreRejected) {
  TestScheduler scheduler({.seed = 9});
  World world(scheduler);
  FaultPlan plan;
  plan.crash_probability = 1.2;
  absl::Status status = world.RunFaultPlan(plan, {.condition = [] { return true; }});
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_THAT(status.message(), HasSubstr("FaultPlan::crash_probability = 1.2 is outside [0, 1]"));
  plan = FaultPlan();
  plan.link.duplicate = -1;
  EXPECT_THAT(world.RunFaultPlan(plan, {.condition = [] { return true; }}).message(),
              HasSubstr("LinkOptions::duplicate"));
  EXPECT_TRUE(absl::IsInvalidArgument(world.RunFaultPlan(FaultPlan(), {})));
}

// --- CPU model ---

TEST(CpuModelTest, WorkTakesTimeSoATimeoutCanRaceAComputation) {
  // A host task that polls (yields) 1000 times; with 1ms a poll the
  // computation takes about a second of virtual time, so a 100ms timeout
  // fires first. Off, the same work takes no time at all.
  for (bool enabled : {false, true}) {
    TestScheduler scheduler({.seed = 10});
    World world(scheduler);
    Host& host = **world.AddHost("worker");
    ASSERT_TRUE(world.SetCpuModel({.enabled = enabled,
                                   .min_poll_cost = 1ms,
                                   .max_poll_cost = 1ms})
                    .ok());
    bool done = false;
    ASSERT_TRUE(host.Spawn([&]() -> Co<void> {
      for (int i = 0; i < 1000; ++i) co_await Yield();
      done = true;
    }).ok());
    auto waited = scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<bool> {
      co_await Sleep(100ms);
      co_return done;
    }));
    ASSERT_TRUE(waited.ok());
    EXPECT_EQ(*waited, !enabled) << "cpu model " << enabled;
  }
}

TEST(CpuModelTest, SlowHostsAndStallsCostMore) {
  TestScheduler scheduler({.seed = 11});
  World world(scheduler);
  Host& fast = **world.AddHost("fast");
  Host& slow = **world.AddHost("slow", {.cpu_slowdown_percent = 300});
  ASSERT_TRUE(world.SetCpuModel({.enabled = true,
                                 .min_poll_cost = 1ms,
                                 .max_poll_cost = 1ms,
                                 .stall_probability = 0.5,
                                 .min_stall = 5ms,
                                 .max_stall = 5ms})
                  .ok());
  auto work = []() -> Co<void> {
    for (int i = 0; i < 10; ++i) co_await Yield();
  };
  ASSERT_TRUE(fast.Spawn(work).ok());
  ASSERT_TRUE(scheduler.Run().ok());
  const Duration fast_time = scheduler.Elapsed();
  ASSERT_TRUE(slow.Spawn(work).ok());
  ASSERT_TRUE(scheduler.Run().ok());
  const Duration slow_time = scheduler.Elapsed() - fast_time;
  EXPECT_GE(fast_time, 11ms);
  EXPECT_GE(slow_time, 33ms);
  EXPECT_GT(world.Counters()["cpu.stall"], 0u);
  EXPECT_TRUE(absl::IsInvalidArgument(world.SetCpuModel({.enabled = true, .stall_probability = 3})));
  ASSERT_TRUE(world.SetCpuModel({}).ok());
  EXPECT_EQ(scheduler.poll_cost_model(), nullptr);
}

}  // namespace
}  // namespace simsched
