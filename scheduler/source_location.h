// File: scheduler/source_location.h
// -----------------------------------------------------------------------------
//
// `SourceLocation` records where a call was written: spawn sites, `co_await`
// sites and every report that names them. It is `std::source_location` (one
// pointer) plus the function's short name where the toolchain has it, and the
// compiler builtins directly where it does not: clang 14 with libstdc++ 12 (a supported toolchain:
// `--config=clang`) has no usable `std::source_location`. It converts from
// `std::source_location` where that exists.
//
// This header defines:
//   * `simsched::SourceLocation`
//   * `simsched::CallSiteRecord` (where `SIMSCHED_SOURCE_LOCATION_SCALAR_SITE`)
//
// Example:
//
//   void Log(std::string_view message,
//            simsched::SourceLocation where = simsched::SourceLocation::current()) {
//     std::cerr << where.file_name() << ":" << where.line() << ": " << message;
//   }

#ifndef SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_
#define SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_

#include <bit>
#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

#if defined(__cpp_lib_source_location)
#define SIMSCHED_SOURCE_LOCATION_IS_COMPACT 1
#else
#define SIMSCHED_SOURCE_LOCATION_IS_COMPACT 0
#endif

// Whether a call site can be passed as scalars (SourceLocation::current's
// own arguments; see there): `CallSiteRecord` is the compiler's static
// record of a site.
#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT && defined(__has_builtin)
#if __has_builtin(__builtin_source_location)
#define SIMSCHED_SOURCE_LOCATION_SCALAR_SITE 1
#endif
#endif
#ifndef SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
#define SIMSCHED_SOURCE_LOCATION_SCALAR_SITE 0
#endif

namespace simsched {

#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
// CallSiteRecord
//
// What `__builtin_source_location()` gives: the compiler's static record of
// a call site (file, line, function signature), as SourceLocation::current
// takes it.
using CallSiteRecord = decltype(__builtin_source_location());
#endif

// SourceLocation
//
// A file, line and function. Default-made, it is "unknown" (line 0).
//
// Where the compiler has `std::source_location` (g++ 11 and later, clang 15
// and later) a SourceLocation is two pointers: to the file-and-line record
// the compiler keeps in static storage, and to the function's short name; so
// every task header and awaiter that stores one stays small. Elsewhere
// (clang 14) it holds the file, function and line itself.
class SourceLocation {
 public:
  constexpr SourceLocation() = default;

#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  // current()
  //
  // As a defaulted argument, the location of the call site. Its own
  // defaulted arguments are scalars (the compiler's static record of the
  // site, and the function's short name), not a `std::source_location`
  // object: g++ keeps every temporary of a `co_await` expression in the
  // coroutine frame, so `co_await Sleep(d)` would otherwise carry a dead
  // `std::source_location` across the suspension (8 bytes of every frame
  // that awaits at such a site; docs/performance.md, Memory). A function
  // called in `co_await` expressions can take these two scalars itself
  // (see `Sleep` in scheduler.h) to keep the SourceLocation out as well.
  static SourceLocation current(
      CallSiteRecord site = __builtin_source_location(),
      const char* function = __builtin_FUNCTION()) noexcept {
    static_assert(sizeof(std::source_location) == sizeof(site));
    return SourceLocation(std::bit_cast<std::source_location>(site), function);
  }
#else
  // current()
  //
  // As a defaulted argument, the location of the call site (constexpr, not
  // consteval: only so does a current() that is itself a default argument,
  // as in every spawn function, name the outermost call site).
  static constexpr SourceLocation current(
      std::source_location location = std::source_location::current(),
      const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation(location, function);
  }
#endif

  // Implicit, so APIs taking a SourceLocation accept std::source_location too.
  constexpr SourceLocation(const std::source_location& location)  // NOLINT
      : location_(location), function_(location.function_name()) {}

  constexpr const char* file_name() const noexcept { return location_.file_name(); }
  // The function's name as written ("TestBody", "operator()"), not the full
  // signature std::source_location gives.
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr uint32_t line() const noexcept { return location_.line(); }

 private:
  constexpr SourceLocation(const std::source_location& location, const char* function)
      : location_(location), function_(function) {}

  std::source_location location_;
  const char* function_ = "";
#else
  // current()
  //
  // As a defaulted argument, the location of the call site.
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          uint32_t line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) noexcept {
    SourceLocation location;
    location.file_ = file;
    location.line_ = line;
    location.function_ = function;
    return location;
  }

#if defined(__cpp_lib_source_location)
  // Implicit, so APIs taking a SourceLocation accept std::source_location too.
  constexpr SourceLocation(const std::source_location& location)  // NOLINT
      : file_(location.file_name()),
        function_(location.function_name()),
        line_(location.line()) {}
#endif

  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr uint32_t line() const noexcept { return line_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  uint32_t line_ = 0;
#endif
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_
