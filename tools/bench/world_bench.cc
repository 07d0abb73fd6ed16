// File: tools/bench/world_bench.cc
// -----------------------------------------------------------------------------
//
// Benchmarks of the simulated world (sim/world.h) on the TestScheduler,
// beside scheduler_bench's W3 (see docs/performance.md for the figures):
//
//   W4  two-host ping-pong over the simulated network: 1,000,000 delivered
//       messages (500,000 round trips) between endpoints on two hosts, 1ms
//       link latency, no faults, events not formatted. Items: delivered
//       messages.
//   Cluster sweep: 1,000 seeds of a 5-host cluster, each host calling
//       random others over RPC for 1s of virtual time under a fault plan
//       (latency, 5% loss, duplication, partitions, crashes, a liveness
//       phase). Items: seeds.
//
// Run:
//   bazel build --config=opt //tools/bench:world_bench
//   ./bazel-bin/tools/bench/world_bench

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/rpc.h"
#include "sim/world.h"

namespace {

using namespace std::chrono_literals;

constexpr int kW4Messages = 1'000'000;  // both directions together

simsched::Co<void> Pinger(simsched::Endpoint& ep, simsched::Address to, int round_trips,
                          int& delivered) {
  for (int i = 0; i < round_trips; ++i) {
    (void)ep.Send(to, "ping");
    absl::StatusOr<simsched::Message> reply = co_await ep.Recv();
    if (!reply.ok()) co_return;
    ++delivered;
  }
}

simsched::Co<void> Ponger(simsched::Endpoint& ep, int round_trips, int& delivered) {
  for (int i = 0; i < round_trips; ++i) {
    absl::StatusOr<simsched::Message> m = co_await ep.Recv();
    if (!m.ok()) co_return;
    ++delivered;
    (void)ep.Send(m->from, "pong");
  }
}

void BM_W4_NetworkPingPong_TestScheduler(benchmark::State& state) {
  int64_t delivered_total = 0;
  for (auto _ : state) {
    simsched::TestScheduler scheduler({.seed = 1, .max_steps = 0});
    simsched::World world(scheduler, {.record_events = false, .buggify = false});
    simsched::Host& a = **world.AddHost("a");
    simsched::Host& b = **world.AddHost("b");
    simsched::LinkOptions link;
    link.min_latency = link.max_latency = 1ms;
    (void)world.network().SetDefaultLink(link);
    simsched::Endpoint ea = *a.Bind(1);
    simsched::Endpoint eb = *b.Bind(1);
    int delivered = 0;
    (void)b.Spawn(Ponger(eb, kW4Messages / 2, delivered));
    (void)a.Spawn(Pinger(ea, eb.address(), kW4Messages / 2, delivered));
    if (!scheduler.Run().ok() || delivered != kW4Messages) {
      state.SkipWithError("W4: not every message was delivered");
      return;
    }
    delivered_total += delivered;
  }
  state.SetItemsProcessed(delivered_total);
}

// One seed of the 5-host cluster.
bool RunClusterSeed(uint64_t seed) {
  simsched::TestScheduler scheduler({.seed = seed});
  simsched::World world(scheduler, {.record_events = false});
  std::vector<std::string> names = {"n0", "n1", "n2", "n3", "n4"};
  int answered = 0;
  for (const std::string& name : names) {
    simsched::Host& host = **world.AddHost(name);
    host.OnBoot([&names, &answered](simsched::Host& h) {
      auto& rpc = h.Emplace<simsched::RpcNode>(h, 7000);
      rpc.Handle("ping", [](std::string r) -> simsched::Co<absl::StatusOr<std::string>> {
        co_return r;
      });
      (void)rpc.Start();
      (void)h.Spawn([&h, &rpc, &names, &answered]() -> simsched::Co<void> {
        for (int i = 0;; ++i) {
          const std::string& peer = names[(h.id() + 1 + i % 4) % names.size()];
          absl::StatusOr<std::string> r =
              co_await rpc.Call(simsched::Address(peer, 7000), "ping", "x", 20ms);
          if (r.ok()) ++answered;
          co_await simsched::Sleep(10ms);
        }
      });
    });
  }
  simsched::FaultPlan plan;
  plan.link.loss = 0.05;
  plan.link.duplicate = 0.02;
  plan.link.reorder = 0.1;
  plan.partition_probability = 0.2;
  plan.crash_probability = 0.1;
  plan.chaos_duration = 1s;
  // Liveness: some call succeeds after the faults stop (the count at the
  // first check is the baseline).
  absl::Status status = world.RunFaultPlan(
      plan, {.what = "a call answered after healing",
             .condition = [&answered, baseline = -1]() mutable {
               if (baseline < 0) baseline = answered;
               return answered > baseline;
             },
             .budget = 1s,
             .poll_interval = 10ms,
             .pending = nullptr});
  return status.ok();
}

void BM_ClusterSweep_5Hosts_1000Seeds(benchmark::State& state) {
  int64_t seeds = 0;
  for (auto _ : state) {
    for (uint64_t seed = 0; seed < 1000; ++seed) {
      if (!RunClusterSeed(seed)) {
        state.SkipWithError("cluster seed failed its liveness check");
        return;
      }
    }
    seeds += 1000;
  }
  state.SetItemsProcessed(seeds);
}

BENCHMARK(BM_W4_NetworkPingPong_TestScheduler)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClusterSweep_5Hosts_1000Seeds)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
