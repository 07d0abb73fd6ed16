// Internal: destroying coroutine frames and a suspended task's await chain
// without overflowing the stack, however deep the nesting.
//
// A frame's destruction may destroy frames it owns (a child `Co`, a `Task`
// it cancels), whose destruction may destroy more: these recurse like a C++
// call stack unwinding, up to kMaxNestedDestroyDepth, and are deferred past
// it. A task's own frames, an await chain of any length, are destroyed in a
// loop, innermost first.
//
// Example:
//
//   internal::DestroyCoroutineFrame(frame);  // a Co's owner dropping it
//   internal::DestroyAwaitChain(task.leaf(), task.leaf_promise(), root, nullptr);
//
// Defined in task_header.cc: the nesting depth is a thread-local that a
// task's end (TaskHeader::PollEnded) and cancellation read too, and a
// definition in the same file keeps those reads one instruction each.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_FRAME_DESTRUCTION_H_
#define SIMSCHED_SCHEDULER_INTERNAL_FRAME_DESTRUCTION_H_

#include <coroutine>

namespace simsched::internal {

class CoPromiseBase;
class TaskHeader;

// DestroyCoroutineFrame()
//
// Destroys a coroutine frame (and, through the objects it owns, everything
// it owns) at once, as a C++ call stack unwinds: a child task or Co owned by
// the frame is destroyed before the frame's earlier locals. Nested
// destructions recurse up to a generous depth bound (kMaxNestedDestroyDepth);
// only past it is a destruction deferred until the outermost one finishes,
// so no chain of ownership, however deep, can overflow the stack.
void DestroyCoroutineFrame(std::coroutine_handle<> frame) noexcept;

// DestroyAwaitChain()
//
// Destroys the chain of frames a suspended task is made of, innermost first:
// `leaf` (whose promise is `leaf_promise`, if it is a Co frame) is destroyed,
// then the frame that awaits it, and so on up to `root`. Before a frame is
// destroyed its owning `Co` (in the parent's frame) is emptied, so the
// parent's destruction does not reach it again. Iterative: a 100,000-deep
// await chain uses constant stack.
// `host`, if not null, is the task header sharing the root's block; it holds
// one reference for the destruction, released once the root is destroyed.
void DestroyAwaitChain(std::coroutine_handle<> leaf, CoPromiseBase* leaf_promise,
                       std::coroutine_handle<> root, TaskHeader* host) noexcept;

// How deep destructions may nest (a frame whose destruction cancels a task
// whose destruction cancels another...) before they are deferred.
inline constexpr int kMaxNestedDestroyDepth = 128;

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_FRAME_DESTRUCTION_H_
