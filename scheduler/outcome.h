// File: scheduler/outcome.h
// -----------------------------------------------------------------------------
//
// Structured outcomes of a simulation run. The TestScheduler's failures are
// `absl::Status`es with a message written for people; the kind of failure is
// also attached as a payload, so code can tell a deadlock from an exhausted
// budget without matching message text:
//
//   * `IsDeadlock(status)`: live tasks remained with nothing runnable and no
//     timer pending (`Run`, `BlockOn`, the SIM_TEST harness after the body);
//   * `IsStepBudgetExhausted(status)`: the scheduler's `max_steps`, or a
//     `BlockOnBudget::max_steps`, ran out (a livelock, usually);
//   * `IsTimeBudgetExhausted(status)`: a `BlockOnBudget::max_time` of
//     virtual time ran out;
//   * `IsTestFailure(status)`: the test failed the run on purpose
//     (`TestScheduler::Fail`, `sim.Fail`).
//
// The status codes stay what they were (FailedPrecondition for a deadlock,
// ResourceExhausted for the step budget, DeadlineExceeded for a BlockOn
// budget, Aborted for `Fail`); the payload is the stable way to ask.
//
// This header defines:
//   * `simsched::Outcome`, `simsched::OutcomeOf()`, `simsched::WithOutcome()`
//   * `simsched::IsDeadlock()`, `IsStepBudgetExhausted()`,
//     `IsTimeBudgetExhausted()`, `IsTestFailure()`
//
// Example:
//
//   absl::Status status = scheduler.Run();
//   if (simsched::IsDeadlock(status)) {
//     // status.message() names every stuck task and what it waits on.
//   }

#ifndef SIMSCHED_SCHEDULER_OUTCOME_H_
#define SIMSCHED_SCHEDULER_OUTCOME_H_

#include "absl/status/status.h"

namespace simsched {

// Outcome
//
// The kinds of run failure that have a payload.
enum class Outcome {
  kNone,  // OK, or a failure of another kind (a detached task's exception...)
  kDeadlock,
  kStepBudgetExhausted,
  kTimeBudgetExhausted,
  kTestFailure,
};

// The payload's type URL (the key under `absl::Status::GetPayload`).
inline constexpr char kOutcomePayloadUrl[] = "type.simsched.dev/simsched.Outcome";

// WithOutcome()
//
// Returns `status` with `outcome` attached. OK stays OK.
absl::Status WithOutcome(absl::Status status, Outcome outcome);

// OutcomeOf()
//
// The outcome attached to `status`, or `Outcome::kNone`.
Outcome OutcomeOf(const absl::Status& status);

inline bool IsDeadlock(const absl::Status& status) {
  return OutcomeOf(status) == Outcome::kDeadlock;
}
inline bool IsStepBudgetExhausted(const absl::Status& status) {
  return OutcomeOf(status) == Outcome::kStepBudgetExhausted;
}
inline bool IsTimeBudgetExhausted(const absl::Status& status) {
  return OutcomeOf(status) == Outcome::kTimeBudgetExhausted;
}
inline bool IsTestFailure(const absl::Status& status) {
  return OutcomeOf(status) == Outcome::kTestFailure;
}

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_OUTCOME_H_
