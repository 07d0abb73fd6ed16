// File: sim/combinators.h
// -----------------------------------------------------------------------------
//
// Combinators run several tasks at once from one task and wait for them in
// one `co_await`:
//
//   * `WhenAll(a, b, ...)` waits for every input and gives a tuple of their
//     results (a vector for a vector of inputs). Fail-fast: the first input
//     to end with an exception makes WhenAll cancel the inputs still running
//     and rethrow that exception.
//   * `WhenAny(a, b, ...)` waits for the first input to finish and gives its
//     index and result (a `std::variant` whose `index()` is the winner's, or
//     a `WhenAnyResult` for a vector of inputs). The other inputs are
//     cancelled. If the first to finish threw, WhenAny rethrows it.
//   * `WithTimeout(input, duration)` races one input against a timer: its
//     result as `absl::StatusOr<T>` (`absl::Status` for void), or
//     DeadlineExceeded naming the duration and the call site, in which case
//     the input is cancelled. An exception from the input is rethrown. Its
//     input may also be any awaitable: a `Channel` receive
//     (`co_await WithTimeout(ch.Recv(), 50ms)`), an `Event` wait, a lock.
//
// Inputs are `Task<T>` handles (moved in; the combinator owns them) or
// `Co<T>` coroutines, which the combinator spawns as tasks of the same kind,
// label, lane and session as the awaiting task. A `void` result is reported
// as `std::monostate`, a `T&` result as `std::reference_wrapper<T>`.
//
// Cancellation: "cancelled" means the input task's handle is dropped, so its
// frame and RAII are destroyed at once (or when its current poll ends, if it
// is running on another thread). Cancelling the task that awaits a
// combinator cancels every input still running. Results of inputs that
// finish after the winner (WhenAny) or after a failure (WhenAll) are
// dropped.
//
// Determinism: under the TestScheduler which input finishes first is a
// function of the seed. A waiting combinator appears in deadlock reports as
// "waiting on WhenAll at file.cc:line", and the tasks it spawned for `Co`
// inputs carry that same site as their spawn site.
//
// Misuse is reported, not undefined: an empty (moved-from or detached) Task
// or Co input throws std::invalid_argument when the combinator is awaited,
// `WhenAny` of an empty vector throws std::invalid_argument, and awaiting
// outside a simsched task throws std::logic_error.
//
// This header defines:
//   * `simsched::WhenAll`, `simsched::WhenAny`   (class templates used like
//     functions: `co_await WhenAll(...)`)
//   * `simsched::WhenAnyResult<T>`
//   * `simsched::WithTimeout()`
//
// Example:
//
//   simsched::Co<void> Handler() {
//     auto [user, quota] = co_await simsched::WhenAll(FetchUser(), FetchQuota());
//     std::variant<Page, Page> page =
//         co_await simsched::WhenAny(FetchFrom(primary), FetchFrom(mirror));
//     absl::StatusOr<int> reply =
//         co_await simsched::WithTimeout(Ping(), std::chrono::milliseconds(50));
//     if (absl::IsDeadlineExceeded(reply.status())) ...;
//   }

#ifndef SIMSCHED_SIM_COMBINATORS_H_
#define SIMSCHED_SIM_COMBINATORS_H_

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

// WhenAnyResult
//
// What `WhenAny` over a vector gives: the index of the input that finished
// first and its result.
template <typename T>
struct WhenAnyResult {
  size_t index = 0;
  T value;
};

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
      : state_(state), what_(what), location_(location), deadline_(deadline) {}
  CombinatorWait(const CombinatorWait&) = delete;
  CombinatorWait& operator=(const CombinatorWait&) = delete;
  ~CombinatorWait();

  bool await_ready() const { return state_.satisfied(); }
  bool await_suspend(std::coroutine_handle<>);
  void await_resume();

 private:
  void Unregister();

  CombinatorState& state_;
  std::string_view what_;
  SourceLocation location_;
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

// WhenAll
//
// `co_await WhenAll(a, b, ...)` runs every input to the end and gives
// `std::tuple<A, B, ...>` of their results, in argument order.
// `co_await WhenAll(std::move(vector))` gives `std::vector<T>`, in input
// order. No inputs: an empty tuple or vector at once.
//
// Fail-fast: when an input ends with an exception (the first one to, in
// completion order), the inputs still running are cancelled and WhenAll
// rethrows that exception; later results and exceptions are dropped.
//
// A class template used like a function, so that it can take any number of
// inputs and still record the call site. Await it where it is made; if it is
// destroyed unawaited, its inputs are cancelled without having been started
// by it.
template <typename... Inputs>
class [[nodiscard]] WhenAll {
  static_assert((internal::kIsCombinatorInput<Inputs> && ...),
                "WhenAll takes simsched::Task<T> (std::move it in) or simsched::Co<T> arguments, "
                "or one std::vector of them");

 public:
  using value_type = std::tuple<internal::InputValue<Inputs>...>;

  explicit WhenAll(Inputs... inputs, SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAllOf(location, std::move(inputs)...)) {}

  typename Co<value_type>::Awaiter operator co_await() && noexcept {
    return co_.operator co_await();
  }

 private:
  Co<value_type> co_;
};

template <typename Input>
class [[nodiscard]] WhenAll<std::vector<Input>> {
  static_assert(internal::kIsCombinatorInput<Input>,
                "WhenAll takes a std::vector of simsched::Task<T> or simsched::Co<T>");

 public:
  using value_type = std::vector<internal::InputValue<Input>>;

  explicit WhenAll(std::vector<Input> inputs,
                   SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAllOf(location, std::move(inputs))) {}

  typename Co<value_type>::Awaiter operator co_await() && noexcept {
    return co_.operator co_await();
  }

 private:
  Co<value_type> co_;
};

template <typename... Inputs>
WhenAll(Inputs&&...) -> WhenAll<std::remove_cvref_t<Inputs>...>;

// WhenAny
//
// `co_await WhenAny(a, b, ...)` waits for the first input to finish and
// gives `std::variant<A, B, ...>` holding its result at its argument's index
// (`variant.index()` says which). `co_await WhenAny(std::move(vector))`
// gives `WhenAnyResult<T>{index, value}`. The other inputs are cancelled
// before WhenAny returns. If the first input to finish ended with an
// exception, WhenAny rethrows it (after cancelling the rest).
//
// Needs at least one input: a pack of none does not compile, an empty vector
// throws std::invalid_argument when awaited.
template <typename... Inputs>
class [[nodiscard]] WhenAny {
  static_assert(sizeof...(Inputs) > 0, "WhenAny needs at least one input");
  static_assert((internal::kIsCombinatorInput<Inputs> && ...),
                "WhenAny takes simsched::Task<T> (std::move it in) or simsched::Co<T> arguments, "
                "or one std::vector of them");

 public:
  using value_type = std::variant<internal::InputValue<Inputs>...>;

  explicit WhenAny(Inputs... inputs, SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAnyOf(location, std::move(inputs)...)) {}

  typename Co<value_type>::Awaiter operator co_await() && noexcept {
    return co_.operator co_await();
  }

 private:
  Co<value_type> co_;
};

template <typename Input>
class [[nodiscard]] WhenAny<std::vector<Input>> {
  static_assert(internal::kIsCombinatorInput<Input>,
                "WhenAny takes a std::vector of simsched::Task<T> or simsched::Co<T>");

 public:
  using value_type = WhenAnyResult<internal::InputValue<Input>>;

  explicit WhenAny(std::vector<Input> inputs,
                   SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAnyOf(location, std::move(inputs))) {}

  typename Co<value_type>::Awaiter operator co_await() && noexcept {
    return co_.operator co_await();
  }

 private:
  Co<value_type> co_;
};

template <typename... Inputs>
WhenAny(Inputs&&...) -> WhenAny<std::remove_cvref_t<Inputs>...>;

// WithTimeout()
//
// Runs `input` (a `Task<T>`, moved in, or a `Co<T>`) against a timer of
// `timeout` on the scheduler's clock (virtual time under the TestScheduler).
// Gives the input's result as `absl::StatusOr<T>` (`absl::Status` for void,
// `absl::StatusOr<std::reference_wrapper<U>>` for `U&`) if it finishes
// first; otherwise cancels it and gives DeadlineExceeded:
//   "WithTimeout(250ms) at app.cc:12 (Fetch) expired before the task
//    finished; the task was cancelled".
// The loser is always cancelled: the input on expiry, the timer otherwise.
// An exception from the input is rethrown, not turned into a status.
//
// A zero or negative timeout expires at once unless `input` is a Task that
// has already finished.
template <typename Input>
  requires internal::kIsCombinatorInput<Input>
Co<BlockOnResult<typename internal::CombinatorInputTraits<Input>::value_type>> WithTimeout(
    Input input, Duration timeout, SourceLocation location = SourceLocation::current()) {
  using T = typename internal::CombinatorInputTraits<Input>::value_type;
  internal::CheckInputs("WithTimeout", location, input);
  if constexpr (internal::CombinatorInputTraits<Input>::kIsTask) {
    if (input.IsFinished()) {  // already done: its result, however short the timeout
      if constexpr (std::is_void_v<T>) {
        co_await input;
        co_return absl::OkStatus();
      } else {
        co_return co_await input;
      }
    }
  }
  Scheduler& scheduler = *CurrentScheduler();
  const Instant now = scheduler.Now();
  std::optional<Instant> deadline;  // none: a timeout that reaches the end of time
  if (timeout <= Duration::zero()) {
    deadline = now;
  } else if (const Instant at = DeadlineAfter(now, timeout); at != kEndOfTime) {
    deadline = at;
  }
  if (deadline.has_value() && *deadline <= now) {
    co_return internal::TimeoutError(timeout, location);  // `input` is cancelled unstarted
  }
  auto state = std::make_shared<internal::AnyOfVectorState<internal::InputValue<Input>>>();
  Task<void> runner = internal::SpawnSibling(
      internal::RunInput(state, size_t{0}, std::move(input)), location);
  while (!state->satisfied() && (!deadline.has_value() || scheduler.Now() < *deadline)) {
    co_await internal::CombinatorWait(*state, "WithTimeout", location, deadline);
  }
  if (!state->satisfied()) {
    internal::CancelRunner(runner);
    co_return internal::TimeoutError(timeout, location);
  }
  if (std::exception_ptr error = state->error()) std::rethrow_exception(error);
  if constexpr (std::is_void_v<T>) {
    co_return absl::OkStatus();
  } else {
    co_return std::move(state->Take().value);
  }
}

// WithTimeout() of any other awaitable
//
// As above, with `awaitable` awaited in a task of its own: a Channel receive
// gives `absl::StatusOr<std::optional<T>>`, an Event wait `absl::Status`.
//
//   absl::StatusOr<std::optional<Job>> job =
//       co_await WithTimeout(jobs.Recv(), std::chrono::milliseconds(50));
//   if (absl::IsDeadlineExceeded(job.status())) ...;  // nothing came in time
//
// On expiry the wait is cancelled as a cancelled task's would be: a Channel
// receive leaves the queue, and a value handed to it at the last moment goes
// back to the channel, so nothing is lost.
//
// The awaitable is awaited in place, not copied (a receive is not movable):
// co_await the result in the expression that makes the awaitable, as above,
// and do not keep the returned Co past it.
template <typename A>
  requires(!internal::kIsCombinatorInput<std::remove_cvref_t<A>> && internal::Awaitable<A>)
Co<BlockOnResult<internal::AwaitResult<A>>> WithTimeout(
    A&& awaitable, Duration timeout, SourceLocation location = SourceLocation::current()) {
  return WithTimeout(internal::AwaitInPlace<internal::AwaitResult<A>>(awaitable), timeout,
                     location);
}

}  // namespace simsched

#endif  // SIMSCHED_SIM_COMBINATORS_H_
