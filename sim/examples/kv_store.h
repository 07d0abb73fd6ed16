// File: sim/examples/kv_store.h
// -----------------------------------------------------------------------------
//
// A small primary-backup key-value store on the simulated world, with a real
// bug that only a network partition plus a crash reveals.
//
// Three hosts: "kv1" (the primary), "kv2" (the backup) and "client". Each
// server keeps its data in a write-ahead log on its disk (appended and
// fsynced before it answers) and recovers it at restart. A put goes to the
// primary, which writes it locally and replicates it to the backup:
//
//   * buggy (`wait_for_backup = false`): the primary sends the write to the
//     backup one-way and acknowledges at once. If a partition drops that
//     message and the primary then crashes, the backup is promoted without
//     the write: an acknowledged write is lost.
//   * fixed (`wait_for_backup = true`): the primary acknowledges only after
//     the backup has made the write durable and said so; otherwise the
//     client gets an error and retries.
//
// A failure detector on the client host promotes the backup once the
// primary is down (the coordination service is the test's own state, and it
// does not fail). The scenario runs a `FaultPlan` (partitions among all
// three hosts, crashes of kv1, latency, duplication and reordering, no
// loss), requires as liveness that every put is acknowledged, then reads
// every acknowledged key back from the current primary.
//
// This header defines:
//   * `simsched::examples::KvOptions`, `KvResult`, `RunKvScenario()`
//
// Example:
//
//   simsched::TestScheduler scheduler({.seed = seed});
//   simsched::examples::KvResult r = simsched::examples::RunKvScenario(
//       scheduler, {.wait_for_backup = false});
//   if (!r.lost.empty()) ...   // "acknowledged write lost: k7"

#ifndef SIMSCHED_SIM_EXAMPLES_KV_STORE_H_
#define SIMSCHED_SIM_EXAMPLES_KV_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/test_scheduler.h"
#include "sim/fault_plan.h"

namespace simsched::examples {

// KvOptions
struct KvOptions {
  // false plants the bug (see the file comment).
  bool wait_for_backup = true;
  // Puts the client makes (keys k0, k1, ...).
  int puts = 40;
  // Faults. The defaults cut links but lose no message: only a partition
  // plus a crash can lose a write.
  double partition_probability = 0.3;
  double crash_probability = 0.15;
  Duration chaos_duration = std::chrono::seconds(3);
  // Receives the world's events (pass sim.Log in a SIM_TEST).
  std::function<void(std::string_view)> log = nullptr;
};

// KvResult
struct KvResult {
  // OK, or why the run itself failed (a liveness violation, a deadlock).
  absl::Status status;
  int acknowledged = 0;
  // Acknowledged keys the current primary no longer has.
  std::vector<std::string> lost;
  bool failed_over = false;
  uint64_t event_hash = 0;
  // World::Report() at the end, for failure messages.
  std::string report;

  // "acknowledged write lost: k3 (and 2 more) after failover to kv2", or
  // the status, or "" when the run kept every acknowledged write.
  std::string Problem() const;
};

// RunKvScenario()
//
// Builds the cluster on `scheduler`, runs the fault plan and the check.
KvResult RunKvScenario(TestScheduler& scheduler, const KvOptions& options);

// The plan the scenario runs (exposed for the docs and tests).
FaultPlan KvFaultPlan(const KvOptions& options);

}  // namespace simsched::examples

#endif  // SIMSCHED_SIM_EXAMPLES_KV_STORE_H_
