// Test-only: one small simulated program with everything a trace and a
// timeline show (labeled tasks, a channel wake, timers, a session, a buggify
// point firing), shared by testing/trace_file_test.cc (the trace file's
// content) and testing/internal/trace_probe_sim_test.cc (simctl's replay,
// trace and report tests).
//
//   SIM_TEST(TraceProbe, ConsumerSeesEveryJob) { TraceProbeProgram(sim, true); }

#ifndef SIMSCHED_TESTING_INTERNAL_TRACE_PROBE_PROGRAM_H_
#define SIMSCHED_TESTING_INTERNAL_TRACE_PROBE_PROGRAM_H_

#include "testing/sim_test.h"

namespace simsched::testing::test_internal {

// Runs the program on `sim` to its end. The buggify point always fires, so
// the consumer receives one job more than it expects; with `check_jobs` it
// says so, failing the seed inside a task ("the consumer received an
// unexpected job").
void TraceProbeProgram(Sim& sim, bool check_jobs);

}  // namespace simsched::testing::test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_TRACE_PROBE_PROGRAM_H_
