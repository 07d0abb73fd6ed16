// A run with everything a timeline shows, for simctl's replay, trace and
// report tests (tools/simctl_timeline_test.py): the trace probe program
// (trace_probe_program.h) with a failure inside a task on every seed. Run by
// that test only (tagged manual).

#include "testing/internal/trace_probe_program.h"
#include "testing/sim_test.h"

namespace simsched {
namespace {

SIM_TEST(TraceProbe, ConsumerSeesEveryJob, .iterations = 5) {
  testing::test_internal::TraceProbeProgram(sim, /*check_jobs=*/true);
}

}  // namespace
}  // namespace simsched
