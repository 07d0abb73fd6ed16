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
#include "sim/internal/combinator_state.h"

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

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  explicit WhenAll(Inputs... inputs, SourceLocation location)
      : co_(internal::WhenAllOf(location, std::move(inputs)...)) {}
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the awaiting
  // frame, across the suspension (16 bytes; see Sleep()).
  explicit WhenAll(Inputs... inputs, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION())
      : co_(internal::WhenAllOf(SourceLocation::current(site, function), std::move(inputs)...)) {}
#else
  explicit WhenAll(Inputs... inputs, SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAllOf(location, std::move(inputs)...)) {}
#endif

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

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  explicit WhenAll(std::vector<Input> inputs, SourceLocation location)
      : co_(internal::WhenAllOf(location, std::move(inputs))) {}
  // The call site as scalars: see above.
  explicit WhenAll(std::vector<Input> inputs, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION())
      : co_(internal::WhenAllOf(SourceLocation::current(site, function), std::move(inputs))) {}
#else
  explicit WhenAll(std::vector<Input> inputs,
                   SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAllOf(location, std::move(inputs))) {}
#endif

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

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  explicit WhenAny(Inputs... inputs, SourceLocation location)
      : co_(internal::WhenAnyOf(location, std::move(inputs)...)) {}
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the awaiting
  // frame, across the suspension (16 bytes; see Sleep()).
  explicit WhenAny(Inputs... inputs, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION())
      : co_(internal::WhenAnyOf(SourceLocation::current(site, function), std::move(inputs)...)) {}
#else
  explicit WhenAny(Inputs... inputs, SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAnyOf(location, std::move(inputs)...)) {}
#endif

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

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  explicit WhenAny(std::vector<Input> inputs, SourceLocation location)
      : co_(internal::WhenAnyOf(location, std::move(inputs))) {}
  // The call site as scalars: see WhenAll.
  explicit WhenAny(std::vector<Input> inputs, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION())
      : co_(internal::WhenAnyOf(SourceLocation::current(site, function), std::move(inputs))) {}
#else
  explicit WhenAny(std::vector<Input> inputs,
                   SourceLocation location = SourceLocation::current())
      : co_(internal::WhenAnyOf(location, std::move(inputs))) {}
#endif

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
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
    Input input, Duration timeout, SourceLocation location) {
#else
    Input input, Duration timeout, SourceLocation location = SourceLocation::current()) {
#endif
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

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
// The call site as scalars rather than a defaulted SourceLocation: g++ keeps
// a `co_await` expression's class-type temporaries in the awaiting frame,
// across the suspension (16 bytes; see Sleep()).
template <typename Input>
  requires internal::kIsCombinatorInput<Input>
Co<BlockOnResult<typename internal::CombinatorInputTraits<Input>::value_type>> WithTimeout(
    Input input, Duration timeout, CallSiteRecord site = __builtin_source_location(),
    const char* function = __builtin_FUNCTION()) {
  return WithTimeout(std::move(input), timeout, SourceLocation::current(site, function));
}
#endif

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
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
    A&& awaitable, Duration timeout, SourceLocation location) {
#else
    A&& awaitable, Duration timeout, SourceLocation location = SourceLocation::current()) {
#endif
  return WithTimeout(internal::AwaitInPlace<internal::AwaitResult<A>>(awaitable), timeout,
                     location);
}
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
// The call site as scalars: see above.
template <typename A>
  requires(!internal::kIsCombinatorInput<std::remove_cvref_t<A>> && internal::Awaitable<A>)
Co<BlockOnResult<internal::AwaitResult<A>>> WithTimeout(
    A&& awaitable, Duration timeout, CallSiteRecord site = __builtin_source_location(),
    const char* function = __builtin_FUNCTION()) {
  return WithTimeout(internal::AwaitInPlace<internal::AwaitResult<A>>(awaitable), timeout,
                     SourceLocation::current(site, function));
}
#endif

}  // namespace simsched

#endif  // SIMSCHED_SIM_COMBINATORS_H_
