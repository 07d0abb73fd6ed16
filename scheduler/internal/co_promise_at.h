// Internal: finding a Co frame's promise from its coroutine handle alone.
//
// A task's header keeps only its innermost frame's handle (TaskHeader::leaf);
// when that frame is a Co's, the header and the cancellation walk reach its
// promise (its link to the awaiting frame, its exception) from the handle,
// without storing a pointer to it:
//
//   internal::CoPromiseBase* promise = internal::CoPromiseAt(frame);
//
// Valid only for a Co frame: the caller knows it is one (TaskHeader checks a
// leaf's result against the promise it was given when the leaf was set).

#ifndef SIMSCHED_SCHEDULER_INTERNAL_CO_PROMISE_AT_H_
#define SIMSCHED_SCHEDULER_INTERNAL_CO_PROMISE_AT_H_

#include <coroutine>

namespace simsched::internal {

class CoPromiseBase;  // scheduler/co.h

// The promise of a Co frame (co.h) whose handle is `frame`: compilers put a
// coroutine's promise right after its resume and destroy pointers, at an
// offset that depends only on the promise's alignment, the same for every
// Co promise (co.h asserts CoPromiseBase's; TaskHeader::SetLeaf checks the
// result against the promise it was given all the same).
inline constexpr int kCoPromiseAlignment = alignof(void*);
inline CoPromiseBase* CoPromiseAt(std::coroutine_handle<> frame) noexcept {
  return static_cast<CoPromiseBase*>(
      __builtin_coro_promise(frame.address(), kCoPromiseAlignment, false));
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_CO_PROMISE_AT_H_
