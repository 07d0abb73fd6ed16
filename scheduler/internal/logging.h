// Internal: the named spdlog logger simsched writes to.
//
// simsched never touches spdlog's default logger, so a host application keeps
// control of its own sinks. If the host registers a logger named "simsched"
// before first use, simsched uses it; otherwise it creates one writing to
// stderr.

#ifndef SIMSCHED_SCHEDULER_INTERNAL_LOGGING_H_
#define SIMSCHED_SCHEDULER_INTERNAL_LOGGING_H_

#include "spdlog/logger.h"

namespace simsched::internal {

inline constexpr char kLoggerName[] = "simsched";

// Logger()
//
// Returns the "simsched" logger, creating it on first use. Thread-safe.
spdlog::logger& Logger();

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_LOGGING_H_
