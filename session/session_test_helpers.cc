#include "session/session_test_helpers.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
  // The report opens with a sentence about "session N"; say which
  // expressions of the test it is: "session 3 (ctx.session()) of cloud
  // scheduler sim.cloud did not clean up: ...".
  std::string message(status.message());
  const std::string subject = absl::StrCat("session ", session.value, " ");
  if (message.rfind(subject, 0) == 0) {
    message.insert(subject.size(), absl::StrCat("(", session_expression, ") of cloud scheduler ",
                                                scheduler_expression, " "));
    return ::testing::AssertionFailure() << message;
  }
  // Not a cleanup report (an unknown session, no TestScheduler underneath).
  return ::testing::AssertionFailure()
         << "could not check that session " << session_expression << " of cloud scheduler "
         << scheduler_expression << " cleaned up: " << message;
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
