#include "testing/examples/bank.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "scheduler/waker.h"

namespace simsched::examples {

Bank::Bank(TestScheduler& scheduler, Options options)
    : scheduler_(scheduler),
      options_(options),
      balances_(options.accounts, options.initial_balance),
      expected_total_(options.accounts * options.initial_balance),
      locked_(options.accounts, false),
      lock_waiters_(options.accounts) {}

int64_t Bank::Total() const {
  int64_t total = 0;
  for (int64_t balance : balances_) total += balance;
  return total;
}

Co<void> Bank::FraudCheck() {
  // A simulated remote call: its latency is seed-chosen, so which transfer
  // finishes its check first differs from seed to seed.
  co_await Sleep(std::chrono::microseconds(scheduler_.rng().InRange(1, 50)));
}

Co<void> Bank::Lock(int account) {
  struct LockAwaiter {
    Bank& bank;
    int account;
    bool await_ready() const { return !bank.locked_[account]; }
    void await_suspend(std::coroutine_handle<>) {
      DescribeWait("Bank account lock");
      bank.lock_waiters_[account].push_back(CurrentWaker());
    }
    void await_resume() const {}
  };
  while (locked_[account]) co_await LockAwaiter{*this, account};
  locked_[account] = true;
}

void Bank::Unlock(int account) {
  locked_[account] = false;
  std::vector<Waker> waiters = std::move(lock_waiters_[account]);
  lock_waiters_[account].clear();
  for (const Waker& waker : waiters) waker.Wake();
}

Co<bool> Bank::Transfer(int from, int to, int64_t amount) {
  if (from == to || amount <= 0) co_return false;
  if (options_.fixed) co_await Lock(from);
  // BUG (when !fixed): the balance is checked, then the task suspends, then
  // it debits. Another transfer from the same account can pass the same
  // check in between.
  const bool enough = balances_[from] >= amount;
  co_await FraudCheck();
  if (enough) {
    balances_[from] -= amount;
    balances_[to] += amount;
  }
  if (options_.fixed) Unlock(from);
  co_return enough;
}

absl::Status Bank::CheckInvariants() const {
  for (int account = 0; account < accounts(); ++account) {
    if (balances_[account] < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "account ", account, " is overdrawn: balance ", balances_[account],
          " (two transfers passed the balance check before either debited)"));
    }
  }
  if (Total() != expected_total_) {
    return absl::DataLossError(
        absl::StrCat("money changed: total ", Total(), ", expected ", expected_total_));
  }
  return absl::OkStatus();
}

absl::Status RunBankScenario(TestScheduler& scheduler, Bank& bank, int transfers) {
  Rng& rng = scheduler.rng();
  for (int i = 0; i < transfers; ++i) {
    const int from = static_cast<int>(rng.Below(bank.accounts()));
    const int to = static_cast<int>((from + 1 + rng.Below(bank.accounts() - 1)) % bank.accounts());
    const int64_t amount = rng.InRange(10, 70);
    Spawn(scheduler, bank.Transfer(from, to, amount)).Detach();
  }
  if (absl::Status status = scheduler.Run(); !status.ok()) return status;
  return bank.CheckInvariants();
}

}  // namespace simsched::examples
