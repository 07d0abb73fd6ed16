#include "scheduler/outcome.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/cord.h"

namespace simsched {
namespace {

// The payload is a word, not a number, so a status printed with its
// payloads stays readable.
constexpr const char* OutcomeWord(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDeadlock: return "deadlock";
    case Outcome::kStepBudgetExhausted: return "step_budget_exhausted";
    case Outcome::kTimeBudgetExhausted: return "time_budget_exhausted";
    case Outcome::kTestFailure: return "test_failure";
    case Outcome::kNone: break;
  }
  return "";
}

}  // namespace

absl::Status WithOutcome(absl::Status status, Outcome outcome) {
  if (status.ok() || outcome == Outcome::kNone) return status;
  status.SetPayload(kOutcomePayloadUrl, absl::Cord(OutcomeWord(outcome)));
  return status;
}

Outcome OutcomeOf(const absl::Status& status) {
  auto payload = status.GetPayload(kOutcomePayloadUrl);
  if (!payload.has_value()) return Outcome::kNone;
  for (Outcome outcome : {Outcome::kDeadlock, Outcome::kStepBudgetExhausted,
                          Outcome::kTimeBudgetExhausted, Outcome::kTestFailure}) {
    if (*payload == absl::string_view(OutcomeWord(outcome))) return outcome;
  }
  return Outcome::kNone;
}

}  // namespace simsched
