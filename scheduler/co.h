// File: scheduler/co.h
// -----------------------------------------------------------------------------
//
// `Co<T>` is simsched's lazy coroutine: the type every async function returns.
// A `Co` does nothing until it is awaited (`co_await Child()`), which runs it
// inline in the awaiting task, or spawned (`Spawn(scheduler, Child())`), which
// makes it the root of a new task. Control passes between a parent and its
// child through the task's resumption loop (a trampoline, not a compiler tail
// call, so it holds under every compiler, optimization level and sanitizer):
// a 100,000-deep chain of awaits uses no stack in proportion to its depth, and
// destroying such a chain does not recurse either.
//
// `co_await` on a `Co<T>` gives the `T` (by value, or the reference for `T&`)
// or rethrows the exception the child ended with.
//
// This header defines:
//   * `simsched::Co<T>` for any T: values, move-only types, references, void
//
// Example:
//
//   simsched::Co<int> Fetch(Store& store, std::string key) {
//     co_await simsched::Sleep(std::chrono::milliseconds(5));  // simulated I/O
//     co_return store.Get(key);
//   }
//
//   simsched::Co<int> Sum(Store& store) {
//     int a = co_await Fetch(store, "a");
//     int b = co_await Fetch(store, "b");
//     co_return a + b;
//   }

#ifndef SIMSCHED_SCHEDULER_CO_H_
#define SIMSCHED_SCHEDULER_CO_H_

#include <coroutine>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "scheduler/internal/block_allocator.h"
#include "scheduler/internal/co_promise_at.h"
#include "scheduler/internal/frame_destruction.h"
#include "scheduler/internal/task_header.h"

namespace simsched {

template <typename T = void>
class Co;

namespace internal {

// CoOwner
//
// The part of every `Co<T>` that the task core needs without knowing `T`: the
// frame it owns. A frame's promise points back at its current owner, so that
// cancellation can destroy a chain of awaiting frames innermost first and
// then tell each parent's `Co` that its child is already gone.
class CoOwner {
 protected:
  CoOwner() = default;
  ~CoOwner() = default;

 private:
  friend class CoPromiseBase;
  template <typename T>
  friend class ::simsched::Co;
  std::coroutine_handle<> frame_;
};

// Room for a task header before every Co frame.
//
// A spawned task is one allocation: the task header (TaskState<T>, see
// task.h) is built in room reserved in front of its root frame. The frame is
// allocated by the call to the coroutine function, before anyone knows
// whether it will be spawned or awaited, so every Co<T> frame reserves the
// room; a frame that is only awaited leaves it unused. The room's first
// word says whether a header lives there: it is the header's vtable pointer,
// never null while the header lives, and null in room no header took.
// Freeing a frame whose room hosts a header (when the task completes or is
// cancelled) leaves the block to the header, which outlives the frame and
// frees the block when its last reference goes.
struct NoTaskResult {};
template <typename T>
using TaskResultSlot = std::conditional_t<
    std::is_void_v<T>, NoTaskResult,
    std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, std::optional<T>>>;

// The layout of TaskState<T> (task.h), for its size.
template <typename T>
class TaskStateLayout : public TaskHeader {
  [[no_unique_address]] TaskResultSlot<T> value_;
};

inline constexpr size_t kFrameAlignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

template <typename T>
inline constexpr size_t kTaskRoomBytes =
    (sizeof(TaskStateLayout<T>) + kFrameAlignment - 1) / kFrameAlignment * kFrameAlignment;
// Where in the room the header starts: at its end, right in front of the
// frame, so that the header's hot last words and the frame's first bytes
// share cache lines (task_header.h, "Data"); the padding the rounding to
// kFrameAlignment leaves (0 or 8 bytes) comes first.
template <typename T>
inline constexpr size_t kTaskHeaderOffset = kTaskRoomBytes<T> - sizeof(TaskStateLayout<T>);

// The task header's polymorphism puts its vtable pointer first (Itanium C++
// ABI: a class with virtual functions and no polymorphic base).
static_assert(std::is_polymorphic_v<TaskHeader>);

// AllocateCoFrame(), FreeCoFrame()
//
// A frame of `frame_size` bytes behind `room` bytes of task-header room, of
// which a header would start `header_offset` bytes in; FreeCoFrame leaves a
// block that hosts a task header alone. The block is a task block
// (internal/block_allocator.h).
inline void* AllocateCoFrame(size_t frame_size, size_t room, size_t header_offset) {
  unsigned char* block = static_cast<unsigned char*>(AllocateTaskBlock(room + frame_size));
  const void* const no_header = nullptr;
  // No header lives here (yet).
  std::memcpy(block + header_offset, &no_header, sizeof(no_header));
  return block + room;
}
inline bool RoomHostsTaskHeader(const unsigned char* header_at) noexcept {
  const void* first_word;
  std::memcpy(&first_word, header_at, sizeof(first_word));
  return first_word != nullptr;
}
// The size of a block whose dead frame hosts nothing but it: the header
// frees the block and must give its size, which only the frame's
// deallocation is told (plain blocks need no size, and under
// AddressSanitizer the dead frame is poisoned).
inline void KeepTaskBlockSize(void* dead_frame, size_t block_bytes) noexcept {
  if constexpr (!kPlainTaskBlocks) std::memcpy(dead_frame, &block_bytes, sizeof(block_bytes));
}
inline size_t KeptTaskBlockSize(const void* dead_frame) noexcept {
  size_t block_bytes = 0;
  if constexpr (!kPlainTaskBlocks) std::memcpy(&block_bytes, dead_frame, sizeof(block_bytes));
  return block_bytes;
}
inline void FreeCoFrame(void* frame, size_t frame_size, size_t room,
                        size_t header_offset) noexcept {
  unsigned char* const at = static_cast<unsigned char*>(frame);
  if (RoomHostsTaskHeader(at - room + header_offset)) {
    // The task header frees the block. Under AddressSanitizer the dead
    // frame is poisoned meanwhile, so a use of it is still reported.
    KeepTaskBlockSize(at, room + frame_size);
    SIMSCHED_POISON_BLOCK(at, frame_size);
    return;
  }
  FreeTaskBlock(at - room, room + frame_size);
}
// Where in the room in front of a Co<T> frame to build a header (whose
// vtable pointer marks the room as hosting it).
template <typename T>
inline void* HostTaskHeader(void* frame) noexcept {
  return static_cast<unsigned char*>(frame) - kTaskRoomBytes<T> + kTaskHeaderOffset<T>;
}

template <typename T>
struct CoFrameAllocation {
  static_assert(alignof(TaskStateLayout<T>) <= kFrameAlignment,
                "simsched: a Co<T> whose T is over-aligned (alignas beyond "
                "__STDCPP_DEFAULT_NEW_ALIGNMENT__) is not supported; return it boxed");
  static void* operator new(std::size_t size) {
    return AllocateCoFrame(size, kTaskRoomBytes<T>, kTaskHeaderOffset<T>);
  }
  static void operator delete(void* frame, std::size_t size) noexcept {
    FreeCoFrame(frame, size, kTaskRoomBytes<T>, kTaskHeaderOffset<T>);
  }
};

class CoPromiseBase {
 public:
  CoPromiseBase() noexcept {
    // TaskHeader finds a Co frame's promise from its handle (CoPromiseAt).
    static_assert(alignof(CoPromiseBase) == kCoPromiseAlignment);
  }
  ~CoPromiseBase() {
    if (threw()) exception_.~exception_ptr();
  }
  CoPromiseBase(const CoPromiseBase&) = delete;
  CoPromiseBase& operator=(const CoPromiseBase&) = delete;

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    // Inline, as it was before the root's case called out: a call here would
    // cost every Co's end more than the root's case costs.
    template <typename Promise>
    [[gnu::always_inline]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<Promise> self) noexcept {
      CoPromiseBase& promise = self.promise();
      std::coroutine_handle<> continuation = promise.continuation();
      if (!continuation) {
        // A task's root: the poll sees the flag and finishes the task.
        // (Out of line: once a task, and it keeps this inline part small.)
        TaskHeader::MarkRootDoneOfCurrentTask(self);
        return std::noop_coroutine();
      }
      if (TaskHeader* task = current_task) {
        return task->TransferTo(continuation, promise.parent_promise());
      }
      return continuation;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // The frame is ending (its final suspend comes next), so the owner's
  // pointer is dead: the exception takes its word (see the layout below).
  void unhandled_exception() noexcept {
    ::new (&exception_) std::exception_ptr(std::current_exception());
    link_ |= kThrew;
  }

  // Called by the awaiting side: `parent` resumes when this frame ends.
  // `parent_promise` is its promise when the parent is a Co frame too (null
  // for any other coroutine type), which links the chain cancellation walks.
  // Only a flag is stored: the promise is found again from the handle
  // (CoPromiseAt), checked here as TaskHeader::SetLeaf checks a leaf's.
  void SetContinuation(std::coroutine_handle<> parent, CoPromiseBase* parent_promise) noexcept {
    const bool parent_is_co = parent_promise != nullptr && CoPromiseAt(parent) == parent_promise;
    link_ = reinterpret_cast<uintptr_t>(parent.address()) | (parent_is_co ? kParentIsCo : 0);
  }
  // The frame that resumes when this one ends (null for a task's root).
  std::coroutine_handle<> continuation() const noexcept {
    return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(link_ & ~kLinkFlags));
  }

  // For DestroyAwaitChain: the promise of the frame awaiting this one (null
  // if it is not a Co frame), and emptying the Co that owns this frame, so
  // that destroying the parent does not destroy this frame a second time.
  // (The chain holds suspended frames only, which have not thrown.)
  CoPromiseBase* parent_promise() const noexcept {
    return (link_ & kParentIsCo) != 0 ? CoPromiseAt(continuation()) : nullptr;
  }
  void Disown() noexcept {
    if (threw()) return;
    if (owner_ != nullptr) owner_->frame_ = nullptr;
    owner_ = nullptr;
  }

  // Whether the coroutine ended with an exception; the exception itself.
  bool threw() const noexcept { return (link_ & kThrew) != 0; }
  void RethrowIfThrew() const {
    if (threw()) std::rethrow_exception(exception_);
  }
  std::exception_ptr TakeException() noexcept {
    return threw() ? std::move(exception_) : std::exception_ptr();
  }

 private:
  template <typename T>
  friend class ::simsched::Co;

  // Sets the owning Co (at creation and on every move). A frame that threw
  // keeps its exception in the owner's word; it is never disowned (only
  // suspended frames are), so its owner need not be known.
  void SetOwner(CoOwner* owner) noexcept {
    if (!threw()) owner_ = owner;
  }

  // The promise is two words (every Co frame carries one, so each word is
  // a word of every frame): the continuation's address with two flags in
  // its low bits (frames are at least pointer-aligned), and the owning Co,
  // which an ending frame no longer needs, sharing a word with the
  // exception it ended with.
  static constexpr uintptr_t kParentIsCo = 1;  // the continuation is a Co frame
  static constexpr uintptr_t kThrew = 2;       // `exception_` is live, not `owner_`
  static constexpr uintptr_t kLinkFlags = kParentIsCo | kThrew;
  uintptr_t link_ = 0;
  union {
    CoOwner* owner_ = nullptr;  // the Co that owns this frame, if any
    std::exception_ptr exception_;
  };
};

// Returns the promise of `handle` as a CoPromiseBase if `Promise` is a Co
// promise, else null.
template <typename Promise>
CoPromiseBase* CoPromiseOf(std::coroutine_handle<Promise> handle) noexcept {
  if constexpr (std::is_base_of_v<CoPromiseBase, Promise>) {
    return &handle.promise();
  } else {
    return nullptr;
  }
}

template <typename T>
class CoPromise final : public CoPromiseBase, public CoFrameAllocation<T> {
 public:
  Co<T> get_return_object() noexcept;

  template <typename U = T>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }

  // Moves the result out, or rethrows the coroutine's exception.
  T TakeResult() {
    RethrowIfThrew();
    return std::move(*value_);
  }
  std::optional<T>& value() { return value_; }

 private:
  std::optional<T> value_;
};

template <typename T>
class CoPromise<T&> final : public CoPromiseBase, public CoFrameAllocation<T&> {
 public:
  Co<T&> get_return_object() noexcept;
  void return_value(T& value) noexcept { value_ = std::addressof(value); }
  T& TakeResult() {
    RethrowIfThrew();
    return *value_;
  }
  T* value() const { return value_; }

 private:
  T* value_ = nullptr;
};

template <>
class CoPromise<void> final : public CoPromiseBase, public CoFrameAllocation<void> {
 public:
  Co<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void TakeResult() { RethrowIfThrew(); }
};

}  // namespace internal

// Co<T>
//
// A lazy, move-only coroutine that owns its frame. Await it once, or hand it
// to a spawn function. Destroying a `Co` that was never started or that is
// suspended destroys its frame (and, through it, any children it awaits).
template <typename T>
class [[nodiscard]] Co : private internal::CoOwner {
 public:
  using promise_type = internal::CoPromise<T>;
  using value_type = T;

  Co() = default;
  Co(Co&& other) noexcept { Adopt(other.Take()); }
  Co& operator=(Co&& other) noexcept {
    if (this != &other) {
      Reset();
      Adopt(other.Take());
    }
    return *this;
  }
  Co(const Co&) = delete;
  Co& operator=(const Co&) = delete;
  ~Co() { Reset(); }

  // Whether this holds a coroutine (false when default-made or moved from).
  explicit operator bool() const { return static_cast<bool>(frame_); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> child) : child_(child) {}
    bool await_ready() const noexcept { return false; }
    template <typename ParentPromise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<ParentPromise> parent) noexcept {
      promise_type& child = child_.promise();
      child.SetContinuation(parent, internal::CoPromiseOf(parent));
      if (internal::TaskHeader* task = internal::current_task) {
        return task->TransferTo(child_, &child);
      }
      return child_;
    }
    T await_resume() { return child_.promise().TakeResult(); }

   private:
    std::coroutine_handle<promise_type> child_;
  };

  // Awaiting runs the coroutine inline in the awaiting task. Requires a
  // non-empty Co that has not been awaited before.
  Awaiter operator co_await() && noexcept { return Awaiter(handle()); }
  Awaiter operator co_await() & noexcept { return Awaiter(handle()); }

  // For spawn functions: gives up ownership of the frame.
  std::coroutine_handle<promise_type> Release() { return Take(); }

 private:
  friend promise_type;
  explicit Co(std::coroutine_handle<promise_type> frame) { Adopt(frame); }

  std::coroutine_handle<promise_type> handle() const {
    return std::coroutine_handle<promise_type>::from_address(frame_.address());
  }
  void Adopt(std::coroutine_handle<promise_type> frame) noexcept {
    frame_ = frame;
    if (frame) frame.promise().SetOwner(this);
  }
  // The promise keeps pointing here: it is read only while the frame is
  // awaited (DestroyAwaitChain), and a frame that is released is a task's
  // root, destroyed or moved on by Adopt.
  std::coroutine_handle<promise_type> Take() noexcept {
    std::coroutine_handle<promise_type> frame = handle();
    frame_ = nullptr;
    return frame;
  }
  void Reset() {
    if (frame_) internal::DestroyCoroutineFrame(Take());
  }
};

namespace internal {

template <typename T>
Co<T> CoPromise<T>::get_return_object() noexcept {
  return Co<T>(std::coroutine_handle<CoPromise<T>>::from_promise(*this));
}
template <typename T>
Co<T&> CoPromise<T&>::get_return_object() noexcept {
  return Co<T&>(std::coroutine_handle<CoPromise<T&>>::from_promise(*this));
}
inline Co<void> CoPromise<void>::get_return_object() noexcept {
  return Co<void>(std::coroutine_handle<CoPromise<void>>::from_promise(*this));
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_CO_H_
