// File: sim/channel.h
// -----------------------------------------------------------------------------
//
// `Channel<T>` is an async FIFO queue between tasks: `co_await ch.Send(v)`
// suspends while the channel is full, `co_await ch.Recv()` suspends while it
// is empty and returns `std::nullopt` once the channel is closed and drained.
// It is built only on the public `Waker` API, so it runs unchanged on every
// scheduler, is deterministic under the TestScheduler, and shows up in
// deadlock reports as "waiting on Channel<int>::Recv at file.cc:line".
//
//   * Bounded (`Channel<T> ch(n)`, n >= 1) or unbounded (`kUnbounded`).
//   * Values come out in the order they went in. Waiting senders and waiting
//     receivers are each served oldest first, so a run is a function of the
//     seed.
//   * A receiver that is waiting when a value arrives gets it handed over
//     directly: no other receiver can take it first.
//   * Move-only `T` works (`Channel<std::unique_ptr<Job>>`).
//   * `Close()` ends the stream: waiting receivers wake with `std::nullopt`,
//     waiting senders wake with an error, values already buffered can still
//     be received. Sending on a closed channel returns FailedPrecondition and
//     drops the value.
//   * Cancellation: a cancelled waiting sender's value is never sent; a
//     cancelled waiting receiver is removed from the queue. A value handed to
//     a receiver that is cancelled before it resumes is not lost: it goes
//     back to the front of the channel (or straight to the next waiting
//     receiver). This may leave a bounded channel briefly one value over
//     capacity; senders wait until it is below capacity again.
//   * Thread-safe: any method may be called from any thread; wakers are woken
//     outside the channel's lock.
//
// Destroying a Channel while tasks wait on it leaves them waiting forever (a
// deadlock the TestScheduler reports), never touching freed memory: the
// channel's state lives until its last awaiter is gone.
//
// This header defines:
//   * `simsched::Channel<T>`
//   * `simsched::kUnbounded`
//
// Example:
//
//   simsched::Channel<int> jobs(/*capacity=*/4, "jobs");
//   simsched::Spawn(s, [&]() -> simsched::Co<void> {      // producer
//     for (int i = 0; i < 10; ++i) {
//       absl::Status sent = co_await jobs.Send(i);           // waits while full
//       if (!sent.ok()) co_return;                           // closed
//     }
//     jobs.Close();
//   }).Detach();
//   simsched::Spawn(s, [&]() -> simsched::Co<void> {      // consumer
//     while (std::optional<int> job = co_await jobs.Recv()) Handle(*job);
//   }).Detach();

#ifndef SIMSCHED_SIM_CHANNEL_H_
#define SIMSCHED_SIM_CHANNEL_H_

#include <coroutine>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/not_in_task.h"
#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"
#include "scheduler/waker.h"
#include "scheduler/internal/wait_queue.h"
#include "sim/type_name.h"

namespace simsched {

// kUnbounded
//
// The capacity of a channel that never makes a sender wait.
inline constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

// Channel
//
// See the file comment. Not copyable or movable (awaiters point at it); share
// it by reference or through a `std::shared_ptr`.
template <typename T>
class Channel {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                    !std::is_array_v<T>,
                "Channel<T> carries non-const object types; for references send a pointer "
                "or a std::reference_wrapper");
  static_assert(std::is_move_constructible_v<T>, "Channel<T> requires a movable T");

  struct State;
  using WakeList = absl::InlinedVector<Waker, 2>;

 public:
  class SendAwaiter;
  class RecvAwaiter;

  // Creates a channel that holds up to `capacity` values (`kUnbounded`: no
  // limit). `name` appears in reports: "Channel<int> 'jobs'::Recv". Throws
  // std::invalid_argument if `capacity` is zero (a rendezvous channel is not
  // supported; use capacity 1).
  explicit Channel(size_t capacity, std::string_view name = "")
      : state_(std::make_shared<State>(capacity, name)) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Send()
  //
  // An awaitable that puts `value` into the channel, suspending while the
  // channel is full. Gives `absl::OkStatus()` once the value is accepted, or
  // FailedPrecondition if the channel is (or gets) closed first, in which
  // case the value is destroyed. A value accepted counts as sent even if the
  // sender is cancelled before it resumes.
  //
  //   absl::Status sent = co_await ch.Send(std::move(job));
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  SendAwaiter Send(T value, SourceLocation location) {
    return SendAwaiter(state_, std::move(value), location);
  }
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the frame,
  // across the suspension (16 bytes of every waiting frame; see Sleep()).
  SendAwaiter Send(T value, CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION()) {
    return SendAwaiter(state_, std::move(value), SourceLocation::current(site, function));
  }
#else
  SendAwaiter Send(T value, SourceLocation location = SourceLocation::current()) {
    return SendAwaiter(state_, std::move(value), location);
  }
#endif

  // Recv()
  //
  // An awaitable that takes the oldest value, suspending while the channel
  // is empty. Gives `std::nullopt` once the channel is closed and empty.
  //
  //   while (std::optional<Job> job = co_await ch.Recv()) Handle(*job);
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  RecvAwaiter Recv(SourceLocation location) { return RecvAwaiter(state_, location); }
  // The call site as scalars: see Send().
  RecvAwaiter Recv(CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION()) {
    return RecvAwaiter(state_, SourceLocation::current(site, function));
  }
#else
  RecvAwaiter Recv(SourceLocation location = SourceLocation::current()) {
    return RecvAwaiter(state_, location);
  }
#endif

  // TrySend()
  //
  // Sends without waiting. Returns OK if the value was accepted (and only
  // then moves from `value`), Unavailable if the channel is full, or
  // FailedPrecondition if it is closed. Callable from any thread, in a task
  // or not.
  absl::Status TrySend(T&& value) {
    WakeList wake;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->closed) {
        return absl::FailedPreconditionError(
            absl::StrCat("TrySend on closed ", state_->description));
      }
      if (state_->receivers.empty() && state_->buffer.size() >= state_->capacity) {
        return absl::UnavailableError(absl::StrCat(state_->description, " is full (capacity ",
                                                   state_->capacity, ")"));
      }
      state_->DeliverLocked(std::move(value), wake);
    }
    WakeAll(wake, "a channel send");
    return absl::OkStatus();
  }
  template <typename U = T>
    requires(std::is_same_v<U, T> && std::is_copy_constructible_v<T>)
  absl::Status TrySend(const U& value) {
    T copy(value);
    return TrySend(std::move(copy));
  }

  // TryRecv()
  //
  // Receives without waiting. Returns the oldest value, Unavailable if the
  // channel is empty, or OutOfRange if it is closed and empty. Callable from
  // any thread, in a task or not.
  absl::StatusOr<T> TryRecv() {
    WakeList wake;
    std::optional<T> value;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->buffer.empty()) {
        if (state_->closed) {
          return absl::OutOfRangeError(absl::StrCat(state_->description, " is closed and empty"));
        }
        return absl::UnavailableError(absl::StrCat(state_->description, " is empty"));
      }
      value.emplace(state_->TakeFrontLocked(wake));
    }
    WakeAll(wake, "a channel receive");
    return std::move(*value);
  }

  // Close()
  //
  // Closes the channel: later sends fail, waiting senders wake with
  // FailedPrecondition (their values are dropped), waiting receivers wake
  // with `std::nullopt`. Buffered values can still be received. Returns
  // false if the channel was already closed.
  bool Close() {
    WakeList wake;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->closed) return false;
      state_->closed = true;
      while (internal::WaitNode* node = state_->receivers.PopFront()) {
        auto* receiver = static_cast<RecvAwaiter*>(node);
        receiver->phase_ = RecvAwaiter::Phase::kClosed;
        wake.push_back(std::move(receiver->waker_));
      }
      while (internal::WaitNode* node = state_->senders.PopFront()) {
        auto* sender = static_cast<SendAwaiter*>(node);
        sender->phase_ = SendAwaiter::Phase::kRefused;
        wake.push_back(std::move(sender->waker_));
      }
    }
    WakeAll(wake, "the channel closing");
    return true;
  }

  // IsClosed()
  bool IsClosed() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->closed;
  }

  // size()
  //
  // How many values are buffered right now.
  size_t size() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->buffer.size();
  }

  // capacity()
  //
  // The capacity given at construction (`kUnbounded` for no limit).
  size_t capacity() const { return state_->capacity; }

  // WaitingReceivers() / WaitingSenders()
  //
  // How many tasks are suspended in Recv / Send right now.
  size_t WaitingReceivers() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->receivers.size();
  }
  size_t WaitingSenders() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->senders.size();
  }

  // name()
  //
  // The name given at construction.
  std::string_view name() const { return state_->name; }

  // description()
  //
  // How reports name this channel: "Channel<int>" or "Channel<int> 'jobs'".
  std::string_view description() const { return state_->description; }

  // RecvAwaiter
  //
  // What `Recv()` returns; await it once.
  class [[nodiscard]] RecvAwaiter : private internal::WaitNode {
   public:
    RecvAwaiter(std::shared_ptr<State> state, SourceLocation location)
        : state_(std::move(state)), site_(location) {}
    RecvAwaiter(const RecvAwaiter&) = delete;
    RecvAwaiter& operator=(const RecvAwaiter&) = delete;
    ~RecvAwaiter() {
      if (!suspended_) return;  // never suspended, or resumed normally
      // The task was cancelled while suspended here.
      WakeList wake;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (phase_ == Phase::kWaiting) {
          state_->receivers.Remove(this);
        } else if (phase_ == Phase::kHandedValue) {
          // A value was handed over but never taken: give it back.
          state_->ReturnLocked(std::move(*value_), wake);
        }
      }
      WakeAll(wake, "a value returned to the channel");
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>) {
      WakeList wake;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (!state_->buffer.empty()) {
          value_.emplace(state_->TakeFrontLocked(wake));
        } else if (!state_->closed) {
          if (!InTask()) internal::ThrowNotInTask("Channel::Recv()", "use TryRecv");
          waker_ = CurrentWaker();
          site_.SetWhat(state_->recv_what);
          site_.set_target(state_.get());
          internal::current_task->SetWaitRecord(&site_);
          state_->receivers.PushBack(this);
          phase_ = Phase::kWaiting;
          suspended_ = true;
          return true;
        }
      }
      WakeAll(wake, "a channel receive");
      return false;
    }
    std::optional<T> await_resume() {
      if (suspended_) {
        suspended_ = false;
        WakeList wake;
        {
          std::lock_guard<std::mutex> lock(state_->mu);
          SIMSCHED_CHECK(phase_ != Phase::kWaiting, "a channel receiver resumed while queued");
          // Woken by Close(): the channel was empty then, but a value a
          // cancelled receiver gave back may have arrived since.
          if (phase_ == Phase::kClosed && !state_->buffer.empty()) {
            value_.emplace(state_->TakeFrontLocked(wake));
          }
          phase_ = Phase::kDone;
        }
        WakeAll(wake, "a channel receive");
      }
      return std::move(value_);
    }

   private:
    friend class Channel;
    enum class Phase : uint8_t { kWaiting, kHandedValue, kClosed, kDone };

    std::shared_ptr<State> state_;
    // The wait record the task's header points at while it waits here.
    internal::PackedWaitSite site_;
    // Guarded by state_->mu while this awaiter is suspended.
    Waker waker_;
    std::optional<T> value_;
    Phase phase_ = Phase::kDone;
    // Touched only by the awaiting task: whether it suspended here and has
    // not been resumed yet.
    bool suspended_ = false;
  };

  // SendAwaiter
  //
  // What `Send()` returns; await it once.
  class [[nodiscard]] SendAwaiter : private internal::WaitNode {
   public:
    SendAwaiter(std::shared_ptr<State> state, T value, SourceLocation location)
        : state_(std::move(state)), site_(location), value_(std::move(value)) {}
    SendAwaiter(const SendAwaiter&) = delete;
    SendAwaiter& operator=(const SendAwaiter&) = delete;
    ~SendAwaiter() {
      if (!suspended_) return;
      // Cancelled while suspended: if still queued the value was never sent
      // (it is destroyed with this awaiter); if accepted, it stays sent.
      std::lock_guard<std::mutex> lock(state_->mu);
      if (phase_ == Phase::kWaiting) state_->senders.Remove(this);
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>) {
      WakeList wake;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->closed) {
          phase_ = Phase::kRefused;
        } else if (!state_->receivers.empty() || state_->buffer.size() < state_->capacity) {
          state_->DeliverLocked(std::move(*value_), wake);
          phase_ = Phase::kSent;
        } else {
          if (!InTask()) internal::ThrowNotInTask("Channel::Send()", "use TrySend");
          waker_ = CurrentWaker();
          site_.SetWhat(state_->send_what);
          site_.set_target(state_.get());
          internal::current_task->SetWaitRecord(&site_);
          state_->senders.PushBack(this);
          phase_ = Phase::kWaiting;
          suspended_ = true;
          return true;
        }
      }
      WakeAll(wake, "a channel send");
      return false;
    }
    absl::Status await_resume() {
      Phase phase = phase_;
      if (suspended_) {
        suspended_ = false;
        std::lock_guard<std::mutex> lock(state_->mu);
        SIMSCHED_CHECK(phase_ != Phase::kWaiting, "a channel sender resumed while queued");
        phase = phase_;
      }
      if (phase == Phase::kSent) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat("Send on closed ", state_->description,
                                                        " at ", FormatLocation(site_.where()),
                                                        ": the value was dropped"));
    }

   private:
    friend class Channel;
    enum class Phase : uint8_t { kWaiting, kSent, kRefused };

    std::shared_ptr<State> state_;
    // The wait record the task's header points at while it waits here.
    internal::PackedWaitSite site_;
    // Guarded by state_->mu while this awaiter is suspended.
    std::optional<T> value_;
    Waker waker_;
    Phase phase_ = Phase::kRefused;
    bool suspended_ = false;  // see RecvAwaiter
  };

 private:
  // Everything the channel and its awaiters share. Awaiters hold a reference,
  // so a suspended or just-woken awaiter never outlives it. As a WaitTarget
  // it tells deadlock reports why nobody can get past it.
  struct State final : WaitTarget {
    State(size_t capacity_in, std::string_view name_in)
        : capacity(ValidCapacity(capacity_in)),
          name(name_in),
          description(absl::StrCat("Channel<", TypeName<T>(), ">",
                                   name_in.empty() ? "" : " '", std::string(name_in),
                                   name_in.empty() ? "" : "'")),
          recv_what(description + "::Recv"),
          send_what(description + "::Send") {}

    static size_t ValidCapacity(size_t capacity) {
      if (capacity == 0) {
        throw std::invalid_argument(
            "simsched::Channel capacity must be at least 1 (kUnbounded for no limit)");
      }
      return capacity;
    }

    // Puts a new value in: straight to the oldest waiting receiver, else at
    // the back of the buffer. The caller checked for room.
    void DeliverLocked(T&& value, WakeList& wake) {
      if (internal::WaitNode* node = receivers.PopFront()) {
        HandOverLocked(static_cast<RecvAwaiter*>(node), std::move(value), wake);
      } else {
        buffer.push_back(std::move(value));
      }
    }

    // Takes a value back from a receiver that was cancelled before it took
    // it: it was sent before everything buffered, so it goes to the front.
    void ReturnLocked(T&& value, WakeList& wake) {
      if (internal::WaitNode* node = receivers.PopFront()) {
        HandOverLocked(static_cast<RecvAwaiter*>(node), std::move(value), wake);
      } else {
        buffer.push_front(std::move(value));
      }
    }

    void HandOverLocked(RecvAwaiter* receiver, T&& value, WakeList& wake) {
      receiver->value_.emplace(std::move(value));
      receiver->phase_ = RecvAwaiter::Phase::kHandedValue;
      wake.push_back(std::move(receiver->waker_));
    }

    // Removes the oldest buffered value and lets waiting senders fill the
    // room it made. Requires a non-empty buffer.
    T TakeFrontLocked(WakeList& wake) {
      T value = std::move(buffer.front());
      buffer.pop_front();
      while (buffer.size() < capacity && !senders.empty()) {
        auto* sender = static_cast<SendAwaiter*>(senders.PopFront());
        buffer.push_back(std::move(*sender->value_));
        sender->phase_ = SendAwaiter::Phase::kSent;
        wake.push_back(std::move(sender->waker_));
      }
      return value;
    }

    std::string DescribeBlocker() const override {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) return "closed";
      if (buffer.empty()) {
        return "empty and open: no task is sending and nobody closed it (a forgotten Close()?)";
      }
      if (buffer.size() >= capacity) {
        return absl::StrCat("full (", buffer.size(), " values): no task is receiving");
      }
      return "";
    }

    const size_t capacity;
    const std::string name;
    const std::string description;  // "Channel<int> 'jobs'"
    const std::string recv_what;    // DescribeWait strings
    const std::string send_what;

    mutable std::mutex mu;
    std::deque<T> buffer;
    bool closed = false;
    internal::WaitQueue receivers;  // of RecvAwaiter; non-empty only while buffer is empty
    internal::WaitQueue senders;    // of SendAwaiter; non-empty only while buffer is full
  };

  // Woken outside the lock: a wake may run scheduler code.
  // `reason` says what woke them, for the TestScheduler's trace. Consumes
  // the wakers (their references go to the scheduler's queue).
  static void WakeAll(WakeList& wake, const char* reason) {
    for (Waker& waker : wake) std::move(waker).Wake(reason);
  }

  std::shared_ptr<State> state_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_CHANNEL_H_
