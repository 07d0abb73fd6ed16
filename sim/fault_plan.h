// File: sim/fault_plan.h
// -----------------------------------------------------------------------------
//
// The knobs of the simulated world's faults, in one place: how a network link
// behaves (`LinkOptions`), what a disk may do wrong (`DiskFaults`), how much
// work costs (`CpuModel`), and a whole test's `FaultPlan`: which faults a
// chaos phase injects and at what rates, and how long the liveness phase that
// follows may take. Every rate is a probability in [0, 1]; `Validate()`
// rejects anything else with a status saying which field was wrong.
//
// `World::RunFaultPlan()` (sim/world.h) runs a plan.
//
// This header defines:
//   * `simsched::LinkOptions`, `simsched::DiskFaults`, `simsched::CpuModel`
//   * `simsched::FaultPlan`, `simsched::LivenessCheck`
//   * `simsched::ValidateRate()`
//
// Example:
//
//   simsched::FaultPlan plan;
//   plan.link.loss = 0.05;                  // 5% of messages lost
//   plan.link.max_latency = std::chrono::milliseconds(20);
//   plan.partition_probability = 0.2;       // per nemesis tick
//   plan.crash_probability = 0.05;
//   plan.chaos_duration = std::chrono::seconds(3);
//   absl::Status status = world.RunFaultPlan(plan, {
//       .what = "every client request answered",
//       .condition = [&] { return client.done(); },
//       .budget = std::chrono::seconds(10)});

#ifndef SIMSCHED_SIM_FAULT_PLAN_H_
#define SIMSCHED_SIM_FAULT_PLAN_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/scheduler.h"

namespace simsched {

// ValidateRate()
//
// OK if `rate` is a probability in [0, 1]; otherwise InvalidArgument naming
// `field` and the value.
absl::Status ValidateRate(std::string_view field, double rate);

// LinkOptions
//
// How messages travel from one host to another. Latency is uniform in
// [min_latency, max_latency]; with `tail_probability` it is instead uniform
// in [max_latency, tail_latency] (a slow path: a retransmit, a congested
// switch).
struct LinkOptions {
  Duration min_latency = std::chrono::microseconds(500);
  Duration max_latency = std::chrono::milliseconds(2);
  double tail_probability = 0;
  Duration tail_latency = std::chrono::milliseconds(50);
  // Probability that a message is lost.
  double loss = 0;
  // Probability that a message is delivered twice (the copy has its own
  // latency).
  double duplicate = 0;
  // Links are FIFO (as a TCP stream) unless a message is picked, with this
  // probability, to keep its own latency and possibly overtake others.
  double reorder = 0;
  // Messages a link holds (sent, not yet received). When full, `Send`
  // returns ResourceExhausted, or with `drop_when_full` drops the message
  // (counted and logged) and returns OK.
  size_t queue_limit = 4096;
  bool drop_when_full = false;

  absl::Status Validate() const;
};

// DiskFaults
//
// What a host's disk may do wrong.
struct DiskFaults {
  // At a crash, the probability that a file's unsynced writes are torn: a
  // prefix of them (the last one cut at a random byte) reaches the disk
  // instead of none.
  double torn_write = 0;
  // Probability that a read returns one corrupted byte (the stored data is
  // intact; a retry may read it correctly).
  double read_corruption = 0;

  absl::Status Validate() const;
};

// CpuModel
//
// Work takes virtual time: each poll of a task a host owns costs a uniform
// [min_poll_cost, max_poll_cost] scaled by the host's `cpu_slowdown_percent`,
// plus with `stall_probability` a stall (a GC pause, a noisy neighbour)
// uniform in [min_stall, max_stall]. The simulation has one virtual clock, so
// while a host computes the clock moves and nothing else runs: timeouts
// elsewhere can fire during the work. Off unless `enabled`.
struct CpuModel {
  bool enabled = false;
  Duration min_poll_cost = std::chrono::microseconds(1);
  Duration max_poll_cost = std::chrono::microseconds(20);
  double stall_probability = 0;
  Duration min_stall = std::chrono::milliseconds(1);
  Duration max_stall = std::chrono::milliseconds(50);

  absl::Status Validate() const;
};

// FaultPlan
//
// A test's faults. `World::RunFaultPlan` applies the link, disk, buggify and
// CPU settings, then runs a *chaos phase* of `chaos_duration` in which a
// nemesis wakes every `tick` and, each with its probability, starts a
// partition, heals, crashes an up host or restarts a crashed one. Then the
// *liveness phase*: everything is healed and restarted, injection stops, and
// the `LivenessCheck` must hold within its budget.
struct FaultPlan {
  // Every field has a default member initializer, so designated initializers
  // naming a few fields do not warn under -Wextra
  // (testing/option_structs_compile_test.cc).
  LinkOptions link = {};
  DiskFaults disk = {};
  CpuModel cpu = {};

  // BUGGIFY: each named point is enabled for a seed with
  // `buggify_enable_probability`, then fires with `buggify_fire_probability`.
  bool buggify = true;
  double buggify_enable_probability = 0.25;
  double buggify_fire_probability = 0.25;

  // The nemesis, per tick.
  Duration tick = std::chrono::milliseconds(100);
  Duration chaos_duration = std::chrono::seconds(5);
  // Start a partition: the hosts split into two random sides; with
  // `one_way_fraction` only one direction is cut.
  double partition_probability = 0;
  double one_way_fraction = 0.3;
  double heal_probability = 0.3;
  // Crash one random up host (from `crash_hosts`; empty means any).
  double crash_probability = 0;
  std::vector<std::string> crash_hosts = {};
  // Restart one random crashed host.
  double restart_probability = 0.3;
  // The hosts partitions split into sides; the others (say, a test's
  // client) stay connected to everyone. Empty: all hosts.
  std::vector<std::string> partition_hosts = {};

  // Every field in range; InvalidArgument naming the first that is not.
  absl::Status Validate() const;
};

// LivenessCheck
//
// The liveness phase's requirement: `condition` (plain code, polled every
// `poll_interval` of virtual time) must become true within `budget` after
// the world is healed. `pending`, if set, describes what is still
// outstanding for the report ("3 requests unanswered: 4, 7, 9").
struct LivenessCheck {
  std::string what = "the liveness condition";
  std::function<bool()> condition = nullptr;
  Duration budget = std::chrono::seconds(10);
  Duration poll_interval = std::chrono::milliseconds(10);
  std::function<std::string()> pending = nullptr;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_FAULT_PLAN_H_
