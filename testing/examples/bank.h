// File: testing/examples/bank.h
// -----------------------------------------------------------------------------
//
// The bundled example: a tiny bank service with a planted concurrency bug.
// `Transfer` checks the balance, waits for a (simulated) fraud check, then
// debits. Two transfers from one account that both pass the check before
// either debits overdraw it. Only some interleavings do that, which is exactly
// the kind of bug that shows up once in a thousand CI runs and that a seed
// sweep finds and replays at will.
//
// `Bank::Options::fixed = true` selects the corrected transfer, which takes a
// per-account lock across the check and the debit.
//
// Example:
//
//   simsched::TestScheduler scheduler({.seed = seed});
//   Bank bank(scheduler, {.accounts = 3, .initial_balance = 100});
//   absl::Status status = RunBankScenario(scheduler, bank, /*transfers=*/8);
//   // status says which account went negative, if one did.

#ifndef SIMSCHED_TESTING_EXAMPLES_BANK_H_
#define SIMSCHED_TESTING_EXAMPLES_BANK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched::examples {

class Bank {
 public:
  struct Options {
    int accounts = 3;
    int64_t initial_balance = 100;
    // Use the corrected transfer (no check-then-act race).
    bool fixed = false;
  };

  Bank(TestScheduler& scheduler, Options options);

  // Transfer()
  //
  // Moves `amount` from `from` to `to` if `from` has enough; returns whether
  // it did. Suspends while the simulated fraud check runs.
  Co<bool> Transfer(int from, int to, int64_t amount);

  int64_t Balance(int account) const { return balances_[account]; }
  int64_t Total() const;
  int accounts() const { return static_cast<int>(balances_.size()); }

  // CheckInvariants()
  //
  // OK if no balance is negative and no money was created or destroyed;
  // otherwise says which invariant broke.
  absl::Status CheckInvariants() const;

 private:
  Co<void> FraudCheck();
  Co<void> Lock(int account);
  void Unlock(int account);

  TestScheduler& scheduler_;
  Options options_;
  std::vector<int64_t> balances_;
  int64_t expected_total_;
  // The fixed transfer's per-account locks: who holds it, who waits.
  std::vector<bool> locked_;
  std::vector<std::vector<Waker>> lock_waiters_;
};

// RunBankScenario()
//
// Spawns `transfers` concurrent transfers with amounts and accounts drawn
// from the scheduler's rng, runs them all, and checks the bank's invariants.
absl::Status RunBankScenario(TestScheduler& scheduler, Bank& bank, int transfers);

}  // namespace simsched::examples

#endif  // SIMSCHED_TESTING_EXAMPLES_BANK_H_
