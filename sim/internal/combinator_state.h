// Internal: the machinery behind sim/combinators.h (WhenAll, WhenAny,
// WithTimeout), not for users: the result types combinators report, input
// checks, the shared state a combinator's runner tasks report into
// (`CombinatorState` and its all-of/any-of, tuple/vector kinds), the
// awaitable a combinator suspends on (`CombinatorWait`), and the coroutines
// that spawn the runners, wait, cancel the rest and hand back the result.
//
// Example (what `co_await WhenAll(a, b)` amounts to):
//
//   auto state = std::make_shared<AllOfTupleState<A, B>>();
//   ... one runner task per input reports into `state` ...
//   while (!state->satisfied()) co_await CombinatorWait(*state, "WhenAll", location);

#ifndef SIMSCHED_SIM_INTERNAL_COMBINATOR_STATE_H_
#define SIMSCHED_SIM_INTERNAL_COMBINATOR_STATE_H_

#include <algorithm>
#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/co.h"
#include "scheduler/scheduler.h"
#include "scheduler/source_location.h"
#include "scheduler/task.h"
#include "scheduler/waker.h"

namespace simsched {

// Defined in sim/combinators.h; only named here in templates, which are
// instantiated after that definition.
template <typename T>
struct WhenAnyResult;

namespace internal {

// The value a combinator reports for an input of result type T.
template <typename T>
struct CombinedValue {
  using type = T;
};
template <>
struct CombinedValue<void> {
  using type = std::monostate;
};
template <typename T>
struct CombinedValue<T&> {
  using type = std::reference_wrapper<T>;
};

template <typename T>
struct CombinatorInputTraits {
  static constexpr bool kValid = false;
};
template <typename T>
struct CombinatorInputTraits<Task<T>> {
  static constexpr bool kValid = true;
  static constexpr bool kIsTask = true;
  using value_type = T;
};
template <typename T>
struct CombinatorInputTraits<Co<T>> {
  static constexpr bool kValid = true;
  static constexpr bool kIsTask = false;
  using value_type = T;
};

template <typename Input>
inline constexpr bool kIsCombinatorInput = CombinatorInputTraits<Input>::kValid;

// Any other awaitable (WithTimeout takes them): the await_* trio, or a
// member operator co_await.
template <typename A>
concept PlainAwaiter = requires(A& a) {
  { a.await_ready() } -> std::convertible_to<bool>;
  a.await_resume();
};
template <typename A>
concept HasMemberCoAwait = requires(A&& a) { std::forward<A>(a).operator co_await(); };
template <typename A>
concept Awaitable = PlainAwaiter<std::remove_reference_t<A>> || HasMemberCoAwait<A>;

template <typename A>
decltype(auto) AwaiterOf(A&& a) {
  if constexpr (HasMemberCoAwait<A>) {
    return std::forward<A>(a).operator co_await();
  } else {
    return std::forward<A>(a);
  }
}
// What `co_await a` gives.
template <typename A>
using AwaitResult = decltype(std::declval<std::remove_reference_t<decltype(AwaiterOf(
                                 std::declval<A>()))>&>()
                                 .await_resume());

// Awaits `awaitable` (owned by the caller, which outlives this coroutine) in
// the task WithTimeout spawns for it.
// (Awaited as an lvalue: g++ 12 copies an xvalue awaiter, and a receive is
// not copyable.)
template <typename T, typename A>
Co<T> AwaitInPlace(A& awaitable) {
  if constexpr (std::is_void_v<T>) {
    co_await awaitable;
  } else {
    co_return co_await awaitable;
  }
}

// The reported value type of an input (Task<T> or Co<T>).
template <typename Input>
using InputValue =
    typename CombinedValue<typename CombinatorInputTraits<Input>::value_type>::type;

// Spawns `co` as a sibling of the current task: same scheduler, kind, label,
// lane and session. Requires a current task.
Task<void> SpawnSibling(Co<void> co, SourceLocation location);

// Throws std::logic_error unless called inside a simsched task.
void RequireTaskFor(const char* what);

// Throws std::invalid_argument naming the combinator, its site and the
// position (1-based) of an empty input.
[[noreturn]] void ThrowEmptyInput(const char* what, SourceLocation location, size_t position);

// Throws std::invalid_argument: WhenAny needs at least one input.
[[noreturn]] void ThrowNoInputs(const char* what, SourceLocation location);

// The DeadlineExceeded status of an expired WithTimeout.
absl::Status TimeoutError(Duration timeout, SourceLocation location);

// CombinatorState
//
// What a combinator and the tasks it spawned share: whether the awaited
// condition holds, the first failure, which input ended the wait, and the
// waker of the awaiting task. Guarded by `mu_`.
class CombinatorState {
 public:
  CombinatorState() = default;
  CombinatorState(const CombinatorState&) = delete;
  CombinatorState& operator=(const CombinatorState&) = delete;

  bool satisfied() const {
    std::lock_guard<std::mutex> lock(mu_);
    return satisfied_;
  }

  // Records the first failure, ending the wait. Later results are dropped.
  void Fail(size_t index, std::exception_ptr error) {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (satisfied_) return;
      error_ = std::move(error);
      winner_ = index;
      waiter = SatisfyLocked();
    }
    waiter.Wake("a combinator input finishing");  // outside the lock: a wake may run scheduler code
  }

  std::exception_ptr error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 protected:
  // Marks the condition met; returns the waker to wake outside the lock.
  Waker SatisfyLocked() {
    satisfied_ = true;
    return std::move(waiter_);
  }

  mutable std::mutex mu_;
  bool satisfied_ = false;
  size_t winner_ = 0;

 private:
  friend class CombinatorWait;

  std::exception_ptr error_;
  Waker waiter_;
};

// CombinatorWait
//
// Suspends the awaiting task until `state` is satisfied or `deadline`
// passes (callers loop on their own condition).
class CombinatorWait {
 public:
  CombinatorWait(CombinatorState& state, std::string_view what, SourceLocation location,
                 std::optional<Instant> deadline = std::nullopt)
      : state_(state), site_(what, location), deadline_(deadline) {}
  CombinatorWait(const CombinatorWait&) = delete;
  CombinatorWait& operator=(const CombinatorWait&) = delete;
  ~CombinatorWait();

  bool await_ready() const { return state_.satisfied(); }
  bool await_suspend(std::coroutine_handle<>);
  void await_resume();

 private:
  void Unregister();

  CombinatorState& state_;
  // The wait record the task's header points at while it waits here.
  PackedWaitSite site_;
  std::optional<Instant> deadline_;
  Scheduler* scheduler_ = nullptr;  // set while a timer is armed
  TimerId timer_;
  bool suspended_ = false;  // touched only by the awaiting task
};

// WhenAll over a parameter pack: every result, in argument order.
template <typename... Vs>
class AllOfTupleState final : public CombinatorState {
 public:
  AllOfTupleState() {
    if (sizeof...(Vs) == 0) SatisfyLocked();
  }

  template <size_t I, typename V>
  void Complete(std::integral_constant<size_t, I>, V&& value) {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (satisfied_) return;
      std::get<I>(values_).emplace(std::forward<V>(value));
      if (--remaining_ == 0) waiter = SatisfyLocked();
    }
    waiter.Wake("a combinator input finishing");
  }

  // Requires every input to have completed.
  std::tuple<Vs...> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return TakeImpl(std::index_sequence_for<Vs...>{});
  }

 private:
  template <size_t... I>
  std::tuple<Vs...> TakeImpl(std::index_sequence<I...>) {
    return std::tuple<Vs...>(std::move(*std::get<I>(values_))...);
  }

  std::tuple<std::optional<Vs>...> values_;
  size_t remaining_ = sizeof...(Vs);
};

// WhenAll over a vector: every result, in input order.
template <typename V>
class AllOfVectorState final : public CombinatorState {
 public:
  explicit AllOfVectorState(size_t n) : values_(n), remaining_(n) {
    if (n == 0) SatisfyLocked();
  }

  template <typename U>
  void Complete(size_t index, U&& value) {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (satisfied_) return;
      values_[index].emplace(std::forward<U>(value));
      if (--remaining_ == 0) waiter = SatisfyLocked();
    }
    waiter.Wake("a combinator input finishing");
  }

  // Requires every input to have completed.
  std::vector<V> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<V> out;
    out.reserve(values_.size());
    for (std::optional<V>& value : values_) out.push_back(std::move(*value));
    return out;
  }

 private:
  std::vector<std::optional<V>> values_;
  size_t remaining_;
};

// WhenAny over a parameter pack: the first result, at its argument's index.
template <typename... Vs>
class AnyOfTupleState final : public CombinatorState {
 public:
  template <size_t I, typename V>
  void Complete(std::integral_constant<size_t, I>, V&& value) {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (satisfied_) return;
      value_.emplace(std::in_place_index<I>, std::forward<V>(value));
      winner_ = I;
      waiter = SatisfyLocked();
    }
    waiter.Wake("a combinator input finishing");
  }

  // Requires a winner that completed.
  std::variant<Vs...> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(*value_);
  }

 private:
  std::optional<std::variant<Vs...>> value_;
};

// WhenAny over a vector, and WithTimeout: the first result and its index.
template <typename V>
class AnyOfVectorState final : public CombinatorState {
 public:
  template <typename U>
  void Complete(size_t index, U&& value) {
    Waker waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (satisfied_) return;
      value_.emplace(std::forward<U>(value));
      winner_ = index;
      waiter = SatisfyLocked();
    }
    waiter.Wake("a combinator input finishing");
  }

  // Requires a winner that completed.
  WhenAnyResult<V> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return WhenAnyResult<V>{winner_, std::move(*value_)};
  }

 private:
  std::optional<V> value_;
};

// The body of the task spawned for one input: awaits it and reports its
// result or exception to `state`. Cancelling this task cancels the input
// (it owns the Task or Co).
template <typename State, typename Index, typename Input>
Co<void> RunInput(std::shared_ptr<State> state, Index index, Input input) {
  std::exception_ptr error;
  try {
    if constexpr (std::is_void_v<typename CombinatorInputTraits<Input>::value_type>) {
      co_await input;
      state->Complete(index, std::monostate{});
    } else {
      state->Complete(index, co_await input);
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) state->Fail(static_cast<size_t>(index), std::move(error));
}

// Checks a combinator's inputs before anything is spawned.
template <typename... Inputs>
void CheckInputs(const char* what, [[maybe_unused]] SourceLocation location,
                 const Inputs&... inputs) {
  RequireTaskFor(what);
  size_t position = 0;
  ((++position, static_cast<bool>(inputs) ? void() : ThrowEmptyInput(what, location, position)),
   ...);
}
template <typename Input>
void CheckInputs(const char* what, SourceLocation location, const std::vector<Input>& inputs) {
  RequireTaskFor(what);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) ThrowEmptyInput(what, location, i + 1);
  }
}

// Spawns one task per input, in argument order (a braced list is evaluated
// left to right).
template <typename State, size_t... I, typename... Inputs>
std::array<Task<void>, sizeof...(I)> SpawnRunners(const std::shared_ptr<State>& state,
                                                  [[maybe_unused]] SourceLocation location,
                                                  std::index_sequence<I...>,
                                                  Inputs&&... inputs) {
  return {SpawnSibling(RunInput(state, std::integral_constant<size_t, I>{}, std::move(inputs)),
                       location)...};
}
template <typename State, typename Input>
std::vector<Task<void>> SpawnRunners(const std::shared_ptr<State>& state,
                                     SourceLocation location, std::vector<Input>& inputs) {
  std::vector<Task<void>> runners;
  runners.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    runners.push_back(SpawnSibling(RunInput(state, i, std::move(inputs[i])), location));
  }
  return runners;
}

// Cancels a runner and, if another thread is polling it, waits until it is
// gone: its input may borrow from the frame that awaits the combinator,
// which goes on (and may end) as soon as the combinator returns.
inline void CancelRunner(Task<void>& runner) {
  if (runner) runner.state()->CancelAndJoin();
}

template <typename Runners>
void CancelAll(Runners& runners) {
  for (Task<void>& runner : runners) CancelRunner(runner);
}

template <typename... Inputs>
Co<std::tuple<InputValue<Inputs>...>> WhenAllOf(SourceLocation location, Inputs... inputs) {
  CheckInputs("WhenAll", location, inputs...);
  auto state = std::make_shared<AllOfTupleState<InputValue<Inputs>...>>();
  auto runners =
      SpawnRunners(state, location, std::index_sequence_for<Inputs...>{}, std::move(inputs)...);
  while (!state->satisfied()) co_await CombinatorWait(*state, "WhenAll", location);
  if (std::exception_ptr error = state->error()) {
    CancelAll(runners);
    std::rethrow_exception(error);
  }
  co_return state->Take();
}

template <typename Input>
Co<std::vector<InputValue<Input>>> WhenAllOf(SourceLocation location,
                                             std::vector<Input> inputs) {
  CheckInputs("WhenAll", location, inputs);
  auto state = std::make_shared<AllOfVectorState<InputValue<Input>>>(inputs.size());
  std::vector<Task<void>> runners = SpawnRunners(state, location, inputs);
  while (!state->satisfied()) co_await CombinatorWait(*state, "WhenAll", location);
  if (std::exception_ptr error = state->error()) {
    CancelAll(runners);
    std::rethrow_exception(error);
  }
  co_return state->Take();
}

template <typename... Inputs>
Co<std::variant<InputValue<Inputs>...>> WhenAnyOf(SourceLocation location, Inputs... inputs) {
  CheckInputs("WhenAny", location, inputs...);
  auto state = std::make_shared<AnyOfTupleState<InputValue<Inputs>...>>();
  auto runners =
      SpawnRunners(state, location, std::index_sequence_for<Inputs...>{}, std::move(inputs)...);
  while (!state->satisfied()) co_await CombinatorWait(*state, "WhenAny", location);
  CancelAll(runners);  // the winner has finished; this cancels the rest
  if (std::exception_ptr error = state->error()) std::rethrow_exception(error);
  co_return state->Take();
}

template <typename Input>
Co<WhenAnyResult<InputValue<Input>>> WhenAnyOf(SourceLocation location,
                                               std::vector<Input> inputs) {
  CheckInputs("WhenAny", location, inputs);
  if (inputs.empty()) ThrowNoInputs("WhenAny", location);
  auto state = std::make_shared<AnyOfVectorState<InputValue<Input>>>();
  std::vector<Task<void>> runners = SpawnRunners(state, location, inputs);
  while (!state->satisfied()) co_await CombinatorWait(*state, "WhenAny", location);
  CancelAll(runners);  // the winner has finished; this cancels the rest
  if (std::exception_ptr error = state->error()) std::rethrow_exception(error);
  co_return state->Take();
}

}  // namespace internal

}  // namespace simsched

#endif  // SIMSCHED_SIM_INTERNAL_COMBINATOR_STATE_H_
