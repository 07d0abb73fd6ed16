// File: session/session_test_helpers.h
// -----------------------------------------------------------------------------
//
// GoogleTest assertions for the session layer. `EXPECT_SESSION_CLEAN` and
// `ASSERT_SESSION_CLEAN` check `CloudSimulatedScheduler::
// ValidateSessionCleanup` and, when it fails, print its report: each task
// that ran past the response, with its spawn site and where it was suspended,
// and the seed to replay.
//
// This header defines:
//   * `EXPECT_SESSION_CLEAN(scheduler, session)`
//   * `ASSERT_SESSION_CLEAN(scheduler, session)`
//   * `simsched::SessionIsClean()`
//
// `scheduler` may be a `CloudSimulatedScheduler&` or a
// `std::shared_ptr<CloudSimulatedScheduler>`.
//
// Example:
//
//   ASSERT_TRUE(test->Run().ok());
//   for (simsched::SessionId session : cloud->Sessions()) {
//     EXPECT_SESSION_CLEAN(cloud, session) << "replay with seed " << seed;
//   }

#ifndef SIMSCHED_SESSION_SESSION_TEST_HELPERS_H_
#define SIMSCHED_SESSION_SESSION_TEST_HELPERS_H_

#include <memory>

#include "gtest/gtest.h"
#include "scheduler/task_metadata.h"
#include "session/cloud_simulated_scheduler.h"

namespace simsched {

// SessionIsClean()
//
// Success if `session` validates; otherwise a failure carrying the report.
::testing::AssertionResult SessionIsClean(const CloudSimulatedScheduler& scheduler,
                                          SessionId session);

namespace session_internal {

// The predicate-formatters behind the macros.
::testing::AssertionResult AssertSessionClean(const char* scheduler_expression,
                                              const char* session_expression,
                                              const CloudSimulatedScheduler& scheduler,
                                              SessionId session);
::testing::AssertionResult AssertSessionClean(
    const char* scheduler_expression, const char* session_expression,
    const std::shared_ptr<CloudSimulatedScheduler>& scheduler, SessionId session);

}  // namespace session_internal
}  // namespace simsched

// EXPECT_SESSION_CLEAN() / ASSERT_SESSION_CLEAN()
//
// Non-fatal / fatal: the session cleaned up (see the file comment).
#define EXPECT_SESSION_CLEAN(scheduler, session) \
  EXPECT_PRED_FORMAT2(::simsched::session_internal::AssertSessionClean, scheduler, session)
#define ASSERT_SESSION_CLEAN(scheduler, session) \
  ASSERT_PRED_FORMAT2(::simsched::session_internal::AssertSessionClean, scheduler, session)

#endif  // SIMSCHED_SESSION_SESSION_TEST_HELPERS_H_
