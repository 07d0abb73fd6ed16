// File: scheduler/source_location.h
// -----------------------------------------------------------------------------
//
// `SourceLocation` records where a call was written: spawn sites, `co_await`
// sites and every report that names them. It is `std::source_location` in all
// but name, built on the compiler builtins directly, because clang 14 with
// libstdc++ 12 (a supported toolchain: `--config=clang`) has no usable
// `std::source_location`. It converts from `std::source_location` where that
// exists.
//
// This header defines:
//   * `simsched::SourceLocation`
//
// Example:
//
//   void Log(std::string_view message,
//            simsched::SourceLocation where = simsched::SourceLocation::current()) {
//     std::cerr << where.file_name() << ":" << where.line() << ": " << message;
//   }

#ifndef SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_
#define SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace simsched {

// SourceLocation
//
// A file, line and function. Default-made, it is "unknown" (line 0).
class SourceLocation {
 public:
  constexpr SourceLocation() = default;

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
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_SOURCE_LOCATION_H_
