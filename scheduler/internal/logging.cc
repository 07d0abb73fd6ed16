#include "scheduler/internal/logging.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "scheduler/internal/check.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace simsched::internal {

spdlog::logger& Logger() {
  // Kept alive for the process lifetime so logging from static destructors
  // (a scheduler destroyed at exit) stays safe.
  static std::shared_ptr<spdlog::logger>* logger = [] {
    std::shared_ptr<spdlog::logger> found = spdlog::get(kLoggerName);
    if (found == nullptr) {
      found = std::make_shared<spdlog::logger>(
          kLoggerName, std::make_shared<spdlog::sinks::stderr_sink_mt>());
      found->set_pattern("[%n %l] %v");
      spdlog::register_logger(found);
    }
    return new std::shared_ptr<spdlog::logger>(std::move(found));
  }();
  return **logger;
}

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message) {
  std::fprintf(stderr, "simsched internal check failed at %s:%d: %s: %s\n",
               file, line, condition, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace simsched::internal
