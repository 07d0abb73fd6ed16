// Internal: SIMSCHED_CHECK, the scheduler core's invariant assertion.
//
// Abseil 20220623 has no CHECK macros, so the core uses this one. It is for
// "cannot happen" paths only: bad user input gets an absl::Status instead.
// Checks stay on in every build mode (they guard memory safety, and cost a
// predictable branch).

#ifndef SIMSCHED_SCHEDULER_INTERNAL_CHECK_H_
#define SIMSCHED_SCHEDULER_INTERNAL_CHECK_H_

namespace simsched::internal {

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message);

}  // namespace simsched::internal

#define SIMSCHED_CHECK(condition, message)                                 \
  do {                                                                     \
    if (!(condition)) [[unlikely]] {                                       \
      ::simsched::internal::CheckFailed(__FILE__, __LINE__, #condition,    \
                                        message);                          \
    }                                                                      \
  } while (false)

#endif  // SIMSCHED_SCHEDULER_INTERNAL_CHECK_H_
