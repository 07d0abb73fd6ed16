#include "session/session_test_helpers.h"

#include <string>

#include "absl/status/status.h"

namespace simsched {

::testing::AssertionResult SessionIsClean(const CloudSimulatedScheduler& scheduler,
                                          SessionId session) {
  absl::Status status = scheduler.ValidateSessionCleanup(session);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status;
}

namespace session_internal {

::testing::AssertionResult AssertSessionClean(const char* scheduler_expression,
                                              const char* session_expression,
                                              const CloudSimulatedScheduler& scheduler,
                                              SessionId session) {
  absl::Status status = scheduler.ValidateSessionCleanup(session);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "Expected session " << session_expression << " of " << scheduler_expression
         << " to clean up, but:\n"
         << absl::StatusCodeToString(status.code()) << ": " << std::string(status.message());
}

::testing::AssertionResult AssertSessionClean(
    const char* scheduler_expression, const char* session_expression,
    const std::shared_ptr<CloudSimulatedScheduler>& scheduler, SessionId session) {
  if (scheduler == nullptr) {
    return ::testing::AssertionFailure()
           << scheduler_expression << " is null; pass the CloudSimulatedScheduler that ran "
           << session_expression;
  }
  return AssertSessionClean(scheduler_expression, session_expression, *scheduler, session);
}

}  // namespace session_internal
}  // namespace simsched
